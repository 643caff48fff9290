// The sieve protocol test (ManageSieve, RFC 5804): the greeting's capability list, [STARTTLS
// and the capabilities the server re-issues], [AUTHENTICATE "PLAIN" with an initial response,
// optionally with an authorization identity], LOGOUT. Only this test speaks ManageSieve, so its
// small client lives here.
#include <map>
#include <string>
#include <vector>

#include "engine/probe.h"
#include "net/failure.h"
#include "util/strings.h"

namespace mw::protocols {
namespace {

constexpr int kMaxLines = 1000;
constexpr size_t kMaxKeep = 64 * 1024;  // what one response keeps (each line: size + 32)
constexpr int kMaxLiterals = 1000;

// "{12}" or "{12+}" at the end of a line announces a literal of that many bytes.
bool literal_size(const std::string& line, size_t& n) {
  if (line.size() < 3 || line.back() != '}') return false;
  size_t open = line.rfind('{');
  if (open == std::string::npos) return false;
  std::string digits = line.substr(open + 1, line.size() - open - 2);
  if (!digits.empty() && digits.back() == '+') digits.pop_back();
  if (digits.empty() || digits.size() > 7 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  n = std::stoul(digits);
  return true;
}

std::string as_quoted_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The strings of a capability line: "NAME" ["VALUE"].
std::vector<std::string> strings_of(const std::string& line) {
  std::vector<std::string> out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '"') continue;
    std::string s;
    for (++i; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) ++i;
      s += line[i];
    }
    out.push_back(std::move(s));
  }
  return out;
}

// OK, NO or BYE when `line` is a status response, else empty.
std::string status_of(const std::string& line) {
  auto words = str::split_ws(line);
  if (words.empty()) return {};
  std::string w = str::upper(words[0]);
  return w == "OK" || w == "NO" || w == "BYE" ? w : "";
}

struct Response {
  std::string status;  // OK, NO or BYE
  std::string line;
  std::vector<std::string> lines;  // before the status line, literals inlined as strings
};

class SieveSession {
 public:
  explicit SieveSession(Connection& conn) : conn_(conn) {}

  Task<void> greeting() {
    Response r = co_await collect();
    if (r.status != "OK")
      throw ProbeError(FailureClass::rejected,
                       "server refused the session: " + str::printable(r.line), r.line);
    take_capabilities(r);
  }

  Task<void> starttls(Probe& probe) {
    if (!caps_.count("STARTTLS"))
      throw ProbeError(FailureClass::missing_feature, "server does not offer STARTTLS");
    conn_.send("STARTTLS\r\n");
    Response r = co_await collect();
    if (r.status != "OK")
      throw ProbeError(FailureClass::rejected, "STARTTLS refused: " + str::printable(r.line),
                       r.line);
    co_await probe.starttls();
    // RFC 5804 2.2: the server re-issues its capabilities over the new TLS layer.
    Response caps = co_await collect();
    if (caps.status != "OK")
      throw ProbeError(FailureClass::protocol,
                       "no capabilities after STARTTLS: " + str::printable(caps.line), caps.line);
    take_capabilities(caps);
  }

  Task<void> authenticate(const std::string& authzid, const std::string& authcid,
                          const std::string& password) {
    bool plain = false;
    for (const auto& m : str::split_ws(str::upper(caps_["SASL"])))
      if (m == "PLAIN") plain = true;
    if (!plain)
      throw ProbeError(FailureClass::missing_feature,
                       "server does not offer SASL PLAIN (SASL \"" + caps_["SASL"] + "\")" +
                           (conn_.tls_active() ? "" : "; it may want STARTTLS first"));
    std::string who = authzid.empty() ? authcid : authzid + " (as " + authcid + ")";
    std::string blob = str::base64_encode(authzid + '\0' + authcid + '\0' + password);
    conn_.add_secrets(password, blob);
    conn_.send_secret("AUTHENTICATE \"PLAIN\" \"" + blob + "\"\r\n",
                      "AUTHENTICATE \"PLAIN\" <credentials of " + who + ">");
    Response r = co_await collect();
    if (r.status == "NO")
      throw ProbeError(FailureClass::auth, "login as " + who + " failed: " + str::printable(r.line),
                       r.line);
    if (r.status != "OK")
      throw ProbeError(FailureClass::rejected,
                       "server ended the session at login: " + str::printable(r.line), r.line);
  }

  // An OK, an OK then close, or a close alone end the session well.
  Task<void> logout() {
    conn_.send("LOGOUT\r\n");
    for (int n = 0; n < kMaxLines; ++n) {
      auto line = co_await conn_.read_line_or_close();
      if (!line) co_return;
      std::string status = status_of(*line);
      if (status == "OK" || status == "BYE") co_return;
      if (status == "NO")
        throw ProbeError(FailureClass::rejected, "LOGOUT answered: " + str::printable(*line),
                         *line);
      throw ProbeError(FailureClass::protocol,
                       "unexpected reply to LOGOUT: \"" + str::printable(*line) + "\"", *line);
    }
    throw ProbeError(FailureClass::protocol, "endless reply to LOGOUT");
  }

 private:
  Task<std::string> read_full_line() {
    std::string line = co_await conn_.read_line();
    size_t n = 0;
    for (int literals = 0; literal_size(line, n); ++literals) {
      if (literals >= kMaxLiterals)
        throw ProbeError(FailureClass::protocol, "response with more than 1000 literals");
      line.erase(line.rfind('{'));
      std::string data = co_await conn_.read_exact(n);
      line += as_quoted_string(data);
      std::string rest = co_await conn_.read_line();
      line += rest;
    }
    co_return line;
  }

  Task<Response> collect() {
    Response r;
    size_t kept = 0;
    for (int n = 0; n < kMaxLines; ++n) {
      std::string line = co_await read_full_line();
      std::string status = status_of(line);
      if (!status.empty()) {
        r.status = status;
        r.line = std::move(line);
        co_return r;
      }
      if (line.empty() || line[0] != '"')
        throw ProbeError(FailureClass::protocol,
                         "unexpected ManageSieve response: \"" + str::printable(line) + "\"", line);
      kept += line.size() + sizeof(std::string);
      if (kept > kMaxKeep)
        throw ProbeError(FailureClass::protocol,
                         "response longer than " + std::to_string(kMaxKeep / 1024) + " KiB");
      r.lines.push_back(std::move(line));
    }
    throw ProbeError(FailureClass::protocol,
                     "response longer than " + std::to_string(kMaxLines) + " lines");
  }

  void take_capabilities(const Response& r) {
    caps_.clear();
    for (const auto& l : r.lines) {
      auto s = strings_of(l);
      if (!s.empty()) caps_[str::upper(s[0])] = s.size() > 1 ? s[1] : "";
    }
  }

  Connection& conn_;
  std::map<std::string, std::string> caps_;  // upper-case name -> value
};

}  // namespace

Task<void> sieve_dialogue(Probe& probe) {
  SieveSession sieve(probe.conn());
  co_await sieve.greeting();
  if (probe.wants_starttls()) co_await sieve.starttls(probe);
  const auto& opt = probe.options();
  if (opt.has_login()) {
    probe.require_password_allowed("starttls");
    if (opt.authzid.empty()) {
      co_await sieve.authenticate("", opt.username, opt.password);
    } else {
      co_await sieve.authenticate(opt.username, opt.authzid, opt.password);
    }
  }
  co_await sieve.logout();
}

}  // namespace mw::protocols
