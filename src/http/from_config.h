// What the HTTP server takes of `set httpd` (config::HttpdSettings, parsed with monit's whole
// grammar): the listeners, TLS, and who may come in (hosts and nets, users, htpasswd files).
// "allow @group" users are checked with PAM off the event loop (group_login.h).
#pragma once

#include <cstring>

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
  if (c.ssl) {
    s.tls.enabled = true;
    // pemchain + pemkey, or pemfile holding both (monit's two ways).
    s.tls.cert_file = !c.pemchain.empty() ? c.pemchain : c.pemfile;
    s.tls.key_file = c.pemkey;
    s.tls.client_ca = c.clientpemfile;
    s.tls.allow_selfsigned_clients = c.allow_selfsigned_clients;
  }
  s.unix_socket = c.unix_socket;
  if (c.socket_uid) s.socket_uid = static_cast<int>(*c.socket_uid);
  if (c.socket_gid) s.socket_gid = static_cast<int>(*c.socket_gid);
  s.socket_mode = c.socket_permission;
  for (const auto& a : c.allow) {
    switch (a.kind) {
      case config::HttpdAllow::Kind::user:
        s.users.push_back(User{a.user, a.password, a.read_only || c.read_only});
        break;
      case config::HttpdAllow::Kind::network: {
        Network n;
        n.shown = a.network.shown;
        n.family = a.network.family;
        std::memcpy(n.addr, a.network.addr, sizeof n.addr);
        n.prefix = a.network.prefix;
        n.host = a.network.host;
        s.networks.push_back(std::move(n));
        break;
      }
      case config::HttpdAllow::Kind::group:
        s.groups.push_back(Group{a.group, a.read_only || c.read_only});
        break;
      case config::HttpdAllow::Kind::htpasswd: {
        Htpasswd h;
        h.path = a.htpasswd.path;
        h.users = a.htpasswd.users;
        h.hash = a.htpasswd.hash == config::HttpdHtpasswd::Hash::cleartext
                     ? Htpasswd::Hash::cleartext
                 : a.htpasswd.hash == config::HttpdHtpasswd::Hash::crypt ? Htpasswd::Hash::crypt
                                                                         : Htpasswd::Hash::md5;
        h.read_only = a.read_only || c.read_only;
        s.htpasswd.push_back(std::move(h));
        break;
      }
    }
  }
  return s;
}

}  // namespace mw::http
