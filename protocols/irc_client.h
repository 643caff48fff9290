// An IRC client session over a Connection (RFC 1459, RFC 2812): registration (PASS, NICK,
// USER, done at 001, a nick already taken retried with a suffix), JOIN up to the end of the
// channel's NAMES list, PRIVMSG, PING answered wherever it comes, and a QUIT that waits for the
// server to have processed what came before. Lines are bounded at 512 bytes (RFC 2812 2.3).
// The delivery check's IRC sender and receiver speak IRC through it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "net/connection.h"
#include "net/task.h"

namespace mw::irc {

constexpr size_t kMaxLine = 512;  // with its CRLF

struct Message {
  std::string prefix;               // "nick!user@host" or a server name, without the ':'
  std::string command;              // upper case: "PRIVMSG", "001"
  std::vector<std::string> params;  // the trailing one included, without its ':'
  [[nodiscard]] std::string param(size_t i) const { return i < params.size() ? params[i] : ""; }
};

// Parses one line; false when it has no command.
[[nodiscard]] bool parse(const std::string& line, Message& out);
// Channel and nick names compare case-insensitively ("{}|^" fold to "[]\~", RFC 2812 2.2).
[[nodiscard]] bool same_name(const std::string& a, const std::string& b);

class Session {
 public:
  explicit Session(Connection& conn);

  // PASS (when `password` is not empty), NICK, USER; done at 001. A nick in use (433, 436) is
  // retried a few times with a suffix; a wrong password (464) is an authentication failure.
  Task<void> register_as(const std::string& nick, const std::string& password);
  // JOIN, done at the end of the channel's NAMES list (366). Refusals are rejections.
  Task<void> join(const std::string& channel);
  void privmsg(const std::string& target, const std::string& text);
  // The next message other than a PING (answered here); nullopt when `ms` pass quietly.
  // An ERROR from the server (it closes the session) fails.
  Task<std::optional<Message>> next(int64_t ms, const Scope& scope);
  // QUIT, then the server's ERROR or its close (bounded): what was sent before is processed.
  Task<void> quit();

  [[nodiscard]] const std::string& nick() const { return nick_; }

 private:
  Task<Message> read();

  Connection& conn_;
  std::string nick_;
};

}  // namespace mw::irc
