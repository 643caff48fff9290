#include "protocols/director_client.h"

#include <charconv>

#include "net/failure.h"
#include "util/strings.h"

namespace mw::director {
namespace {

constexpr const char* kVersionLine = "VERSION\tdirector-doveadm\t1\t0";
constexpr const char* kBusyReply = "host is already being updated - try again later";
constexpr const char* kRingSyncReply = "Ring sync timed out";

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

int64_t field_number(const std::string& text, const char* what, const std::string& line) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < 0)
    throw ProbeError(FailureClass::protocol,
                     std::string("HOST-LIST line has a bad ") + what + " '" +
                         str::printable(text, 40) + "': \"" + str::printable(line, 200) + "\"",
                     line);
  return v;
}

// An IP as Dovecot prints it: digits, dots, hex and colons only (it goes into our commands).
bool plausible_ip(const std::string& ip) {
  return !ip.empty() && ip.size() <= 45 &&
         ip.find_first_not_of("0123456789abcdefABCDEF.:") == std::string::npos;
}

}  // namespace

Host parse_host_line(const std::string& line) {
  auto f = split_tabs(line);
  if (f.size() < 3)
    throw ProbeError(FailureClass::protocol,
                     "HOST-LIST line has " + std::to_string(f.size()) +
                         " field(s), at least 3 expected (ip, vhosts, users): \"" +
                         str::printable(line, 200) + "\"",
                     line);
  Host h;
  h.ip = f[0];
  if (!plausible_ip(h.ip))
    throw ProbeError(
        FailureClass::protocol,
        "HOST-LIST line does not start with an IP address: \"" + str::printable(line, 200) + "\"",
        line);
  h.vhosts = field_number(f[1], "vhost count", line);
  h.users = field_number(f[2], "user count", line);
  if (f.size() >= 4) h.tag = f[3];
  if (f.size() >= 6) {
    if (f[4] != "U" && f[4] != "D")
      throw ProbeError(FailureClass::protocol,
                       "HOST-LIST line has '" + str::printable(f[4], 40) +
                           "' where U or D was expected: \"" + str::printable(line, 200) + "\"",
                       line);
    h.has_state = true;
    h.up = f[4] == "U";
    h.changed_at = field_number(f[5], "last change time", line);
  }
  return h;
}

Task<std::string> Client::reply_line(std::string after) {
  try {
    co_return co_await conn_.read_line();
  } catch (const ProbeError& e) {
    if (e.cls() != FailureClass::protocol && e.cls() != FailureClass::connect) throw;
    // "server closed the connection while waiting for a reply" -> "... for the reply to X"
    std::string message = e.what();
    const std::string generic = "while waiting for a reply";
    if (auto at = message.find(generic); at != std::string::npos) {
      message.replace(at, generic.size(), "while waiting for the reply to " + after);
    } else {
      message += " (waiting for the reply to " + after + ")";
    }
    throw ProbeError(e.cls(), "director-admin: " + message, e.server_line());
  }
}

Task<void> Client::handshake() {
  conn_.send(std::string(kVersionLine) + "\n");
  std::string line = co_await reply_line("the VERSION handshake");
  auto f = split_tabs(line);
  if (f.size() < 3 || f[0] != "VERSION" || f[1] != "director-doveadm")
    throw ProbeError(FailureClass::protocol,
                     "not a director-admin socket: the first line is \"" +
                         str::printable(line, 200) + "\", not VERSION\tdirector-doveadm",
                     line);
  if (f[2] != "1")
    throw ProbeError(FailureClass::protocol,
                     "director-doveadm protocol version " + str::printable(f[2], 20) +
                         " is not supported (mailwarden speaks version 1)",
                     line);
}

Task<std::vector<Host>> Client::host_list() {
  conn_.send("HOST-LIST\n");
  std::vector<Host> hosts;
  for (;;) {
    std::string line = co_await reply_line("HOST-LIST");
    if (line.empty()) break;
    if (hosts.size() >= kMaxHosts)
      throw ProbeError(FailureClass::protocol,
                       "HOST-LIST lists more than " + std::to_string(kMaxHosts) + " backends");
    hosts.push_back(parse_host_line(line));
  }
  co_return hosts;
}

Task<Reply> Client::command(std::string verb, std::string ip) {
  if (!plausible_ip(ip))
    throw ProbeError(FailureClass::internal, verb + ": '" + str::printable(ip, 60) +
                                                 "' is not an IP address as the director lists "
                                                 "its backends");
  last_retries_ = 0;
  int64_t backoff = retry_.first_backoff_ms;
  std::string what = verb + " " + ip;
  for (int attempt = 1;; ++attempt) {
    conn_.send(verb + "\t" + ip + "\n");
    std::string line = co_await reply_line(what);
    if (line == "OK") co_return Reply::ok;
    if (line == "NOTFOUND") co_return Reply::notfound;
    bool busy = line == kBusyReply || line == kRingSyncReply;
    if (!busy)
      throw ProbeError(FailureClass::protocol,
                       "director answered " + what + " with \"" + str::printable(line, 200) + "\"",
                       line);
    if (attempt >= retry_.attempts)
      throw ProbeError(FailureClass::rejected,
                       "director still answers " + what + " with \"" + line + "\" after " +
                           std::to_string(attempt) + " attempts",
                       line);
    ++last_retries_;
    Sleep sleep(scope_);
    co_await sleep(backoff);
    scope_.check();
    backoff *= 2;
  }
}

}  // namespace mw::director
