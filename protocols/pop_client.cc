#include "protocols/pop_client.h"

#include <cctype>

#include "net/failure.h"
#include "util/strings.h"

namespace mw::pop {
namespace {

// What a listing (UIDL, LIST) may keep, each line counting its size + 32: ~5,000 messages (a
// probe maildrop holds a few).
constexpr size_t kMaxListingBytes = 256 * 1024;
constexpr size_t kMaxCapaBytes = 64 * 1024;

bool parse_status(const std::string& line, Reply& r) {
  r.line = line;
  if (str::istarts_with(line, "+OK")) {
    r.ok = true;
    r.text = std::string(str::trim(line.substr(3)));
    return line.size() == 3 || line[3] == ' ';
  }
  if (str::istarts_with(line, "-ERR")) {
    r.ok = false;
    r.text = std::string(str::trim(line.substr(4)));
    return line.size() == 4 || line[4] == ' ';
  }
  return false;
}

bool parse_number(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  out = std::stoull(s);
  return true;
}

// RFC 3206: these say the server cannot serve now, not that the password is wrong.
bool is_temporary_refusal(const std::string& text) {
  return str::istarts_with(text, "[SYS/") || str::istarts_with(text, "[IN-USE]");
}

}  // namespace

Task<Reply> Session::read_status() {
  std::string line = co_await conn_.read_line();
  Reply r;
  if (!parse_status(line, r))
    throw ProbeError(FailureClass::protocol,
                     "not a POP3 status line: \"" + str::printable(line) + "\"", line);
  co_return r;
}

Task<Reply> Session::command(const std::string& line, const std::string& shown) {
  if (shown.empty()) {
    conn_.send(line + "\r\n");
  } else {
    conn_.send_secret(line + "\r\n", shown);
  }
  co_return co_await read_status();
}

Task<std::vector<std::string>> Session::read_multiline(size_t max_bytes) {
  std::vector<std::string> lines;
  size_t total = 0;
  for (;;) {
    std::string line = co_await conn_.read_line();
    if (line == ".") co_return lines;
    if (!line.empty() && line[0] == '.') line.erase(0, 1);
    total += line.size() + sizeof(std::string);  // what is kept, not only what is read
    if (total > max_bytes)
      throw ProbeError(FailureClass::protocol,
                       "multi-line reply longer than " + std::to_string(max_bytes) + " bytes");
    lines.push_back(std::move(line));
  }
}

Task<void> Session::greeting() {
  std::string line = co_await conn_.read_line();
  Reply r;
  bool status = parse_status(line, r);
  if (status && r.ok) co_return;
  if (status)
    throw ProbeError(FailureClass::rejected, "server refused the session: " + str::printable(line),
                     line);
  throw ProbeError(FailureClass::protocol,
                   "unexpected POP3 greeting: \"" + str::printable(line) + "\"", line);
}

Task<void> Session::capa() {
  caps_.clear();
  capa_known_ = false;
  Reply r = co_await command("CAPA");
  if (!r.ok) co_return;  // RFC 1939 servers: no capability list, nothing wrong
  auto lines = co_await read_multiline(kMaxCapaBytes);
  for (const auto& l : lines) {
    std::string entry = std::string(str::trim(l));
    if (entry.empty()) continue;
    auto space = entry.find(' ');
    caps_[str::upper(entry.substr(0, space))] =
        space == std::string::npos ? "" : std::string(str::trim(entry.substr(space + 1)));
  }
  capa_known_ = true;
}

bool Session::has_capability(const std::string& name) const {
  return caps_.count(str::upper(name)) > 0;
}

std::string Session::capability(const std::string& name) const {
  auto it = caps_.find(str::upper(name));
  return it == caps_.end() ? "" : it->second;
}

Task<void> Session::stls_command() {
  if (capa_known_ && !has_capability("STLS"))
    throw ProbeError(FailureClass::missing_feature, "server does not offer STLS");
  Reply r = co_await command("STLS");
  if (!r.ok)
    throw ProbeError(FailureClass::rejected, "STLS refused: " + str::printable(r.line), r.line);
}

Task<void> Session::login(const std::string& user, const std::string& password,
                          const std::string& authzid) {
  bool plain = false;
  for (const auto& m : str::split_ws(str::upper(capability("SASL"))))
    if (m == "PLAIN") plain = true;
  if (!authzid.empty() && !plain)
    throw ProbeError(FailureClass::missing_feature,
                     "server does not offer SASL PLAIN, needed to log in as another user");
  if (plain) {
    co_await auth_plain(user, password, authzid);
    co_return;
  }
  if (capa_known_ && !has_capability("USER"))
    throw ProbeError(FailureClass::missing_feature,
                     "server offers neither USER nor SASL PLAIN on this connection" +
                         std::string(conn_.tls_active() ? "" : " (it may want STLS first)"));
  co_await user_pass(user, password);
}

Task<void> Session::auth_plain(const std::string& user, const std::string& password,
                               const std::string& authzid) {
  std::string who = authzid.empty() ? user : authzid + " (as " + user + ")";
  std::string blob = str::base64_encode(authzid + '\0' + user + '\0' + password);
  conn_.add_secrets(password, blob);
  // RFC 5034 initial response: one round trip, and nothing to parse in between.
  conn_.send_secret("AUTH PLAIN " + blob + "\r\n", "AUTH PLAIN <credentials of " + who + ">");
  std::string line = co_await conn_.read_line();
  Reply r;
  if (!parse_status(line, r))
    throw ProbeError(FailureClass::protocol,
                     "unexpected reply to AUTH PLAIN: \"" + str::printable(line) + "\"", line);
  if (!r.ok) login_refused(who, r);
}

Task<void> Session::user_pass(const std::string& user, const std::string& password) {
  if (user.find_first_of("\r\n") != std::string::npos ||
      password.find_first_of("\r\n") != std::string::npos)
    throw ProbeError(FailureClass::internal, "user name or password contains CR or LF");
  Reply r = co_await command("USER " + user);
  if (!r.ok) login_refused(user, r);
  conn_.add_secrets(password);
  r = co_await command("PASS " + password, "PASS ****");
  if (!r.ok) login_refused(user, r);
}

void Session::login_refused(const std::string& who, const Reply& r) const {
  throw ProbeError(is_temporary_refusal(r.text) ? FailureClass::rejected : FailureClass::auth,
                   "login as " + who + " failed: " + str::printable(r.line), r.line);
}

Task<Maildrop> Session::stat() {
  Reply r = co_await command("STAT");
  if (!r.ok)
    throw ProbeError(FailureClass::rejected, "STAT refused: " + str::printable(r.line), r.line);
  auto words = str::split_ws(r.text);
  Maildrop m;
  if (words.size() < 2 || !parse_number(words[0], m.messages) || !parse_number(words[1], m.octets))
    throw ProbeError(FailureClass::protocol,
                     "unexpected reply to STAT: \"" + str::printable(r.line) + "\"", r.line);
  co_return m;
}

Task<std::vector<ListEntry>> Session::list() {
  Reply r = co_await command("LIST");
  if (!r.ok)
    throw ProbeError(FailureClass::rejected, "LIST refused: " + str::printable(r.line), r.line);
  std::vector<ListEntry> out;
  std::vector<std::string> lines = co_await read_multiline(kMaxListingBytes);
  for (const auto& line : lines) {
    auto words = str::split_ws(line);
    ListEntry e;
    if (words.size() < 2 || !parse_number(words[0], e.number) || !parse_number(words[1], e.octets))
      throw ProbeError(FailureClass::protocol,
                       "unexpected line in LIST: \"" + str::printable(line) + "\"", line);
    out.push_back(e);
  }
  co_return out;
}

Task<std::vector<UidlEntry>> Session::uidl() {
  Reply r = co_await command("UIDL");
  if (!r.ok)
    throw ProbeError(FailureClass::missing_feature, "UIDL refused: " + str::printable(r.line),
                     r.line);
  std::vector<UidlEntry> out;
  std::vector<std::string> lines = co_await read_multiline(kMaxListingBytes);
  for (const auto& line : lines) {
    auto words = str::split_ws(line);
    UidlEntry e;
    if (words.size() < 2 || !parse_number(words[0], e.number))
      throw ProbeError(FailureClass::protocol,
                       "unexpected line in UIDL: \"" + str::printable(line) + "\"", line);
    e.uid = words[1];
    out.push_back(std::move(e));
  }
  co_return out;
}

Task<std::string> Session::retr(uint64_t number, size_t max_bytes) {
  Reply r = co_await command("RETR " + std::to_string(number));
  if (!r.ok)
    throw ProbeError(FailureClass::rejected,
                     "RETR " + std::to_string(number) + " refused: " + str::printable(r.line),
                     r.line);
  std::string message;
  std::vector<std::string> lines = co_await read_multiline(max_bytes);
  for (const auto& line : lines) {
    message += line;
    message += "\r\n";
  }
  co_return message;
}

Task<void> Session::dele(uint64_t number) {
  Reply r = co_await command("DELE " + std::to_string(number));
  if (!r.ok)
    throw ProbeError(FailureClass::rejected,
                     "DELE " + std::to_string(number) + " refused: " + str::printable(r.line),
                     r.line);
}

Task<void> Session::quit() {
  conn_.send("QUIT\r\n");
  auto line = co_await conn_.read_line_or_close();
  if (!line) co_return;  // a close without the +OK still ends the session
  Reply r;
  if (!parse_status(*line, r))
    throw ProbeError(FailureClass::protocol,
                     "unexpected reply to QUIT: \"" + str::printable(*line) + "\"", *line);
  if (!r.ok)
    throw ProbeError(FailureClass::rejected, "QUIT answered: " + str::printable(*line), *line);
}

}  // namespace mw::pop
