#include "protocols/irc_client.h"

#include <cctype>

#include "net/failure.h"
#include "util/strings.h"

namespace mw::irc {
namespace {

constexpr int kNickAttempts = 5;
constexpr size_t kMaxNickLen = 9;            // RFC 2812's limit, ngIRCd's default
constexpr int kMaxRegistrationLines = 2000;  // the MOTD and the server's notices
constexpr int kMaxQuitLines = 200;

char fold(char c) {
  switch (c) {
    case '{':
      return '[';
    case '}':
      return ']';
    case '|':
      return '\\';
    case '^':
      return '~';
    default:
      return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
}

bool clean(const std::string& s) {
  return s.find_first_of(std::string("\r\n\0", 3)) == std::string::npos;
}

// The server's words for a failure, without its numeric's target (our nick).
std::string said(const Message& m) {
  std::string text = m.command;
  for (size_t i = 1; i < m.params.size(); ++i) text += " " + m.params[i];
  return str::printable(text);
}

}  // namespace

bool parse(const std::string& line, Message& out) {
  out = Message{};
  size_t pos = 0;
  if (!line.empty() && line[0] == '@') {  // IRCv3 tags: skipped
    pos = line.find(' ');
    if (pos == std::string::npos) return false;
    while (pos < line.size() && line[pos] == ' ') ++pos;
  }
  if (pos < line.size() && line[pos] == ':') {
    size_t sp = line.find(' ', pos);
    if (sp == std::string::npos) return false;
    out.prefix = line.substr(pos + 1, sp - pos - 1);
    pos = sp;
  }
  while (pos < line.size() && line[pos] == ' ') ++pos;
  size_t sp = line.find(' ', pos);
  out.command = str::upper(line.substr(pos, sp == std::string::npos ? sp : sp - pos));
  if (out.command.empty()) return false;
  pos = sp;
  while (pos != std::string::npos && pos < line.size()) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    if (pos >= line.size()) break;
    if (line[pos] == ':') {
      out.params.push_back(line.substr(pos + 1));
      break;
    }
    sp = line.find(' ', pos);
    out.params.push_back(line.substr(pos, sp == std::string::npos ? sp : sp - pos));
    pos = sp;
  }
  return true;
}

bool same_name(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (fold(a[i]) != fold(b[i])) return false;
  return true;
}

Session::Session(Connection& conn) : conn_(conn) {
  conn_.set_max_line(kMaxLine);
}

Task<Message> Session::read() {
  for (;;) {
    std::string line = co_await conn_.read_line();
    Message m;
    if (!parse(line, m))
      throw ProbeError(FailureClass::protocol,
                       "not an IRC message: \"" + str::printable(line) + "\"", line);
    if (m.command == "PING") {
      conn_.send("PONG :" + m.param(0) + "\r\n");
      continue;
    }
    if (m.command == "ERROR")
      throw ProbeError(FailureClass::rejected,
                       "server closed the session: " + str::printable(m.param(0)), line);
    co_return m;
  }
}

Task<void> Session::register_as(const std::string& nick, const std::string& password) {
  if (nick.empty() || !clean(nick) || nick.find(' ') != std::string::npos)
    throw ProbeError(FailureClass::internal, "an IRC nick cannot be empty or hold spaces");
  if (!password.empty()) {
    if (!clean(password))
      throw ProbeError(FailureClass::auth, "the IRC password contains CR or LF");
    conn_.add_secrets(password);
    conn_.send_secret("PASS " + password + "\r\n", "PASS <password>");
  }
  nick_ = nick;
  conn_.send("NICK " + nick_ + "\r\nUSER " + nick_ + " 0 * :mailwarden delivery probe\r\n");
  int attempt = 0;
  for (int n = 0; n < kMaxRegistrationLines; ++n) {
    Message m = co_await read();
    if (m.command == "001") {
      if (!m.param(0).empty()) nick_ = m.param(0);  // the server's spelling
      co_return;
    }
    if (m.command == "433" || m.command == "436") {
      if (++attempt >= kNickAttempts)
        throw ProbeError(FailureClass::rejected,
                         "the nick " + nick + " and its variants are taken: " + said(m));
      // "nick_1", "nick_2" ... cut to the usual limit of 9 characters.
      std::string suffix = "_" + std::to_string(attempt);
      nick_ =
          nick.substr(0, kMaxNickLen > suffix.size() ? kMaxNickLen - suffix.size() : 1) + suffix;
      conn_.send("NICK " + nick_ + "\r\n");
      continue;
    }
    if (m.command == "464")
      throw ProbeError(FailureClass::auth, "the server refused the password: " + said(m));
    if (m.command == "432")
      throw ProbeError(FailureClass::rejected, "the nick " + nick_ + " is refused: " + said(m));
    if (m.command.size() == 3 && (m.command[0] == '4' || m.command[0] == '5'))
      throw ProbeError(FailureClass::rejected, "registration refused: " + said(m));
  }
  throw ProbeError(FailureClass::protocol,
                   "no welcome (001) after " + std::to_string(kMaxRegistrationLines) + " lines");
}

Task<void> Session::join(const std::string& channel) {
  if (channel.empty() || !clean(channel) || channel.find_first_of(" ,") != std::string::npos)
    throw ProbeError(FailureClass::internal, "an IRC channel name cannot hold spaces or commas");
  conn_.send("JOIN " + channel + "\r\n");
  for (int n = 0; n < kMaxRegistrationLines; ++n) {
    Message m = co_await read();
    if (m.command == "366" && same_name(m.param(1), channel)) co_return;
    static const char* const refusals[] = {"403", "405", "437", "471", "473",
                                           "474", "475", "476", "477", "479"};
    for (const char* code : refusals)
      if (m.command == code)
        throw ProbeError(FailureClass::rejected, "JOIN " + channel + " refused: " + said(m));
  }
  throw ProbeError(FailureClass::protocol, "no end of NAMES (366) for " + channel);
}

void Session::privmsg(const std::string& target, const std::string& text) {
  std::string line = "PRIVMSG " + target + " :" + text;
  if (!clean(line) || line.size() + 2 > kMaxLine)
    throw ProbeError(FailureClass::internal, "an IRC message must fit on one line of 512 bytes");
  conn_.send(line + "\r\n");
}

Task<std::optional<Message>> Session::next(int64_t ms, const Scope& scope) {
  int64_t saved = conn_.timeout_ms();
  conn_.set_timeout_ms(std::max<int64_t>(1, ms));
  std::optional<Message> out;
  bool timed_out = false;
  try {
    out = co_await read();
  } catch (const ProbeError& e) {
    conn_.set_timeout_ms(saved);
    // A quiet channel is no error; a broken connection or a cancelled run (deadline) is.
    if (e.cls() != FailureClass::timeout || scope.cancelled()) throw;
    timed_out = true;
  }
  if (!timed_out) conn_.set_timeout_ms(saved);
  co_return out;
}

Task<void> Session::quit() {
  conn_.send("QUIT :probe done\r\n");
  for (int n = 0; n < kMaxQuitLines; ++n) {
    auto line = co_await conn_.read_line_or_close();
    if (!line) break;
    Message m;
    if (parse(*line, m) && m.command == "ERROR") break;
  }
  conn_.close();
}

}  // namespace mw::irc
