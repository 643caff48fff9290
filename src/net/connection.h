// One connection type for every protocol: plain TCP (or a unix socket), TLS from the first byte,
// or a STARTTLS upgrade in place. Reads are bounded (line length, total bytes), every wait has
// an inactivity timeout re-armed on progress, and the probe's scope can cancel it. Failures are
// thrown as classified ProbeErrors; "want read/write" never leaves this file.
#pragma once

#include <event2/bufferevent.h>

#include <sys/socket.h>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/endpoint.h"
#include "net/io_context.h"
#include "net/scope.h"
#include "net/task.h"
#include "net/tls.h"
#include "util/handles.h"

namespace mw {

struct ResolvedAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};
// The addresses of `endpoint.host` (port `endpoint.port`), through evdns; numeric addresses
// never touch the resolver. For checks that do not connect a stream (ping).
Task<std::vector<ResolvedAddress>> resolve_addresses(IoContext& io, Scope& scope,
                                                     const Endpoint& endpoint, int64_t timeout_ms);

struct ConnectionOptions {
  int64_t timeout_ms = 5000;    // inactivity: connect, handshake, or a read making no progress
  size_t max_line = 64 * 1024;  // longer lines fail with "line too long"
  size_t max_bytes = 64 * 1024 * 1024;  // bound on everything read from the peer
  std::string log_prefix;               // for -v transcripts: "service imaps 127.0.0.1:993"
  // Called after every TLS handshake.
  std::function<void(const std::shared_ptr<const CertInfo>&)> on_certificate;
};

class Connection {
 public:
  Connection(IoContext& io, Scope& scope, ConnectionOptions options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Resolves (evdns) and connects, trying each address in turn. Throws connect/timeout errors.
  Task<void> connect(const Endpoint& endpoint);
  // TLS handshake on the open connection (TLS from the first byte, or after a STARTTLS reply).
  // `host` is the name to send as SNI and to verify. Any bytes the server sent before the
  // handshake (a STARTTLS response injection) fail the connection.
  // `resume`: a session of another connection to the same server to resume (FTPS data
  // connections must resume the control connection's, RFC 4217 section 10.2).
  Task<void> start_tls(const TlsSettings& settings, const std::string& host,
                       SSL_SESSION* resume = nullptr);
  // The next start_tls does a full handshake and keeps its session out of the endpoint cache:
  // an FTPS control connection, whose own session its data connections must resume (vsftpd's
  // require_ssl_reuse refuses a data connection that resumes any other).
  void own_tls_session() { own_session_ = true; }
  // The TLS session to resume elsewhere (null without TLS), and whether this one was resumed.
  [[nodiscard]] SslSessionPtr tls_session() const;
  [[nodiscard]] bool tls_resumed() const;

  // The next line without its CRLF (or LF). Throws when the server closes first.
  Task<std::string> read_line();
  // As read_line, but an orderly or TLS-dirty close gives nullopt (for tolerant logouts).
  Task<std::optional<std::string>> read_line_or_close();
  // Exactly n bytes (IMAP literals).
  Task<std::string> read_exact(size_t n);
  // Whatever has arrived, at most `max` bytes, waiting (inactivity timeout) when nothing has;
  // nullopt once the server has closed and everything was read (HTTP bodies without a length).
  Task<std::optional<std::string>> read_some(size_t max);

  // What a dialogue that cannot know where a reply ends (send/expect) reads next.
  struct Received {
    enum class Kind { line, quiet, closed } kind = Kind::closed;
    std::string text;  // line: without its CRLF; quiet: the unterminated bytes so far (may be "")
  };
  // The next line; once bytes have arrived (or `started`), `quiet_ms` without a complete line
  // ends the wait quietly instead of failing. Before that, the inactivity timeout applies.
  Task<Received> read_line_until_quiet(int64_t quiet_ms, bool started);

  void send(std::string_view data);
  // Ends an upload whose end is the connection's end (FTP data connections): waits until
  // everything sent has left for the kernel, sends TLS close_notify (servers take a TLS stream
  // cut without it for a failed transfer), then closes. Inactivity timeout as for reads.
  Task<void> finish_and_close();
  // Sends `data` but logs `shown` (credentials never reach the log).
  void send_secret(std::string_view data, std::string_view shown);
  // Registers the forms of a password this connection sends (raw, its base64, a SASL PLAIN
  // blob) with the probe's scope: a server that echoes one gets it redacted from the
  // transcript, the result, the state file, the log and the alert mails.
  void add_secrets(const std::string& password, const std::string& sasl_blob = "");

  [[nodiscard]] bool tls_active() const { return tls_active_; }
  // The first line the server sent (its greeting), and when it was read (clock::now_us()).
  [[nodiscard]] const std::optional<std::string>& first_line() const { return first_line_; }
  [[nodiscard]] int64_t first_line_at_us() const { return first_line_at_us_; }
  [[nodiscard]] const std::shared_ptr<const CertInfo>& certificate() const { return cert_; }
  [[nodiscard]] const std::string& peer() const { return peer_; }
  [[nodiscard]] int64_t timeout_ms() const { return options_.timeout_ms; }
  void set_timeout_ms(int64_t ms) { options_.timeout_ms = ms; }
  // A protocol with its own line limit (IRC: 512 bytes) lowers the connection's.
  void set_max_line(size_t n) { options_.max_line = n; }
  // Closes now (TLS close_notify is attempted by freeing the bufferevent).
  void close();

 private:
  enum class Status { idle, connecting, handshaking, open, closed, failed };

  Task<void> connect_one(const struct sockaddr* sa, int salen);
  // Waits until the output (and the socket's beneath a TLS filter) is empty.
  Task<void> flush();
  // Waits for the next event from the bufferevent; throws on timeout.
  Task<void> wait_progress(const char* what);
  // TLS resumption: waits while the first full handshake of `endpoint` brings its session.
  Task<void> wait_for_session(const std::string& endpoint);
  void attach(bufferevent* bev);
  [[nodiscard]] std::optional<std::string> take_line();
  [[nodiscard]] bool take_line_ready() const;
  void fail_closed(const char* what);
  void log_line(char dir, std::string_view line) const;

  static void on_read(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);

  IoContext& io_;
  ConnectionOptions options_;
  Waiter waiter_;
  BuffereventPtr bev_;
  Status status_ = Status::idle;
  bool eof_ = false;
  bool tls_active_ = false;
  bool own_session_ = false;  // own_tls_session()
  std::string error_;         // the socket or TLS error reported by libevent
  size_t bytes_read_ = 0;
  std::string peer_;
  std::shared_ptr<const CertInfo> cert_;
  std::string first_handshake_of_;  // this connection does the first full handshake of it
  std::optional<std::string> first_line_;
  int64_t first_line_at_us_ = 0;
};

}  // namespace mw
