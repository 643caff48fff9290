// What the HTTP interface and the Alertmanager posts are told by the control file:
// `set httpd ...` and `set alertmanager ...`. Plain values, part of the immutable model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/tls.h"

namespace mw::http {

// "allow NAME:PASSWORD [read-only]": a user of the basic authentication.
struct User {
  std::string name;
  std::string password;
  bool read_only = false;
};

struct HttpdSettings {
  bool enabled = false;
  std::string where;  // "FILE:LINE:COL" of the statement, for -t warnings
  std::string address = "127.0.0.1";
  uint16_t port = 0;
  std::vector<User> users;  // empty: no authentication (only sensible on loopback)
  bool read_only = false;   // nobody may act (check now, monitor, unmonitor)
  std::string unsupported;  // what of `set httpd` is not served (then enabled is false)
  // Bounds on what a client may cost: a slow or hostile one never delays a probe.
  size_t max_header_bytes = 8 * 1024;
  size_t max_body_bytes = 16 * 1024;
  int timeout_s = 10;        // a request must arrive (and its response leave) within this
  int max_connections = 64;  // open at once; more are closed at once
  [[nodiscard]] bool has_users() const { return !users.empty(); }
  // The user the CLI logs in as (the first read-write user, else the first one).
  [[nodiscard]] const User* cli_user() const {
    for (const auto& u : users)
      if (!u.read_only) return &u;
    return users.empty() ? nullptr : &users.front();
  }
};

// `set alertmanager "URL", ... [username "U" password "P"]`: every alert event is also posted
// to each of them (POST /api/v2/alerts).
struct AlertmanagerSettings {
  std::vector<std::string> urls;  // http://host:port or https://host:port, optional path prefix
  std::string username;
  std::string password;
  TlsSettings tls;
  [[nodiscard]] bool enabled() const { return !urls.empty(); }
};

}  // namespace mw::http
