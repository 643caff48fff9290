// An SMTP / LMTP client session over a Connection (RFC 5321, RFC 2033, RFC 3207, RFC 4954):
// greeting, EHLO (HELO fallback) or LHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL/RCPT/DATA and a QUIT
// that tolerates a close. The smtp/submission/lmtp tests, the mail alerts and the delivery
// check's sender all speak SMTP through this one class.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "net/connection.h"
#include "net/task.h"

namespace mw::smtp {

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // without the "250-" / "250 " prefix
  std::string last_line;           // the final line as the server sent it
  [[nodiscard]] bool positive() const { return code >= 200 && code < 400; }
  [[nodiscard]] int cls() const { return code / 100; }
};

class Session {
 public:
  explicit Session(Connection& conn, bool lmtp = false) : conn_(conn), lmtp_(lmtp) {}

  // Reads the 220 greeting; a 554 (or any 4xx/5xx) greeting is a rejection.
  Task<void> greeting();
  // EHLO (LHLO for LMTP); with SMTP a 5xx answer falls back to HELO (no extensions then).
  Task<void> hello(const std::string& name);
  [[nodiscard]] bool has_extension(const std::string& keyword) const;
  // The parameters of an extension: "PLAIN LOGIN" for AUTH.
  [[nodiscard]] std::string extension(const std::string& keyword) const;

  // STARTTLS and its 220; the caller then upgrades the connection and says hello() again.
  Task<void> starttls_command();
  // AUTH PLAIN (preferred) or LOGIN. `authzid` is optional (PLAIN only).
  Task<void> auth(const std::string& user, const std::string& password,
                  const std::string& authzid = "");

  Task<Reply> mail_from(const std::string& address);
  Task<Reply> rcpt_to(const std::string& address);
  // DATA, the 354 go-ahead, the message (CRLF line ends, dot-stuffed here), the final reply.
  // For LMTP the reply of the first recipient is returned.
  Task<Reply> data(const std::string& message);
  Task<Reply> rset();
  // The envelope test of the smtp/submission/lmtp protocols: MAIL FROM (an empty `from` is the
  // null sender), then, when `rcpt` is given, RCPT TO must be accepted (250/251) or, with
  // `expect_reject`, refused with a 5xx (a 2xx is an open relay; a 4xx proves nothing); then
  // RSET. Never DATA: nothing is delivered.
  Task<void> probe_envelope(const std::string& from, const std::string& rcpt, bool expect_reject);
  // QUIT: a 221, or a close, ends the session well; anything else fails.
  Task<void> quit();

  // One command line (CRLF added) and its reply; `shown` is logged instead when not empty.
  Task<Reply> command(const std::string& line, const std::string& shown = "");
  Task<Reply> read_reply();

  [[nodiscard]] Connection& connection() { return conn_; }

 private:
  Connection& conn_;
  bool lmtp_;
  std::map<std::string, std::string> extensions_;  // upper-case keyword -> parameters
};

// "<a@b>" for MAIL/RCPT; an address already in brackets is kept.
[[nodiscard]] std::string path(const std::string& address);
// The name for EHLO/LHLO when none is configured: this host's name.
[[nodiscard]] std::string default_hello_name();

}  // namespace mw::smtp
