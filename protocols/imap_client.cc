#include "protocols/imap_client.h"

#include <cctype>

#include "net/failure.h"
#include "util/strings.h"

namespace mw::imap {
namespace {

// "{123}" or "{123+}" at the end of a line announces a literal of that many bytes.
bool literal_size(const std::string& line, size_t& n) {
  if (line.empty() || line.back() != '}') return false;
  size_t open = line.rfind('{');
  if (open == std::string::npos) return false;
  std::string digits = line.substr(open + 1, line.size() - open - 2);
  if (!digits.empty() && digits.back() == '+') digits.pop_back();
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  n = std::stoul(digits);
  return true;
}

// Splits "TAG STATUS text" of a tagged line.
bool tagged_status(const std::string& line, const std::string& tag, std::string& status) {
  if (line.size() <= tag.size() + 1 || line.compare(0, tag.size(), tag) != 0 ||
      line[tag.size()] != ' ')
    return false;
  auto words = str::split_ws(line.substr(tag.size() + 1));
  if (words.empty()) return false;
  status = str::lower(words[0]) == "ok"    ? "OK"
           : str::lower(words[0]) == "no"  ? "NO"
           : str::lower(words[0]) == "bad" ? "BAD"
                                           : "";
  return !status.empty();
}

void parse_capabilities(const std::string& text, std::set<std::string>& caps) {
  caps.clear();
  for (const auto& w : str::split_ws(text)) {
    std::string cap = w;
    if (!cap.empty() && cap.back() == ']') cap.pop_back();
    caps.insert(str::lower(cap));
  }
}

}  // namespace

bool quote(const std::string& s, std::string& out) {
  out = "\"";
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return true;
}

std::string Session::next_tag() {
  return "mw" + std::to_string(++tag_counter_);
}

Task<std::string> Session::read_response_line() {
  std::string line = co_await conn_.read_line();
  size_t n = 0;
  int literals = 0;
  while (literal_size(line, n)) {
    if (++literals > 1000)
      throw ProbeError(FailureClass::protocol, "response with more than 1000 literals");
    line += "\r\n";
    line += co_await conn_.read_exact(n);
    line += co_await conn_.read_line();
  }
  co_return line;
}

Task<void> Session::greeting() {
  std::string line = co_await read_response_line();
  if (str::istarts_with(line, "* OK")) {
    preauth_ = false;
  } else if (str::istarts_with(line, "* PREAUTH")) {
    preauth_ = true;
  } else if (str::istarts_with(line, "* BYE")) {
    throw ProbeError(FailureClass::rejected, "server refused the session: " + str::printable(line),
                     line);
  } else {
    throw ProbeError(FailureClass::protocol,
                     "unexpected IMAP greeting: \"" + str::printable(line) + "\"", line);
  }
}

Task<Reply> Session::collect(const std::string& tag) {
  Reply reply;
  for (int lines = 0;; ++lines) {
    std::string line = co_await read_response_line();
    std::string status;
    if (tagged_status(line, tag, status)) {
      reply.status = status;
      reply.line = line;
      co_return reply;
    }
    if (line.rfind("* ", 0) == 0) {
      if (str::istarts_with(line, "* BYE"))
        throw ProbeError(FailureClass::rejected,
                         "server closed the session: " + str::printable(line), line);
      reply.untagged.push_back(std::move(line));
      continue;
    }
    if (line.rfind("+", 0) == 0) {
      throw ProbeError(FailureClass::protocol,
                       "unexpected continuation request: \"" + str::printable(line) + "\"", line);
    }
    throw ProbeError(FailureClass::protocol,
                     "unexpected IMAP response: \"" + str::printable(line) + "\"", line);
  }
}

Task<Reply> Session::command(const std::string& text) {
  std::string tag = next_tag();
  conn_.send(tag + " " + text + "\r\n");
  co_return co_await collect(tag);
}

Task<Reply> Session::command_secret(const std::string& text, const std::string& shown) {
  std::string tag = next_tag();
  conn_.send_secret(tag + " " + text + "\r\n", tag + " " + shown);
  co_return co_await collect(tag);
}

Task<void> Session::capability() {
  Reply r = co_await command("CAPABILITY");
  if (r.status != "OK")
    throw ProbeError(FailureClass::protocol, "CAPABILITY failed: " + str::printable(r.line),
                     r.line);
  for (const auto& u : r.untagged)
    if (str::istarts_with(u, "* CAPABILITY ")) parse_capabilities(u.substr(13), caps_);
}

bool Session::has_capability(const std::string& cap) const {
  return caps_.count(str::lower(cap)) > 0;
}

Task<void> Session::starttls_command() {
  if (preauth_)
    throw ProbeError(FailureClass::missing_feature,
                     "server greeted with PREAUTH, so STARTTLS is not possible");
  if (!has_capability("STARTTLS"))
    throw ProbeError(FailureClass::missing_feature, "server does not offer STARTTLS");
  Reply r = co_await command("STARTTLS");
  if (r.status != "OK")
    throw ProbeError(FailureClass::rejected, "STARTTLS refused: " + str::printable(r.line), r.line);
}

Task<void> Session::login(const Login& login) {
  if (preauth_) co_return;  // already authenticated by the server's own means
  bool master = !login.authcid.empty();
  if (has_capability("LOGINDISABLED") && !conn_.tls_active())
    throw ProbeError(FailureClass::missing_feature,
                     "server advertises LOGINDISABLED: it takes no password on this unencrypted "
                     "connection (use starttls or imaps)");
  if (has_capability("LOGINDISABLED") && !has_capability("AUTH=PLAIN"))
    throw ProbeError(FailureClass::missing_feature,
                     "server offers neither LOGIN (LOGINDISABLED) nor AUTH=PLAIN");
  Reply r;
  std::string who = master ? login.username + " (as " + login.authcid + ")" : login.username;
  if (master || has_capability("AUTH=PLAIN")) {
    if (!has_capability("AUTH=PLAIN"))
      throw ProbeError(FailureClass::missing_feature,
                       "server does not offer AUTH=PLAIN, needed to log in as another user");
    std::string authzid = master ? login.username : "";
    std::string authcid = master ? login.authcid : login.username;
    std::string blob = str::base64_encode(authzid + '\0' + authcid + '\0' + login.password);
    if (has_capability("SASL-IR")) {
      r = co_await command_secret("AUTHENTICATE PLAIN " + blob, "AUTHENTICATE PLAIN <" + who + ">");
    } else {
      std::string tag = next_tag();
      conn_.send(tag + " AUTHENTICATE PLAIN\r\n");
      std::string cont = co_await read_response_line();
      if (cont.rfind("+", 0) != 0) {
        std::string status;
        if (tagged_status(cont, tag, status))
          throw ProbeError(FailureClass::missing_feature,
                           "AUTHENTICATE PLAIN refused: " + str::printable(cont), cont);
        throw ProbeError(
            FailureClass::protocol,
            "expected a continuation for AUTHENTICATE, got \"" + str::printable(cont) + "\"", cont);
      }
      conn_.send_secret(blob + "\r\n", "<credentials of " + who + ">");
      r = co_await collect(tag);
    }
  } else {
    std::string user, pass;
    if (!quote(login.username, user) || !quote(login.password, pass))
      throw ProbeError(FailureClass::internal, "user name or password contains CR, LF or NUL");
    r = co_await command_secret("LOGIN " + user + " " + pass, "LOGIN " + user + " ****");
  }
  if (r.status == "NO")
    throw ProbeError(FailureClass::auth, "login as " + who + " failed: " + str::printable(r.line),
                     r.line);
  if (r.status != "OK")
    throw ProbeError(FailureClass::protocol,
                     "login as " + who + " answered: " + str::printable(r.line), r.line);
}

Task<Reply> Session::select(const std::string& mailbox) {
  std::string name;
  if (!quote(mailbox, name))
    throw ProbeError(FailureClass::internal, "mailbox name contains CR, LF or NUL");
  Reply r = co_await command("SELECT " + name);
  if (r.status != "OK")
    throw ProbeError(FailureClass::rejected,
                     "cannot select " + mailbox + ": " + str::printable(r.line), r.line);
  co_return r;
}

Task<void> Session::logout() {
  std::string tag = next_tag();
  conn_.send(tag + " LOGOUT\r\n");
  for (int lines = 0; lines < 100; ++lines) {
    auto line = co_await conn_.read_line_or_close();
    if (!line) co_return;  // a close (with or without "* BYE" before it) ends the session
    std::string status;
    if (tagged_status(*line, tag, status)) {
      if (status == "OK") co_return;
      throw ProbeError(status == "NO" ? FailureClass::rejected : FailureClass::protocol,
                       "LOGOUT answered " + status + ": " + str::printable(*line), *line);
    }
    if (line->rfind("* ", 0) == 0) continue;  // * BYE, or an untagged update before it
    throw ProbeError(FailureClass::protocol,
                     "unexpected reply to LOGOUT: \"" + str::printable(*line) + "\"", *line);
  }
  throw ProbeError(FailureClass::protocol, "more than 100 lines in reply to LOGOUT");
}

}  // namespace mw::imap
