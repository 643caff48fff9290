#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "net/scope.h"
#include "util/clock.h"

namespace mw {
namespace {

// The first verification failure of a handshake, kept in the SSL object's ex_data: the
// callback lets the handshake finish so that the certificate (and its expiry) is always seen;
// the decision is taken afterwards against the settings.
struct VerifyRecord {
  std::vector<int> errors;  // in the order the chain walk met them
};

int verify_index() {
  static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr,
                                          [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
                                            delete static_cast<VerifyRecord*>(ptr);
                                          });
  return index;
}

int verify_callback(int preverify_ok, X509_STORE_CTX* store) {
  if (!preverify_ok) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* rec = ssl ? static_cast<VerifyRecord*>(SSL_get_ex_data(ssl, verify_index())) : nullptr;
    if (rec && rec->errors.size() < 16) rec->errors.push_back(X509_STORE_CTX_get_error(store));
  }
  return 1;
}

std::string name_line(const X509_NAME* name) {
  if (!name) return {};
  char buf[512];
  X509_NAME_oneline(name, buf, sizeof buf);
  return buf;
}

// Where a handshake's new session goes: the cache and the endpoint it belongs to.
struct ResumeSlot {
  TlsContextCache* cache;
  std::string endpoint;
};

int resume_index() {
  static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr,
                                          [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
                                            delete static_cast<ResumeSlot*>(ptr);
                                          });
  return index;
}

// OpenSSL hands over each session the server gives (in TLS 1.3, its tickets, read after the
// handshake). The cache keeps a copy: the connection goes on using this one, and OpenSSL marks
// the session of a connection that ends without close_notify as not resumable.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<ResumeSlot*>(SSL_get_ex_data(ssl, resume_index()));
  auto* rec = static_cast<VerifyRecord*>(SSL_get_ex_data(ssl, verify_index()));
  // A resumed session carries the certificate of the full handshake it came from: only full,
  // clean handshakes start the clock of kSessionFullHandshakeS.
  if (!slot || !rec || !rec->errors.empty() || SSL_session_reused(ssl)) return 0;
  if (!SSL_SESSION_get0_peer(session) || !SSL_SESSION_is_resumable(session)) return 0;
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) slot->cache->remember(slot->endpoint, copy);
  return 0;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string TlsSettings::cache_key() const {
  return std::string(verify ? "v1" : "v0") + (allow_selfsigned ? "s1" : "s0") + "|" + ca_file +
         "|" + ca_path + "|" + std::to_string(static_cast<int>(min_version));
}

SSL_CTX* TlsContextCache::get(const TlsSettings& s, std::string& error) {
  auto key = s.cache_key();
  if (auto it = contexts_.find(key); it != contexts_.end()) return it->second.get();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    error = "cannot create TLS context: " + tls::drain_errors();
    return nullptr;
  }
  int min = s.min_version == TlsVersion::tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  SSL_CTX_set_min_proto_version(ctx.get(), min);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, verify_callback);
  // Without verification the trust store is never consulted: loading it would only cost every
  // short-lived process (the drop-in plugins) milliseconds.
  if (s.verify && SSL_CTX_set_default_verify_paths(ctx.get()) != 1) (void)tls::drain_errors();
  if (!s.ca_file.empty() || !s.ca_path.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), s.ca_file.empty() ? nullptr : s.ca_file.c_str(),
                                      s.ca_path.empty() ? nullptr : s.ca_path.c_str()) != 1) {
      error = "cannot load CA certificates from " + (s.ca_file.empty() ? s.ca_path : s.ca_file) +
              ": " + tls::drain_errors();
      return nullptr;
    }
  }
  // Sessions are kept by endpoint in this cache (see kSessionFullHandshakeS), not by OpenSSL.
  SSL_CTX_set_session_cache_mode(ctx.get(),
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx.get(), on_new_session);
  // Many servers close TLS without close_notify after a logout; OpenSSL 3 would report that as
  // an error, while for a probe it is simply the end of the conversation.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  // A thousand probes may be in flight at once; idle TLS buffers (34 KB each) are given back.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX* raw = ctx.get();
  contexts_.emplace(key, std::move(ctx));
  return raw;
}

std::shared_ptr<const CertInfo> TlsContextCache::intern(CertInfo&& info) {
  auto same = [&](const CertInfo& c) {
    return c.not_after == info.not_after && c.days_left == info.days_left &&
           c.subject == info.subject && c.issuer == info.issuer &&
           c.verify_error == info.verify_error && c.tls_version == info.tls_version &&
           c.cipher == info.cipher;
  };
  auto it = certificates_.find(info.sha256);
  if (it != certificates_.end() && same(*it->second)) return it->second;
  if (certificates_.size() >= kMaxSessions) {
    // Only what no result holds any more goes; the rest is bounded by the results themselves.
    std::erase_if(certificates_, [](const auto& kv) { return kv.second.use_count() == 1; });
    if (certificates_.size() >= kMaxSessions)
      return std::make_shared<const CertInfo>(std::move(info));
  }
  auto shared = std::make_shared<const CertInfo>(std::move(info));
  certificates_[shared->sha256] = shared;
  return shared;
}

SSL_SESSION* TlsContextCache::session_for(const std::string& endpoint) {
  auto it = sessions_.find(endpoint);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION* s = it->second.session.get();
  X509* peer = SSL_SESSION_get0_peer(s);
  bool stale = clock::now_ms() - it->second.full_handshake_ms >= kSessionFullHandshakeS * 1000;
  // Past its notAfter, only a full handshake says what a verification says now.
  bool expired = !peer || X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0;
  if (stale || expired || !SSL_SESSION_is_resumable(s)) {
    sessions_.erase(it);
    return nullptr;
  }
  return s;
}

void TlsContextCache::remember(const std::string& endpoint, SSL_SESSION* session) {
  if (sessions_.size() >= kMaxSessions && !sessions_.count(endpoint)) sessions_.clear();
  sessions_[endpoint] = Kept{SslSessionPtr(session), clock::now_ms()};
  no_session_until_ms_.erase(endpoint);
  wake_later(endpoint);
}

bool TlsContextCache::first_running(const std::string& endpoint, int64_t& left_ms) {
  auto it = firsts_.find(endpoint);
  if (it == firsts_.end() || it->second.started_ms == 0) return false;
  left_ms = it->second.started_ms + kFirstHandshakeWaitMs - clock::now_ms();
  return left_ms > 0;
}

bool TlsContextCache::begin_first(const std::string& endpoint, event_base* base) {
  int64_t now = clock::now_ms();
  if (auto it = no_session_until_ms_.find(endpoint); it != no_session_until_ms_.end()) {
    if (it->second > now) return false;
    no_session_until_ms_.erase(it);
  }
  if (no_session_until_ms_.size() >= kMaxSessions) no_session_until_ms_.clear();
  First& f = firsts_[endpoint];
  f.started_ms = now;
  f.base = base;
  return true;
}

void TlsContextCache::first_over(const std::string& endpoint, bool handshake_completed) {
  auto it = firsts_.find(endpoint);
  if (it == firsts_.end() || it->second.started_ms == 0) return;
  if (handshake_completed && !sessions_.count(endpoint))
    no_session_until_ms_[endpoint] = clock::now_ms() + kSessionFullHandshakeS * 1000;
  wake_later(endpoint);
}

void TlsContextCache::add_waiter(const std::string& endpoint, Waiter* w) {
  firsts_[endpoint].waiters.push_back(w);
}

void TlsContextCache::remove_waiter(const std::string& endpoint, Waiter* w) {
  auto it = firsts_.find(endpoint);
  if (it == firsts_.end()) return;
  auto& v = it->second.waiters;
  v.erase(std::remove(v.begin(), v.end(), w), v.end());
  if (v.empty() && it->second.started_ms == 0) firsts_.erase(it);
}

void TlsContextCache::wake_later(const std::string& endpoint) {
  auto it = firsts_.find(endpoint);
  if (it == firsts_.end() || it->second.started_ms == 0) return;
  it->second.started_ms = 0;
  if (it->second.waiters.empty()) {
    firsts_.erase(it);
    return;
  }
  struct Later {
    TlsContextCache* cache;
    std::string endpoint;
  };
  timeval now{0, 0};
  if (event_base_once(
          it->second.base, -1, EV_TIMEOUT,
          [](evutil_socket_t, short, void* arg) {
            std::unique_ptr<Later> later(static_cast<Later*>(arg));
            later->cache->wake(later->endpoint);
          },
          new Later{this, endpoint}, &now) != 0)
    wake(endpoint);
}

// A woken waiter runs at once, inside notify(), and takes itself off the list.
void TlsContextCache::wake(const std::string& endpoint) {
  for (;;) {
    auto it = firsts_.find(endpoint);
    if (it == firsts_.end() || it->second.started_ms != 0) return;  // a new first began
    auto& v = it->second.waiters;
    if (v.empty()) {
      firsts_.erase(it);
      return;
    }
    Waiter* w = v.back();
    v.pop_back();
    w->notify();
  }
}

namespace tls {

void resume_sessions(SSL* ssl, TlsContextCache& cache, const std::string& endpoint) {
  // Each connection gets its own copy: OpenSSL marks the session of a connection that ends
  // without close_notify as not resumable, and the kept one must stay usable.
  if (SSL_SESSION* kept = cache.session_for(endpoint)) {
    SslSessionPtr copy(SSL_SESSION_dup(kept));
    if (copy) (void)SSL_set_session(ssl, copy.get());
  }
  SSL_set_ex_data(ssl, resume_index(), new ResumeSlot{&cache, endpoint});
}

SslPtr new_client(SSL_CTX* ctx, const std::string& host, const TlsSettings& s, std::string& error) {
  SslPtr ssl(SSL_new(ctx));
  if (!ssl) {
    error = "cannot create TLS session: " + drain_errors();
    return nullptr;
  }
  SSL_set_ex_data(ssl.get(), verify_index(), new VerifyRecord);
  const std::string& name = s.server_name.empty() ? host : s.server_name;
  if (!name.empty() && !is_ip_literal(name)) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  if (s.verify && !name.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    int ok = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                 : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    if (ok != 1) {
      error = "cannot set the expected certificate name " + name;
      return nullptr;
    }
  }
  return ssl;
}

CertInfo describe_peer(SSL* ssl) {
  CertInfo info;
  info.tls_version = SSL_get_version(ssl);
  if (const char* c = SSL_get_cipher_name(ssl)) info.cipher = c;
  X509Ptr cert(SSL_get1_peer_certificate(ssl));
  if (cert) {
    const ASN1_TIME* end = X509_get0_notAfter(cert.get());
    struct tm tm_end;
    if (ASN1_TIME_to_tm(end, &tm_end) == 1) info.not_after = timegm(&tm_end);
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, nullptr, end) == 1) info.days_left = days;
    info.subject = name_line(X509_get_subject_name(cert.get()));
    info.issuer = name_line(X509_get_issuer_name(cert.get()));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert.get(), EVP_sha256(), md, &len) == 1) {
      static const char digits[] = "0123456789abcdef";
      for (unsigned i = 0; i < len; ++i) {
        info.sha256 += digits[md[i] >> 4];
        info.sha256 += digits[md[i] & 15];
      }
    }
  } else {
    info.verify_error = "server sent no certificate";
  }
  auto* rec = static_cast<VerifyRecord*>(SSL_get_ex_data(ssl, verify_index()));
  if (rec && !rec->errors.empty())
    info.verify_error = X509_verify_cert_error_string(rec->errors.front());
  return info;
}

std::string unaccepted_verify_error(SSL* ssl, const TlsSettings& s) {
  if (!s.verify) return {};
  X509Ptr cert(SSL_get1_peer_certificate(ssl));
  if (!cert) return "server sent no certificate";
  auto* rec = static_cast<VerifyRecord*>(SSL_get_ex_data(ssl, verify_index()));
  if (!rec) return {};
  for (int e : rec->errors) {
    bool selfsigned =
        e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
    if (selfsigned && s.allow_selfsigned) continue;
    return X509_verify_cert_error_string(e);
  }
  return {};
}

std::string drain_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    // Keep the human part: "error:0A000086:SSL routines::certificate verify failed" -> reason.
    const char* reason = ERR_reason_error_string(e);
    out += reason ? reason : buf;
  }
  return out;
}

}  // namespace tls
}  // namespace mw
