#include "net/connection.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "util/clock.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw {
namespace {

constexpr size_t kReadChunk = 4096;

std::string seconds_text(int64_t ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// State of one evdns lookup. It lives on the heap because a cancelled lookup may report back
// after the waiting coroutine is gone; whoever sees the end last frees it.
struct Lookup {
  Waiter* waiter = nullptr;  // null once the waiting side has given up
  evdns_getaddrinfo_request* request = nullptr;
  evutil_addrinfo* result = nullptr;
  int error = 0;
  bool done = false;

  static void on_done(int error, evutil_addrinfo* result, void* arg) {
    auto* self = static_cast<Lookup*>(arg);
    self->request = nullptr;
    if (!self->waiter) {  // abandoned
      if (result) evutil_freeaddrinfo(result);
      delete self;
      return;
    }
    self->error = error;
    self->result = result;
    self->done = true;
    self->waiter->notify();
  }
};

struct AddrinfoFree {
  void operator()(evutil_addrinfo* a) const {
    if (a) evutil_freeaddrinfo(a);
  }
};
using AddrinfoPtr = std::unique_ptr<evutil_addrinfo, AddrinfoFree>;

int family_of(AddressFamily f) {
  switch (f) {
    case AddressFamily::ipv4:
      return AF_INET;
    case AddressFamily::ipv6:
      return AF_INET6;
    case AddressFamily::any:
      break;
  }
  return AF_UNSPEC;
}

// "[::1]" -> "::1": the brackets of a URL or a monit control file are not part of the address.
std::string literal_host(const std::string& host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

// An address literal, valid or not: a name has letters and no colon; "1.2.3.999" is a bad
// address, never a name to look up.
bool looks_like_literal(const std::string& host) {
  if (host.find_first_of(":[]") != std::string::npos) return true;
  return !host.empty() && host.find_first_not_of("0123456789.") == std::string::npos;
}

// Resolves host:port; address literals ("192.0.2.1", "::1", "[::1]") never touch the resolver,
// also when they are malformed or of the wrong family.
Task<AddrinfoPtr> resolve(IoContext& io, Scope& scope, const Endpoint& ep, int64_t timeout_ms) {
  evutil_addrinfo hints{};
  hints.ai_family = family_of(ep.family);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV;
  std::string port = std::to_string(ep.port);
  std::string host = literal_host(ep.host);
  evutil_addrinfo* numeric = nullptr;
  if (evutil_getaddrinfo(host.c_str(), port.c_str(), &hints, &numeric) == 0) {
    co_return AddrinfoPtr(numeric);
  }
  if (looks_like_literal(ep.host)) {
    unsigned char buf[sizeof(in6_addr)];
    bool v4 = inet_pton(AF_INET, host.c_str(), buf) == 1;
    bool v6 = inet_pton(AF_INET6, host.c_str(), buf) == 1;
    std::string why = v4   ? "it is an IPv4 address and the test asks for IPv6"
                      : v6 ? "it is an IPv6 address and the test asks for IPv4"
                           : "it is not a valid IPv4 or IPv6 address";
    throw ProbeError(FailureClass::connect, "cannot connect to " + ep.host + ": " + why);
  }
  hints.ai_flags = EVUTIL_AI_NUMERICSERV | EVUTIL_AI_ADDRCONFIG;
  auto* lookup = new Lookup;
  Waiter waiter(scope);
  lookup->waiter = &waiter;
  lookup->request =
      evdns_getaddrinfo(io.dns, ep.host.c_str(), port.c_str(), &hints, &Lookup::on_done, lookup);
  try {
    while (!lookup->done) {
      // (GCC 12 miscompiles a co_await inside an if condition: keep awaits in statements.)
      Wake why = co_await waiter.wait(timeout_ms);
      if (why == Wake::timed_out)
        throw ProbeError(FailureClass::timeout,
                         "no DNS answer for " + ep.host + " within " + seconds_text(timeout_ms));
    }
  } catch (...) {
    lookup->waiter = nullptr;
    if (lookup->request) {
      evdns_getaddrinfo_cancel(lookup->request);  // on_done frees the lookup
    } else {
      delete lookup;
    }
    throw;
  }
  AddrinfoPtr result(lookup->result);
  int error = lookup->error;
  delete lookup;
  if (error != 0 || !result)
    throw ProbeError(FailureClass::connect,
                     "cannot resolve " + ep.host + ": " + evutil_gai_strerror(error));
  co_return result;
}

std::string socket_error_text() {
  int e = EVUTIL_SOCKET_ERROR();
  return e ? evutil_socket_error_to_string(e) : "connection closed";
}

}  // namespace

Task<std::vector<ResolvedAddress>> resolve_addresses(IoContext& io, Scope& scope,
                                                     const Endpoint& endpoint, int64_t timeout_ms) {
  AddrinfoPtr list = co_await resolve(io, scope, endpoint, timeout_ms);
  std::vector<ResolvedAddress> out;
  for (evutil_addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    ResolvedAddress a;
    memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
    a.len = static_cast<socklen_t>(ai->ai_addrlen);
    out.push_back(a);
  }
  co_return out;
}

Connection::Connection(IoContext& io, Scope& scope, ConnectionOptions options)
    : io_(io), options_(std::move(options)), waiter_(scope) {}

Connection::~Connection() {
  if (!first_handshake_of_.empty() && io_.tls)
    io_.tls->first_over(first_handshake_of_, tls_active_);
}

void Connection::attach(bufferevent* bev) {
  bev_.reset(bev);
  bufferevent_setcb(bev, &Connection::on_read, nullptr, &Connection::on_event, this);
  // Stop reading from the socket once a line's worth is buffered and unread: a hostile peer
  // cannot make us buffer more than this.
  bufferevent_setwatermark(bev, EV_READ, 0, options_.max_line + 4096);
  // Mail dialogues are short lines; small reads keep a thousand open connections cheap
  // (libevent's TLS layer otherwise reserves 32 KB per connection for every read).
  bufferevent_set_max_single_read(bev, kReadChunk);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

Task<void> Connection::connect(const Endpoint& endpoint) {
  peer_ = endpoint.describe();
  if (!endpoint.unix_path.empty()) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (endpoint.unix_path.size() >= sizeof sun.sun_path)
      throw ProbeError(FailureClass::connect, "unix socket path too long: " + endpoint.unix_path);
    memcpy(sun.sun_path, endpoint.unix_path.c_str(), endpoint.unix_path.size());
    co_await connect_one(reinterpret_cast<sockaddr*>(&sun), sizeof sun);
    co_return;
  }
  AddrinfoPtr addresses = co_await resolve(io_, waiter_.scope(), endpoint, options_.timeout_ms);
  std::string last_error;
  for (evutil_addrinfo* ai = addresses.get(); ai; ai = ai->ai_next) {
    try {
      co_await connect_one(ai->ai_addr, static_cast<int>(ai->ai_addrlen));
      co_return;
    } catch (const ProbeError& e) {
      if (e.cls() != FailureClass::connect || waiter_.scope().cancelled()) throw;
      last_error = e.what();
    }
  }
  throw ProbeError(FailureClass::connect,
                   last_error.empty() ? "no address for " + endpoint.host : last_error);
}

Task<void> Connection::connect_one(const sockaddr* sa, int salen) {
  bev_.reset();
  eof_ = false;
  error_.clear();
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ProbeError(FailureClass::internal, std::string("socket: ") + strerror(errno));
  bufferevent* bev = bufferevent_socket_new(io_.base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!bev) {
    ::close(fd);
    throw ProbeError(FailureClass::internal, "cannot create a bufferevent");
  }
  attach(bev);
  status_ = Status::connecting;
  if (bufferevent_socket_connect(bev, const_cast<sockaddr*>(sa), salen) < 0) {
    status_ = Status::failed;
    std::string why = socket_error_text();
    bev_.reset();
    throw ProbeError(FailureClass::connect, "cannot connect to " + peer_ + ": " + why);
  }
  while (status_ == Status::connecting) {
    try {
      co_await wait_progress("connect");
    } catch (const ProbeError& e) {
      bev_.reset();
      if (e.cls() == FailureClass::timeout && !waiter_.scope().cancelled())
        throw ProbeError(FailureClass::timeout, "connect to " + peer_ + " timed out after " +
                                                    seconds_text(options_.timeout_ms));
      throw;
    }
  }
  if (status_ != Status::open) {
    bev_.reset();
    throw ProbeError(FailureClass::connect, "cannot connect to " + peer_ + ": " + error_);
  }
  log_line('*', "connected to " + peer_);
}

Task<void> Connection::start_tls(const TlsSettings& settings, const std::string& host,
                                 SSL_SESSION* resume) {
  if (!bev_ || status_ != Status::open)
    throw ProbeError(FailureClass::protocol, "connection closed before the TLS handshake");
  if (evbuffer_get_length(bufferevent_get_input(bev_.get())) > 0)
    throw ProbeError(FailureClass::protocol,
                     "server sent data before the TLS handshake (response injection?)");
  std::string endpoint =
      settings.cache_key() + '|' + host + '|' + settings.server_name + '|' + peer_;
  bool cached = !resume && !own_session_;
  if (cached) co_await wait_for_session(endpoint);
  Gate::Pass pass;
  if (io_.handshakes) pass = co_await io_.handshakes->enter(waiter_.scope());
  std::string error;
  SSL_CTX* ctx = io_.tls->get(settings, error);
  if (!ctx) throw ProbeError(FailureClass::tls, error);
  SslPtr ssl = tls::new_client(ctx, host, settings, error);
  if (!ssl) throw ProbeError(FailureClass::tls, error);
  // A session the caller names (an FTP data connection resumes its control connection's)
  // wins over the one kept for the endpoint.
  if (resume) {
    // A copy: OpenSSL marks the session of a connection that ends without close_notify as not
    // resumable, and the next data connection must still resume the control connection's.
    SslSessionPtr copy(SSL_SESSION_dup(resume));
    if (SSL_set_session(ssl.get(), copy ? copy.get() : resume) != 1)
      throw ProbeError(FailureClass::tls, "cannot resume the TLS session: " + tls::drain_errors());
  } else if (cached) {
    tls::resume_sessions(ssl.get(), *io_.tls, endpoint);
  }
  // The filter takes the socket bufferevent and the SSL object, also when it fails (libevent
  // frees them then), so neither may be freed here again.
  bufferevent* under = bev_.release();
  bufferevent* filter = bufferevent_openssl_filter_new(
      io_.base, under, ssl.release(), BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
  if (!filter) {
    status_ = Status::failed;
    throw ProbeError(FailureClass::internal, "cannot create a TLS bufferevent");
  }
  attach(filter);
  bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
  status_ = Status::handshaking;
  log_line('*', "TLS handshake");
  while (status_ == Status::handshaking) {
    try {
      co_await wait_progress("TLS handshake");
    } catch (const ProbeError& e) {
      if (e.cls() == FailureClass::timeout && !waiter_.scope().cancelled())
        throw ProbeError(FailureClass::timeout,
                         "TLS handshake timed out after " + seconds_text(options_.timeout_ms));
      throw;
    }
  }
  if (status_ != Status::open)
    throw ProbeError(FailureClass::tls, "TLS handshake failed: " + error_);
  SSL* s = bufferevent_openssl_get_ssl(filter);
  cert_ = io_.tls ? io_.tls->intern(tls::describe_peer(s))
                  : std::make_shared<const CertInfo>(tls::describe_peer(s));
  tls_active_ = true;
  if (options_.on_certificate) options_.on_certificate(cert_);
  log_line('*', cert_->tls_version + " " + cert_->cipher + ", certificate " + cert_->subject +
                    ", " + std::to_string(cert_->days_left) + " days left" +
                    (SSL_session_reused(s) ? " (session resumed)" : ""));
  std::string rejected = tls::unaccepted_verify_error(s, settings);
  if (!rejected.empty())
    throw ProbeError(FailureClass::tls, "certificate verification failed: " + rejected);
}

Task<void> Connection::wait_for_session(const std::string& endpoint) {
  TlsContextCache& cache = *io_.tls;
  if (cache.session_for(endpoint)) co_return;
  int64_t left_ms = 0;
  if (!cache.first_running(endpoint, left_ms)) {
    if (first_handshake_of_.empty() && cache.begin_first(endpoint, io_.base))
      first_handshake_of_ = endpoint;
    co_return;
  }
  // Not the probe's own time, as at the handshake gate.
  Scope& scope = waiter_.scope();
  scope.pause_deadline();
  Waiter w(scope);
  cache.add_waiter(endpoint, &w);
  try {
    (void)co_await w.wait(left_ms);
  } catch (...) {
    cache.remove_waiter(endpoint, &w);
    scope.resume_deadline();
    throw;
  }
  cache.remove_waiter(endpoint, &w);
  scope.resume_deadline();
}

SslSessionPtr Connection::tls_session() const {
  if (!tls_active_ || !bev_) return nullptr;
  SSL* ssl = bufferevent_openssl_get_ssl(bev_.get());
  return SslSessionPtr(ssl ? SSL_get1_session(ssl) : nullptr);
}

bool Connection::tls_resumed() const {
  if (!tls_active_ || !bev_) return false;
  SSL* ssl = bufferevent_openssl_get_ssl(bev_.get());
  return ssl && SSL_session_reused(ssl) == 1;
}

Task<void> Connection::finish_and_close() {
  co_await flush();
  if (tls_active_) {
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev_.get())) {
      (void)SSL_shutdown(ssl);  // 0: close_notify queued, the peer's not awaited
      ERR_clear_error();
      co_await flush();
    }
  }
  close();
}

Task<void> Connection::flush() {
  // Polled: the TLS filter owns the callbacks of the socket's bufferevent beneath it.
  constexpr int64_t kPollMs = 5;
  int64_t quiet_ms = 0;
  size_t last = SIZE_MAX;
  for (;;) {
    if (!bev_ || status_ != Status::open) fail_closed("the end of the upload");
    size_t pending = evbuffer_get_length(bufferevent_get_output(bev_.get()));
    if (bufferevent* under = bufferevent_get_underlying(bev_.get()))
      pending += evbuffer_get_length(bufferevent_get_output(under));
    if (pending == 0) co_return;
    quiet_ms = pending < last ? 0 : quiet_ms + kPollMs;
    last = pending;
    if (quiet_ms > options_.timeout_ms)
      throw ProbeError(FailureClass::timeout, "could not send to " + peer_ + " within " +
                                                  seconds_text(options_.timeout_ms));
    Sleep sleep(waiter_.scope());
    (void)co_await sleep(kPollMs);
  }
}

Task<void> Connection::wait_progress(const char* what) {
  Wake why = co_await waiter_.wait(options_.timeout_ms);
  if (why == Wake::timed_out)
    throw ProbeError(FailureClass::timeout, std::string("no ") + what + " from " + peer_ +
                                                " within " + seconds_text(options_.timeout_ms));
}

std::optional<std::string> Connection::take_line() {
  evbuffer* in = bufferevent_get_input(bev_.get());
  size_t eol_len = 0;
  evbuffer_ptr eol = evbuffer_search_eol(in, nullptr, &eol_len, EVBUFFER_EOL_CRLF);
  size_t buffered = evbuffer_get_length(in);
  if ((eol.pos < 0 && buffered > options_.max_line) ||
      (eol.pos >= 0 && static_cast<size_t>(eol.pos) > options_.max_line))
    throw ProbeError(FailureClass::protocol,
                     "line too long (more than " + std::to_string(options_.max_line) + " bytes)");
  if (eol.pos < 0) return std::nullopt;
  std::string line(static_cast<size_t>(eol.pos), '\0');
  if (eol.pos > 0) evbuffer_remove(in, line.data(), line.size());
  evbuffer_drain(in, eol_len);
  bytes_read_ += line.size() + eol_len;
  if (bytes_read_ > options_.max_bytes)
    throw ProbeError(FailureClass::protocol,
                     "server sent more than " + std::to_string(options_.max_bytes) + " bytes");
  log_line('S', line);
  if (!first_line_) {
    first_line_ = line.substr(0, 1024);
    first_line_at_us_ = clock::now_us();
  }
  return line;
}

Task<std::optional<std::string>> Connection::read_line_or_close() {
  for (;;) {
    if (!bev_) co_return std::nullopt;
    if (auto line = take_line()) co_return line;
    if (eof_) {
      // A last line without its CRLF still counts.
      evbuffer* in = bufferevent_get_input(bev_.get());
      size_t left = evbuffer_get_length(in);
      if (left == 0) co_return std::nullopt;
      std::string rest(left, '\0');
      evbuffer_remove(in, rest.data(), left);
      log_line('S', rest);
      co_return rest;
    }
    co_await wait_progress("reply");
  }
}

Task<std::string> Connection::read_line() {
  auto line = co_await read_line_or_close();
  if (!line) fail_closed("a reply");
  co_return std::move(*line);
}

Task<std::string> Connection::read_exact(size_t n) {
  if (n > options_.max_bytes)
    throw ProbeError(FailureClass::protocol,
                     "server announced " + std::to_string(n) + " bytes, more than allowed");
  bufferevent_setwatermark(bev_.get(), EV_READ, 0, n + options_.max_line + 4096);
  for (;;) {
    evbuffer* in = bufferevent_get_input(bev_.get());
    if (evbuffer_get_length(in) >= n) {
      std::string data(n, '\0');
      if (n > 0) evbuffer_remove(in, data.data(), n);
      bytes_read_ += n;
      bufferevent_setwatermark(bev_.get(), EV_READ, 0, options_.max_line + 4096);
      log_line('S', "{" + std::to_string(n) + " bytes}");
      co_return data;
    }
    if (eof_) fail_closed("literal data");
    co_await wait_progress("data");
  }
}

Task<std::optional<std::string>> Connection::read_some(size_t max) {
  for (;;) {
    if (!bev_) co_return std::nullopt;
    evbuffer* in = bufferevent_get_input(bev_.get());
    size_t n = std::min(evbuffer_get_length(in), max);
    if (n > 0) {
      std::string data(n, '\0');
      evbuffer_remove(in, data.data(), n);
      bytes_read_ += n;
      if (bytes_read_ > options_.max_bytes)
        throw ProbeError(FailureClass::protocol,
                         "server sent more than " + std::to_string(options_.max_bytes) + " bytes");
      log_line('S', "{" + std::to_string(n) + " bytes}");
      co_return data;
    }
    if (eof_) {
      if (!error_.empty()) fail_closed("data");
      co_return std::nullopt;
    }
    co_await wait_progress("data");
  }
}

Task<Connection::Received> Connection::read_line_until_quiet(int64_t quiet_ms, bool started) {
  for (;;) {
    if (!bev_) co_return Received{Received::Kind::closed, {}};
    if (auto line = take_line()) co_return Received{Received::Kind::line, std::move(*line)};
    evbuffer* in = bufferevent_get_input(bev_.get());
    size_t left = evbuffer_get_length(in);
    auto take_rest = [&] {
      std::string rest(left, '\0');
      if (left > 0) evbuffer_remove(in, rest.data(), left);
      bytes_read_ += left;
      if (left > 0) log_line('S', rest);
      return rest;
    };
    if (eof_) {
      if (left == 0) co_return Received{Received::Kind::closed, {}};
      co_return Received{Received::Kind::line, take_rest()};
    }
    if (!started && left == 0) {
      co_await wait_progress("reply");
      continue;
    }
    Wake why = co_await waiter_.wait(std::min(quiet_ms, options_.timeout_ms));
    if (why == Wake::timed_out && !take_line_ready()) {
      left = evbuffer_get_length(in);
      co_return Received{Received::Kind::quiet, take_rest()};
    }
  }
}

bool Connection::take_line_ready() const {
  if (!bev_) return false;
  evbuffer* in = bufferevent_get_input(bev_.get());
  size_t eol_len = 0;
  return evbuffer_search_eol(in, nullptr, &eol_len, EVBUFFER_EOL_CRLF).pos >= 0;
}

void Connection::fail_closed(const char* what) {
  std::string why = error_.empty() ? "server closed the connection" : error_;
  throw ProbeError(FailureClass::protocol, why + " while waiting for " + what);
}

void Connection::send(std::string_view data) {
  if (!bev_) throw ProbeError(FailureClass::protocol, "connection already closed");
  bufferevent_write(bev_.get(), data.data(), data.size());
  if (log::verbose()) {
    std::string_view text = data;
    while (!text.empty()) {
      auto nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      log_line('C', line);
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
  }
}

void Connection::send_secret(std::string_view data, std::string_view shown) {
  if (!bev_) throw ProbeError(FailureClass::protocol, "connection already closed");
  bufferevent_write(bev_.get(), data.data(), data.size());
  log_line('C', shown);
}

void Connection::add_secrets(const std::string& password, const std::string& sasl_blob) {
  Scope& scope = waiter_.scope();
  scope.add_secret(password);
  scope.add_secret(str::printable(password, password.size() * 4 + 8));
  scope.add_secret(str::quote(password).substr(1, str::quote(password).size() - 2));
  scope.add_secret(str::base64_encode(password));
  scope.add_secret(sasl_blob);
}

void Connection::close() {
  bev_.reset();
  status_ = Status::closed;
}

void Connection::log_line(char dir, std::string_view line) const {
  if (!log::verbose()) return;
  std::string shown = str::printable(line, 400);
  if (dir == 'S') shown = waiter_.scope().redact(shown);
  log::debug("%s %c: %s", options_.log_prefix.c_str(), dir, shown.c_str());
}

void Connection::on_read(bufferevent*, void* arg) {
  static_cast<Connection*>(arg)->waiter_.notify();
}

void Connection::on_event(bufferevent* bev, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    self->status_ = Status::open;
  } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    if (what & BEV_EVENT_ERROR) {
      std::string tls_errors;
      while (unsigned long e = bufferevent_get_openssl_error(bev)) {
        // libevent also queues plain socket errors here; only OpenSSL's have a reason text.
        const char* reason = ERR_reason_error_string(e);
        if (!reason) continue;
        if (!tls_errors.empty()) tls_errors += "; ";
        tls_errors += reason;
      }
      self->error_ = !tls_errors.empty() ? tls_errors : socket_error_text();
    } else if (self->status_ == Status::handshaking || self->status_ == Status::connecting) {
      self->error_ = "server closed the connection";
    }
    self->eof_ = true;
    if (self->status_ == Status::connecting || self->status_ == Status::handshaking)
      self->status_ = Status::failed;
  }
  self->waiter_.notify();  // may destroy self
}

}  // namespace mw
