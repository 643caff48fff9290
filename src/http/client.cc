#include "http/client.h"

#include <cstdlib>

#include "util/strings.h"

namespace mw::http {
namespace {

constexpr size_t kMaxHeaders = 100;

size_t parse_size(const std::string& text, int base) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = strtoull(text.c_str(), &end, base);
  if (text.empty() || end == text.c_str() || errno != 0 || n > kMaxResponseBody)
    throw ProbeError(FailureClass::protocol, "bad or too large body size '" + text + "'");
  return static_cast<size_t>(n);
}

}  // namespace

bool parse_url(const std::string& text, Url& out, std::string& error) {
  std::string rest;
  if (text.rfind("http://", 0) == 0) {
    out.tls = false;
    out.port = 80;
    rest = text.substr(7);
  } else if (text.rfind("https://", 0) == 0) {
    out.tls = true;
    out.port = 443;
    rest = text.substr(8);
  } else {
    error = "not an http:// or https:// URL: " + text;
    return false;
  }
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  out.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  std::string port;
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string::npos) {
      error = "unclosed '[' in " + text;
      return false;
    }
    out.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      port = hostport.substr(close + 2);
  } else {
    auto colon = hostport.rfind(':');
    out.host = hostport.substr(0, colon);
    if (colon != std::string::npos) port = hostport.substr(colon + 1);
  }
  if (out.host.empty()) {
    error = "no host in " + text;
    return false;
  }
  if (!port.empty()) {
    char* end = nullptr;
    long p = strtol(port.c_str(), &end, 10);
    if (*end || p < 1 || p > 65535) {
      error = "bad port in " + text;
      return false;
    }
    out.port = static_cast<uint16_t>(p);
  }
  return true;
}

Task<Response> fetch(IoContext& io, Scope& scope, const Url& url, const Request& req,
                     const TlsSettings& tls, int64_t timeout_ms) {
  ConnectionOptions opts;
  opts.timeout_ms = timeout_ms;
  opts.max_line = 16 * 1024;
  opts.max_bytes = kMaxResponseBody + 256 * 1024;
  opts.log_prefix = "http " + (url.unix_path.empty() ? url.origin() : url.unix_path);
  Connection conn(io, scope, std::move(opts));
  Endpoint endpoint;
  endpoint.host = url.host;
  endpoint.port = url.port;
  endpoint.unix_path = url.unix_path;
  co_await conn.connect(endpoint);
  if (url.tls) {
    co_await conn.start_tls(tls, url.host);
    if (!req.pin_sha256.empty()) {
      const auto& cert = conn.certificate();
      if (!cert || !str::iequals(cert->sha256, req.pin_sha256))
        throw ProbeError(FailureClass::tls,
                         "the server's certificate is not the expected one (SHA-256 " +
                             (cert ? cert->sha256 : std::string("none")) + ")");
    }
  }

  std::string head = req.method + " " + url.path + req.path + " HTTP/1.1\r\n";
  if (!url.unix_path.empty()) {
    head += "Host: localhost\r\n";
  } else {
    head += "Host: " + (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host) +
            ":" + std::to_string(url.port) + "\r\n";
  }
  head += "User-Agent: mailwarden\r\nConnection: close\r\n";
  for (const auto& [name, value] : req.headers) head += name + ": " + value + "\r\n";
  if (!req.body.empty() || req.method == "POST")
    head += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  if (!req.user.empty()) {
    conn.send(head);
    conn.send_secret(
        "Authorization: Basic " + str::base64_encode(req.user + ":" + req.password) + "\r\n",
        "Authorization: Basic ***\r\n");
    head.clear();
  }
  head += "\r\n";
  conn.send(head);
  if (!req.body.empty()) conn.send(req.body);

  Response resp;
  std::string status = co_await conn.read_line();
  // HTTP/1.1 200 OK
  if (status.rfind("HTTP/1.", 0) != 0 || status.size() < 12)
    throw ProbeError(FailureClass::protocol, "not an HTTP response: " + str::printable(status, 80),
                     status);
  resp.status = atoi(status.c_str() + 9);
  resp.reason = status.size() > 13 ? status.substr(13) : "";
  for (size_t n = 0;; ++n) {
    std::string line = co_await conn.read_line();
    if (line.empty()) break;
    if (n >= kMaxHeaders)
      throw ProbeError(FailureClass::protocol, "more than 100 header lines in the response");
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    resp.headers[str::lower(line.substr(0, colon))] = std::string(str::trim(value));
  }
  if (req.method == "HEAD" || resp.status == 204 || resp.status == 304) co_return resp;
  if (str::lower(resp.headers["transfer-encoding"]).find("chunked") != std::string::npos) {
    for (;;) {
      std::string size_line = co_await conn.read_line();
      size_t size = parse_size(size_line.substr(0, size_line.find(';')), 16);
      if (size == 0) break;
      if (resp.body.size() + size > kMaxResponseBody)
        throw ProbeError(FailureClass::protocol, "response body larger than 4 MB");
      resp.body += co_await conn.read_exact(size);
      (void)co_await conn.read_line();
    }
  } else if (resp.headers.count("content-length")) {
    size_t size = parse_size(resp.headers["content-length"], 10);
    if (size) resp.body = co_await conn.read_exact(size);
  } else {
    // Until the server closes (Connection: close was asked for).
    for (;;) {
      auto line = co_await conn.read_line_or_close();
      if (!line) break;
      resp.body += *line + "\n";
      if (resp.body.size() > kMaxResponseBody)
        throw ProbeError(FailureClass::protocol, "response body larger than 4 MB");
    }
  }
  conn.close();
  co_return resp;
}

}  // namespace mw::http
