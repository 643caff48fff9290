// An IMAP4rev1 client session over a Connection (RFC 3501 / RFC 9051): tagged commands, untagged
// responses with literals, STARTTLS, LOGIN / AUTHENTICATE PLAIN (with an authorization identity),
// SELECT, and a LOGOUT that tolerates what real servers do. The imap protocol test, the delivery
// check and the replication check all speak IMAP through this one class.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "net/connection.h"
#include "net/task.h"

namespace mw::imap {

struct Reply {
  std::string status;                 // OK, NO or BAD
  std::string line;                   // the whole tagged line
  std::vector<std::string> untagged;  // "* ..." lines, literals inlined
};

struct Login {
  std::string username;  // the user whose mailbox is used
  std::string password;
  std::string authcid;  // when set: SASL PLAIN, authenticating as this (master/admin) identity
};

class Session {
 public:
  explicit Session(Connection& conn) : conn_(conn) {}

  // Reads the greeting: "* OK" or "* PREAUTH"; a "* BYE" is a rejection, anything else a
  // protocol error.
  Task<void> greeting();
  // CAPABILITY; the set is refreshed after STARTTLS and login.
  Task<void> capability();
  [[nodiscard]] bool has_capability(const std::string& cap) const;
  [[nodiscard]] bool preauth() const { return preauth_; }

  // Sends STARTTLS and reads the go-ahead; the caller then upgrades the connection and calls
  // capability() again.
  Task<void> starttls_command();
  // Logs in, choosing AUTHENTICATE PLAIN (SASL-IR when offered) or LOGIN. `encrypted` says
  // whether the connection is protected; the caller has checked it may send the password.
  Task<void> login(const Login& login);
  Task<Reply> select(const std::string& mailbox);
  // LOGOUT: "* BYE" then tagged OK, "* BYE" then close, tagged OK only, or a close with nothing
  // are all success; tagged NO/BAD, garbage or silence fail.
  Task<void> logout();

  // Sends a command (tag added) and collects the reply. NO and BAD are returned, not thrown.
  Task<Reply> command(const std::string& text);
  // As command(), with `shown` logged instead of the text.
  Task<Reply> command_secret(const std::string& text, const std::string& shown);

  [[nodiscard]] Connection& connection() { return conn_; }

 private:
  std::string next_tag();
  // One response line with its literals appended ({N} continuation reads).
  Task<std::string> read_response_line();
  Task<Reply> collect(const std::string& tag);

  Connection& conn_;
  std::set<std::string> caps_;
  bool preauth_ = false;
  int tag_counter_ = 0;
};

// An IMAP quoted string, or a literal-free refusal when the text cannot be quoted (CR, LF, NUL).
[[nodiscard]] bool quote(const std::string& s, std::string& out);

}  // namespace mw::imap
