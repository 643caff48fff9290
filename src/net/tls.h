// TLS client settings, one SSL_CTX per distinct setting, and what a handshake tells us about the
// server's certificate. Verification is on by default: system trust store, TLS 1.2 or newer,
// the host name (or IP address) checked against the certificate.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <event2/event.h>

#include "util/handles.h"
#include "util/interned.h"

namespace mw {

enum class TlsVersion { auto_min, tls12, tls13 };

// Resolved settings for one connection (global `set ssl options` merged with the rule's own).
struct TlsSettings {
  bool verify = true;
  bool allow_selfsigned = false;
  Interned ca_file;  // interned: every check of a large configuration carries the same one
  Interned ca_path;
  TlsVersion min_version = TlsVersion::auto_min;  // auto = TLS 1.2 or newer
  std::string server_name;                        // overrides the host for SNI and the name check
  [[nodiscard]] std::string cache_key() const;
};

// What the handshake showed, recorded even when the dialogue later fails.
struct CertInfo {
  time_t not_after = 0;
  int days_left = 0;
  std::string subject;
  std::string issuer;
  std::string sha256;        // hex fingerprint of the DER certificate
  std::string verify_error;  // empty when the chain and the name verified
  std::string tls_version;   // "TLSv1.3"
  std::string cipher;
};

// Sessions are resumed per endpoint (the settings, the name, the address and port): the first
// probe of a server does a full handshake and verifies the chain and the name; the session it
// gets (with the server's certificate in it) lets the next probes of the same endpoint resume,
// which costs both sides a tenth of a full handshake. A session is only kept from a full
// handshake whose verification found nothing to say, it is never resumed once its certificate
// has expired, and it is dropped after kSessionFullHandshakeS: at least that often, every
// endpoint gets a full handshake and a fresh verification. A resumed probe reports the
// certificate that full handshake saw.
constexpr int64_t kSessionFullHandshakeS = 300;
// While the first full handshake of an endpoint runs, the other probes of that endpoint wait
// for the session it brings (their deadline paused, as at the handshake gate), at most this
// long after it started; then they shake hands in full, each on its own.
constexpr int64_t kFirstHandshakeWaitMs = 2000;

class Waiter;

class TlsContextCache {
 public:
  // Returns a context for these settings, or null with `error` set (unreadable CA file...).
  SSL_CTX* get(const TlsSettings& s, std::string& error);
  // Forgets every context and session (after a reload). Each SSL object holds a reference to
  // its context, so connections in flight are not affected.
  void clear() {
    contexts_.clear();
    sessions_.clear();
    no_session_until_ms_.clear();
    certificates_.clear();
  }

  // The session to resume for `endpoint`, or null (none yet, too old, certificate expired).
  // The cache keeps its reference: SSL_set_session takes its own.
  [[nodiscard]] SSL_SESSION* session_for(const std::string& endpoint);
  // Keeps a session of `endpoint` from a full handshake (takes the reference).
  void remember(const std::string& endpoint, SSL_SESSION* session);
  [[nodiscard]] size_t sessions() const { return sessions_.size(); }

  // The certificate facts a handshake showed, as one shared object: the one already held when
  // the same certificate was described the same way (a resumed session reports the certificate
  // its full handshake saw), so the results of every probe of a server share it.
  [[nodiscard]] std::shared_ptr<const CertInfo> intern(CertInfo&& info);

  // Single flight. True: a first full handshake of `endpoint` is running, and a probe without a
  // session should wait for it, at most `left_ms`.
  [[nodiscard]] bool first_running(const std::string& endpoint, int64_t& left_ms);
  // True: the caller does the first full handshake of `endpoint` and calls first_over() when
  // its connection ends. False: it does not (the endpoint gave no session last time).
  [[nodiscard]] bool begin_first(const std::string& endpoint, event_base* base);
  void first_over(const std::string& endpoint, bool handshake_completed);
  void add_waiter(const std::string& endpoint, Waiter* w);
  void remove_waiter(const std::string& endpoint, Waiter* w);

 private:
  struct Kept {
    SslSessionPtr session;
    int64_t full_handshake_ms = 0;
  };
  struct First {
    int64_t started_ms = 0;  // 0: over (the waiters are being woken)
    event_base* base = nullptr;
    std::vector<Waiter*> waiters;
  };
  // The waiters of `endpoint` run from the loop, not from inside OpenSSL's callback.
  void wake_later(const std::string& endpoint);
  void wake(const std::string& endpoint);
  std::map<std::string, First> firsts_;
  // Endpoints whose full handshake completed without a session (no tickets): no single flight
  // for them until then.
  std::map<std::string, int64_t> no_session_until_ms_;
  // At most this many endpoints keep a session (a probe per endpoint and a few addresses each).
  static constexpr size_t kMaxSessions = 65536;
  std::map<std::string, SslCtxPtr> contexts_;
  std::map<std::string, Kept> sessions_;
  // By fingerprint: the last description of each certificate (dropped when nothing holds it).
  std::map<std::string, std::shared_ptr<const CertInfo>> certificates_;
};

namespace tls {

// Prepares a client SSL object: SNI, the expected name or IP, a slot for verification errors.
[[nodiscard]] SslPtr new_client(SSL_CTX* ctx, const std::string& host, const TlsSettings& s,
                                std::string& error);
// Offers the session kept for `endpoint` (if any) and keeps the one this handshake brings, if
// it is a full handshake that verified cleanly.
void resume_sessions(SSL* ssl, TlsContextCache& cache, const std::string& endpoint);
// After a completed handshake: the certificate facts and the first verification error.
[[nodiscard]] CertInfo describe_peer(SSL* ssl);
// The verification failure that settings `s` do not accept, or empty.
[[nodiscard]] std::string unaccepted_verify_error(SSL* ssl, const TlsSettings& s);
// The OpenSSL error queue as one line (and clears it).
[[nodiscard]] std::string drain_errors();

}  // namespace tls
}  // namespace mw
