// The CLI asking the running daemon over its HTTP interface (when `set httpd` is configured),
// as monit's CLI does: status, summary, validate --now. Over the unix socket when set httpd has
// one, else over TCP; over HTTPS the daemon's certificate is recognised by its fingerprint
// (read from the pemfile or pemchain of the control file), not by a CA.
#pragma once

#include <string>

#include "config/model.h"
#include "http/client.h"

namespace mw::cli {

struct RemoteResult {
  bool reached = false;  // a response came (any status)
  http::Response response;
  std::string error;  // why not reached
};

// One request to the daemon of `config`, as its first read-write user. Bounded by `timeout_ms`.
[[nodiscard]] RemoteResult ask_daemon(const config::Config& config, const std::string& method,
                                      const std::string& path, int64_t timeout_ms = 10000);

}  // namespace mw::cli
