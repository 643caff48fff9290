#include "protocols/ftp_client.h"

#include <cctype>

#include "net/failure.h"
#include "util/strings.h"

namespace mw::ftp {
namespace {

constexpr int kMaxReplyLines = 100;
constexpr size_t kMaxReplyKeep = 16 * 1024;
constexpr size_t kMaxListingBytes = 4 * 1024 * 1024;

bool three_digits(const std::string& line) {
  return line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
         std::isdigit(static_cast<unsigned char>(line[1])) &&
         std::isdigit(static_cast<unsigned char>(line[2]));
}

// A refusal of the server (4xx/5xx) is "rejected"; anything else unexpected is a protocol error.
[[noreturn]] void refused(const Reply& r, const std::string& what) {
  FailureClass cls = r.cls() == 4 || r.cls() == 5 ? FailureClass::rejected : FailureClass::protocol;
  throw ProbeError(cls, what + " refused: " + str::printable(r.last_line), r.last_line);
}

bool valid_name(const std::string& name) {
  return !name.empty() && name.find_first_of(std::string("\r\n\0", 3)) == std::string::npos;
}

}  // namespace

std::string listed_name(const std::string& line) {
  std::string name = line;
  while (!name.empty() && (name.back() == '\r' || name.back() == '/')) name.pop_back();
  if (auto slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
  if (name.empty() || name[0] == '.') return {};
  return name;
}

bool parse_pasv(const std::string& text, std::string& host, uint16_t& port) {
  auto open = text.find('(');
  size_t pos = open == std::string::npos ? text.find_first_of("0123456789", 4) : open + 1;
  if (pos == std::string::npos) return false;
  int v[6];
  for (int i = 0; i < 6; ++i) {
    if (pos >= text.size() || !std::isdigit(static_cast<unsigned char>(text[pos]))) return false;
    long n = 0;
    size_t digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) && digits < 4) {
      n = n * 10 + (text[pos++] - '0');
      ++digits;
    }
    if (n > 255) return false;
    v[i] = static_cast<int>(n);
    if (i < 5) {
      if (pos >= text.size() || text[pos] != ',') return false;
      ++pos;
    }
  }
  host = std::to_string(v[0]) + "." + std::to_string(v[1]) + "." + std::to_string(v[2]) + "." +
         std::to_string(v[3]);
  port = static_cast<uint16_t>(v[4] * 256 + v[5]);
  return port != 0;
}

bool parse_epsv(const std::string& text, uint16_t& port) {
  auto open = text.find('(');
  if (open == std::string::npos || open + 4 >= text.size()) return false;
  char d = text[open + 1];
  if (text[open + 2] != d || text[open + 3] != d) return false;
  size_t pos = open + 4;
  long n = 0;
  size_t digits = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) && digits < 6) {
    n = n * 10 + (text[pos++] - '0');
    ++digits;
  }
  if (digits == 0 || pos >= text.size() || text[pos] != d || n < 1 || n > 65535) return false;
  port = static_cast<uint16_t>(n);
  return true;
}

Task<Reply> Session::read_reply() {
  // RFC 959 4.2: "123-first line", any lines, then "123 last line".
  Reply reply;
  size_t kept = 0;
  for (int n = 0; n < kMaxReplyLines; ++n) {
    std::string line = co_await conn_.read_line();
    kept += line.size();
    if (kept > kMaxReplyKeep)
      throw ProbeError(FailureClass::protocol,
                       "reply longer than " + std::to_string(kMaxReplyKeep / 1024) + " KiB");
    if (reply.code == 0) {
      if (!three_digits(line) || (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
        throw ProbeError(FailureClass::protocol,
                         "not an FTP reply: \"" + str::printable(line) + "\"", line);
      reply.code = std::stoi(line.substr(0, 3));
      reply.lines.push_back(line.size() > 4 ? line.substr(4) : "");
      if (line.size() <= 3 || line[3] == ' ') {
        reply.last_line = line;
        co_return reply;
      }
      continue;
    }
    reply.lines.push_back(line);
    if (three_digits(line) && std::stoi(line.substr(0, 3)) == reply.code &&
        (line.size() == 3 || line[3] == ' ')) {
      reply.last_line = line;
      co_return reply;
    }
  }
  throw ProbeError(FailureClass::protocol,
                   "reply longer than " + std::to_string(kMaxReplyLines) + " lines");
}

Task<Reply> Session::command(const std::string& line, const std::string& shown) {
  if (line.find_first_of("\r\n") != std::string::npos)
    throw ProbeError(FailureClass::internal, "an FTP command cannot contain CR or LF");
  if (shown.empty()) {
    conn_.send(line + "\r\n");
  } else {
    conn_.send_secret(line + "\r\n", shown);
  }
  co_return co_await read_reply();
}

Task<void> Session::greeting() {
  Reply r = co_await read_reply();
  if (r.code == 120) r = co_await read_reply();
  if (r.code == 220) co_return;
  if (r.cls() == 4 || r.cls() == 5)
    throw ProbeError(FailureClass::rejected,
                     "server refused the session: " + str::printable(r.last_line), r.last_line);
  throw ProbeError(FailureClass::protocol,
                   "unexpected FTP greeting: \"" + str::printable(r.last_line) + "\"", r.last_line);
}

Task<void> Session::auth_tls_command() {
  Reply r = co_await command("AUTH TLS");
  if (r.code == 234) co_return;
  if (r.code == 500 || r.code == 502 || r.code == 504 || r.code == 530 || r.code == 534)
    throw ProbeError(FailureClass::missing_feature,
                     "server does not offer TLS (AUTH TLS): " + str::printable(r.last_line),
                     r.last_line);
  refused(r, "AUTH TLS");
}

Task<void> Session::protect() {
  Reply r = co_await command("PBSZ 0");
  if (r.code != 200) refused(r, "PBSZ 0");
  r = co_await command("PROT P");
  if (r.code != 200) refused(r, "PROT P");
  protected_ = true;
}

Task<void> Session::login(const std::string& user, const std::string& password) {
  if (!valid_name(user) || password.find_first_of("\r\n") != std::string::npos)
    throw ProbeError(FailureClass::auth, "the user name or password contains CR or LF");
  conn_.add_secrets(password);
  Reply r = co_await command("USER " + user);
  if (r.code == 331 || r.code == 332) r = co_await command("PASS " + password, "PASS <password>");
  if (r.code == 230 || r.code == 202) co_return;
  if (r.code == 530 || r.code == 430)
    throw ProbeError(FailureClass::auth,
                     "login of " + user + " refused: " + str::printable(r.last_line), r.last_line);
  refused(r, "login of " + user);
}

Task<void> Session::enter(const std::string& dir) {
  Reply r = co_await command("TYPE I");
  if (r.code != 200) refused(r, "TYPE I");
  if (dir.empty()) co_return;
  if (!valid_name(dir))
    throw ProbeError(FailureClass::internal, "a directory name cannot contain CR or LF");
  r = co_await command("CWD " + dir);
  if (r.cls() != 2) refused(r, "CWD " + dir);
}

Task<Endpoint> Session::passive_endpoint() {
  // The data connection goes to the control connection's host whatever a 227 names: a server
  // cannot send the client elsewhere (and a NATed server's private address is no obstacle).
  Endpoint ep;
  ep.host = data_.host;
  if (!epsv_failed_) {
    Reply r = co_await command("EPSV");
    uint16_t port = 0;
    if (r.code == 229 && parse_epsv(r.last_line, port)) {
      ep.port = port;
      co_return ep;
    }
    if (r.code == 229)
      throw ProbeError(FailureClass::protocol,
                       "malformed EPSV reply: \"" + str::printable(r.last_line) + "\"",
                       r.last_line);
    epsv_failed_ = true;
  }
  Reply r = co_await command("PASV");
  if (r.code != 227) refused(r, "PASV");
  std::string host;
  uint16_t port = 0;
  if (!parse_pasv(r.last_line, host, port))
    throw ProbeError(FailureClass::protocol,
                     "malformed PASV reply: \"" + str::printable(r.last_line) + "\"", r.last_line);
  ep.port = port;
  co_return ep;
}

Task<std::unique_ptr<Connection>> Session::open_data(const std::string& line) {
  Endpoint ep = co_await passive_endpoint();
  std::unique_ptr<Connection> data = data_.make();
  co_await data->connect(ep);
  Reply r = co_await command(line);
  // Some servers answer a listing of an empty directory "450/550 No files found".
  if (line == "NLST" && (r.code == 450 || r.code == 550)) co_return nullptr;
  if (r.code != 125 && r.code != 150) refused(r, line);
  // The server starts its side of the handshake after the 150 (RFC 4217 section 9).
  if (protected_) {
    SslSessionPtr session = conn_.tls_session();
    co_await data->start_tls(data_.tls, data_.host, session.get());
  }
  co_return data;
}

Task<void> Session::transfer_done(const std::string& what) {
  Reply r = co_await read_reply();
  if (r.code == 226 || r.code == 250) co_return;
  if (r.code == 522 || r.code == 425)
    throw ProbeError(FailureClass::tls, what + " failed: " + str::printable(r.last_line),
                     r.last_line);
  refused(r, what);
}

Task<std::vector<std::string>> Session::list(size_t max_names) {
  auto data = co_await open_data("NLST");
  std::vector<std::string> names;
  if (!data) co_return names;
  std::string text;
  while (auto chunk = co_await data->read_some(64 * 1024)) {
    text += *chunk;
    if (text.size() > kMaxListingBytes)
      throw ProbeError(FailureClass::content, "the directory listing is longer than " +
                                                  std::to_string(kMaxListingBytes / 1024 / 1024) +
                                                  " MiB");
  }
  data->close();
  co_await transfer_done("NLST");
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string name = listed_name(text.substr(start, nl == std::string::npos ? nl : nl - start));
    if (!name.empty()) {
      if (names.size() >= max_names)
        throw ProbeError(FailureClass::content,
                         "the directory holds more than " + std::to_string(max_names) + " files");
      names.push_back(std::move(name));
    }
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  co_return names;
}

Task<std::string> Session::retrieve(const std::string& name, size_t max_bytes) {
  if (!valid_name(name)) throw ProbeError(FailureClass::content, "a listed name holds CR or LF");
  auto data = co_await open_data("RETR " + name);
  std::string text;
  while (auto chunk = co_await data->read_some(64 * 1024)) {
    text += *chunk;
    if (text.size() > max_bytes)
      throw ProbeError(FailureClass::content, "the file " + name + " is larger than " +
                                                  std::to_string(max_bytes / 1024) + " KiB");
  }
  data->close();
  co_await transfer_done("RETR " + name);
  co_return text;
}

Task<void> Session::store(const std::string& name, const std::string& content,
                          const std::string& final_name) {
  auto data = co_await open_data("STOR " + name);
  data->send(content);
  co_await data->finish_and_close();  // the end of the connection is the end of the file
  co_await transfer_done("STOR " + name);
  if (final_name.empty() || final_name == name) co_return;
  Reply r = co_await command("RNFR " + name);
  if (r.code != 350) refused(r, "RNFR " + name);
  r = co_await command("RNTO " + final_name);
  if (r.cls() != 2) refused(r, "RNTO " + final_name);
}

Task<void> Session::remove(const std::string& name) {
  Reply r = co_await command("DELE " + name);
  if (r.cls() != 2) refused(r, "DELE " + name);
}

Task<void> Session::quit() {
  conn_.send("QUIT\r\n");
  auto line = co_await conn_.read_line_or_close();
  conn_.close();
  if (!line || line->rfind("221", 0) == 0) co_return;
  throw ProbeError(FailureClass::protocol,
                   "unexpected reply to QUIT: \"" + str::printable(*line) + "\"", *line);
}

}  // namespace mw::ftp
