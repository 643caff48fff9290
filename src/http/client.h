// The HTTP/1.1 client of the tree (Alertmanager posts, the CLI asking the running daemon): one
// request per connection over the project's Connection (TLS verified), the response bounded
// in header lines, line length and body size.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "net/connection.h"
#include "net/io_context.h"
#include "net/scope.h"
#include "net/task.h"
#include "net/tls.h"

namespace mw::http {

struct Url {
  bool tls = false;
  std::string host;
  uint16_t port = 80;
  std::string path;       // without a trailing '/'; "" for the root
  std::string unix_path;  // when set: this unix socket instead of host and port
  [[nodiscard]] std::string origin() const {
    return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
  }
};
// http://HOST[:PORT][/PATH] or https://...; false with `error` otherwise.
[[nodiscard]] bool parse_url(const std::string& text, Url& out, std::string& error);

struct Response {
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

struct Request {
  std::string method = "GET";
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string user;  // basic authentication when set (the password is never logged)
  std::string password;
  // When set, the server's certificate must be this one (SHA-256 of its DER, lower-case hex):
  // how the CLI recognises its own daemon, whose certificate it reads from the control file's
  // pemfile. The caller then passes TLS settings that do not verify the chain.
  std::string pin_sha256;
};

constexpr size_t kMaxResponseBody = 4 * 1024 * 1024;

// Connects to `url`, sends `req` and reads the response. Throws ProbeError (connect, timeout,
// tls, protocol) like every other client.
Task<Response> fetch(IoContext& io, Scope& scope, const Url& url, const Request& req,
                     const TlsSettings& tls, int64_t timeout_ms);

}  // namespace mw::http
