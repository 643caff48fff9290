#include "protocols/smtp_client.h"

#include <unistd.h>

#include <cctype>

#include "net/failure.h"
#include "util/strings.h"

namespace mw::smtp {
namespace {

constexpr int kMaxReplyLines = 1000;
// What one reply may keep (an EHLO reply is well under 1 KB); each line counts its size + 32.
constexpr size_t kMaxReplyKeep = 64 * 1024;

bool parse_code(const std::string& line, int& code, char& sep) {
  if (line.size() < 3) return false;
  for (int i = 0; i < 3; ++i)
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return false;
  code = std::stoi(line.substr(0, 3));
  sep = line.size() > 3 ? line[3] : ' ';
  return sep == ' ' || sep == '-';
}

}  // namespace

std::string default_hello_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || !name[0]) return "localhost";
  return name;
}

std::string path(const std::string& address) {
  if (!address.empty() && address.front() == '<') return address;
  return "<" + address + ">";
}

Task<Reply> Session::read_reply() {
  Reply reply;
  size_t kept = 0;
  for (int n = 0; n < kMaxReplyLines; ++n) {
    std::string line = co_await conn_.read_line();
    int code = 0;
    char sep = ' ';
    if (!parse_code(line, code, sep))
      throw ProbeError(FailureClass::protocol,
                       "not an SMTP reply: \"" + str::printable(line) + "\"", line);
    if (reply.code != 0 && code != reply.code)
      throw ProbeError(
          FailureClass::protocol,
          "reply code changed inside a multi-line reply: \"" + str::printable(line) + "\"", line);
    reply.code = code;
    kept += line.size() + sizeof(std::string);
    if (kept > kMaxReplyKeep)
      throw ProbeError(FailureClass::protocol,
                       "reply longer than " + std::to_string(kMaxReplyKeep / 1024) + " KiB");
    reply.lines.push_back(line.size() > 4 ? line.substr(4) : "");
    if (sep == ' ') {
      reply.last_line = line;
      co_return reply;
    }
  }
  throw ProbeError(FailureClass::protocol,
                   "reply longer than " + std::to_string(kMaxReplyLines) + " lines");
}

Task<Reply> Session::command(const std::string& line, const std::string& shown) {
  if (shown.empty()) {
    conn_.send(line + "\r\n");
  } else {
    conn_.send_secret(line + "\r\n", shown);
  }
  co_return co_await read_reply();
}

Task<void> Session::greeting() {
  Reply r = co_await read_reply();
  if (r.code == 220) co_return;
  if (r.cls() == 4 || r.cls() == 5)
    throw ProbeError(FailureClass::rejected,
                     "server refused the session: " + str::printable(r.last_line), r.last_line);
  throw ProbeError(FailureClass::protocol,
                   "unexpected SMTP greeting: \"" + str::printable(r.last_line) + "\"",
                   r.last_line);
}

Task<void> Session::hello(const std::string& name) {
  extensions_.clear();
  const char* verb = lmtp_ ? "LHLO" : "EHLO";
  Reply r = co_await command(std::string(verb) + " " + name);
  if (r.code != 250 && !lmtp_ && r.cls() == 5) {
    r = co_await command("HELO " + name);
    if (r.code == 250) co_return;
  }
  if (r.code != 250)
    throw ProbeError(
        FailureClass::rejected,
        std::string(lmtp_ ? "LHLO" : "EHLO/HELO") + " refused: " + str::printable(r.last_line),
        r.last_line);
  for (size_t i = 1; i < r.lines.size(); ++i) {
    std::string line = std::string(str::trim(r.lines[i]));
    auto space = line.find(' ');
    std::string keyword = str::upper(line.substr(0, space));
    extensions_[keyword] = space == std::string::npos ? "" : line.substr(space + 1);
  }
}

bool Session::has_extension(const std::string& keyword) const {
  return extensions_.count(str::upper(keyword)) > 0;
}

std::string Session::extension(const std::string& keyword) const {
  auto it = extensions_.find(str::upper(keyword));
  return it == extensions_.end() ? "" : it->second;
}

Task<void> Session::starttls_command() {
  if (!has_extension("STARTTLS"))
    throw ProbeError(FailureClass::missing_feature, "server does not offer STARTTLS");
  Reply r = co_await command("STARTTLS");
  if (r.code != 220)
    throw ProbeError(FailureClass::rejected, "STARTTLS refused: " + str::printable(r.last_line),
                     r.last_line);
}

Task<void> Session::auth(const std::string& user, const std::string& password,
                         const std::string& authzid) {
  if (!has_extension("AUTH"))
    throw ProbeError(FailureClass::missing_feature,
                     "server offers no AUTH on this connection" +
                         std::string(conn_.tls_active() ? "" : " (it may want STARTTLS first)"));
  auto mechanisms = str::split_ws(str::upper(extension("AUTH")));
  auto offers = [&](const char* m) {
    for (const auto& x : mechanisms)
      if (x == m) return true;
    return false;
  };
  Reply r;
  if (offers("PLAIN")) {
    std::string blob = str::base64_encode(authzid + '\0' + user + '\0' + password);
    conn_.add_secrets(password, blob);
    r = co_await command("AUTH PLAIN " + blob, "AUTH PLAIN <credentials of " + user + ">");
  } else if (offers("LOGIN") && authzid.empty()) {
    // RFC 4954: 334 for the user name, 334 for the password, then 235. A 235 before the
    // password was sent proves nothing about the credentials.
    conn_.add_secrets(password);
    r = co_await command("AUTH LOGIN");
    if (r.code == 334) {
      r = co_await command(str::base64_encode(user), "<user name " + user + ">");
      if (r.code == 334) {
        r = co_await command(str::base64_encode(password), "<password>");
      } else if (r.code == 235) {
        throw ProbeError(FailureClass::protocol,
                         "server accepted AUTH LOGIN before the password was sent (" +
                             str::printable(r.last_line) + "): the login was not tested",
                         r.last_line);
      }
    } else if (r.code == 235) {
      throw ProbeError(FailureClass::protocol,
                       "server accepted AUTH LOGIN before the user name and password were sent (" +
                           str::printable(r.last_line) + "): the login was not tested",
                       r.last_line);
    }
  } else {
    throw ProbeError(
        FailureClass::missing_feature,
        "server offers neither AUTH PLAIN nor AUTH LOGIN (AUTH " + extension("AUTH") + ")");
  }
  if (r.code == 235) co_return;
  if (r.cls() == 5 || r.cls() == 4)
    throw ProbeError(FailureClass::auth,
                     "login as " + user + " failed: " + str::printable(r.last_line), r.last_line);
  throw ProbeError(FailureClass::protocol,
                   "unexpected reply to AUTH: \"" + str::printable(r.last_line) + "\"",
                   r.last_line);
}

Task<Reply> Session::mail_from(const std::string& address) {
  co_return co_await command("MAIL FROM:" + path(address));
}

Task<Reply> Session::rcpt_to(const std::string& address) {
  co_return co_await command("RCPT TO:" + path(address));
}

Task<Reply> Session::data(const std::string& message) {
  Reply r = co_await command("DATA");
  // Only a 354 lets the message go; a refusal (4xx, 5xx) is returned, and any other reply (a
  // 250 here would make the message look delivered) is a protocol violation.
  if (r.cls() == 4 || r.cls() == 5) co_return r;
  if (r.code != 354)
    throw ProbeError(FailureClass::protocol,
                     "DATA answered \"" + str::printable(r.last_line) +
                         "\" instead of 354: the message was not sent",
                     r.last_line);
  std::string body;
  body.reserve(message.size() + 64);
  size_t start = 0;
  while (start <= message.size()) {
    size_t nl = message.find('\n', start);
    std::string line =
        message.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (nl == std::string::npos && line.empty()) break;
    if (!line.empty() && line[0] == '.') body += '.';
    body += line + "\r\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  body += ".\r\n";
  conn_.send(body);
  co_return co_await read_reply();
}

Task<Reply> Session::rset() {
  co_return co_await command("RSET");
}

Task<void> Session::probe_envelope(const std::string& from, const std::string& rcpt,
                                   bool expect_reject) {
  Reply r = co_await mail_from(from);
  if (r.code != 250)
    throw ProbeError(r.cls() == 4 || r.cls() == 5 ? FailureClass::rejected : FailureClass::protocol,
                     "MAIL FROM:" + path(from) + " refused: " + str::printable(r.last_line),
                     r.last_line);
  if (!rcpt.empty()) {
    r = co_await rcpt_to(rcpt);
    std::string what = "RCPT TO:" + path(rcpt);
    bool accepted = r.code == 250 || r.code == 251;
    if (expect_reject && accepted)
      throw ProbeError(FailureClass::content,
                       std::string(lmtp_ ? "" : "open relay: ") + "server accepted " + what + " (" +
                           str::printable(r.last_line) + "), which the rule expects refused",
                       r.last_line);
    if (expect_reject && r.cls() == 4)
      throw ProbeError(FailureClass::rejected,
                       what + " refused only for now (" + str::printable(r.last_line) +
                           "): a temporary refusal does not show that the server refuses it",
                       r.last_line);
    if (!expect_reject && !accepted)
      throw ProbeError(
          r.cls() == 4 || r.cls() == 5 ? FailureClass::rejected : FailureClass::protocol,
          what + " refused: " + str::printable(r.last_line), r.last_line);
    if (expect_reject && r.cls() != 5)
      throw ProbeError(FailureClass::protocol,
                       "unexpected reply to " + what + ": \"" + str::printable(r.last_line) + "\"",
                       r.last_line);
  }
  r = co_await rset();
  if (r.code != 250)
    throw ProbeError(FailureClass::protocol,
                     "unexpected reply to RSET: \"" + str::printable(r.last_line) + "\"",
                     r.last_line);
}

Task<void> Session::quit() {
  conn_.send("QUIT\r\n");
  auto line = co_await conn_.read_line_or_close();
  if (!line) co_return;
  int code = 0;
  char sep = ' ';
  if (parse_code(*line, code, sep) && code == 221) co_return;
  throw ProbeError(FailureClass::protocol,
                   "unexpected reply to QUIT: \"" + str::printable(*line) + "\"", *line);
}

}  // namespace mw::smtp
