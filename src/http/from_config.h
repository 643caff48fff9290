// What the HTTP server takes of `set httpd` (config::HttpdSettings, parsed with monit's whole
// grammar): the listener and the users of basic authentication.
#pragma once

#include "config/model.h"
#include "http/settings.h"

namespace mw::http {

[[nodiscard]] inline HttpdSettings from_config(const config::HttpdSettings& c) {
  HttpdSettings s;
  s.enabled = c.enabled;
  s.where = c.where.str();
  s.address = c.address;
  s.port = c.port;
  s.read_only = c.read_only;
  for (const auto& a : c.allow) {
    if (a.kind == config::HttpdAllow::Kind::user) {
      s.users.push_back(User{a.user, a.password, a.read_only || c.read_only});
    } else {
      // Serving without the restriction the file asks for would open the interface wider
      // than configured: the interface is not started instead, and the daemon says why.
      s.unsupported = "'allow " +
                      std::string(a.kind == config::HttpdAllow::Kind::network ? a.network.shown
                                  : a.kind == config::HttpdAllow::Kind::group ? "@" + a.group
                                                                              : a.htpasswd.path) +
                      "' (hosts, nets, groups and htpasswd files are not served yet)";
    }
  }
  if (c.ssl) s.unsupported = "'with ssl' (TLS on the HTTP interface is not served yet)";
  if (c.port == 0) s.unsupported = "'unixsocket' (a unix socket listener is not served yet)";
  if (!s.unsupported.empty()) s.enabled = false;
  return s;
}

}  // namespace mw::http
