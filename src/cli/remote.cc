#include "cli/remote.h"

#include <event2/dns.h>
#include <event2/event.h>

#include "http/from_config.h"
#include "http/server_tls.h"
#include "net/gate.h"
#include "net/scope.h"
#include "net/task.h"
#include "util/handles.h"

namespace mw::cli {

RemoteResult ask_daemon(const config::Config& config, const std::string& method,
                        const std::string& path, int64_t timeout_ms) {
  const http::HttpdSettings s = http::from_config(config.settings.httpd);
  RemoteResult out;
  EventBasePtr base(event_base_new());
  EvdnsBasePtr dns(evdns_base_new(base.get(), EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (!dns) dns.reset(evdns_base_new(base.get(), 0));
  TlsContextCache tls;
  Gate handshakes(4);
  IoContext io{base.get(), dns.get(), &tls, &handshakes};
  http::Url url;
  http::Request req;
  TlsSettings tls_settings = config.settings.tls;
  if (!s.unix_socket.empty()) {
    // The unix socket first: local, guarded by its file mode, no certificate needed.
    url.unix_path = s.unix_socket;
  } else {
    // A daemon listening on every address is reached on loopback.
    url.host = s.address == "0.0.0.0" ? "127.0.0.1" : s.address == "::" ? "::1" : s.address;
    url.port = s.port;
    if (s.tls.enabled) {
      if (!s.tls.client_ca.empty()) {
        out.error =
            "the daemon asks HTTPS clients for a certificate (clientpemfile) and the CLI has "
            "none; add 'unixsocket PATH' to set httpd for the CLI";
        return out;
      }
      // The CLI knows its daemon's certificate: the first one of the pemfile (or pemchain). It
      // is pinned, so neither a CA nor a name for 127.0.0.1 is needed in it.
      url.tls = true;
      req.pin_sha256 = http::pem_fingerprint(s.tls.cert_file, out.error);
      if (req.pin_sha256.empty()) return out;
      tls_settings.verify = false;
      tls_settings.allow_selfsigned = true;
      tls_settings.min_version = TlsVersion::tls12;
    }
  }
  req.method = method;
  req.path = path;
  req.headers = {{"X-Requested-By", "mailwarden-cli"}, {"Accept", "application/json"}};
  if (const http::User* u = s.cli_user()) {
    req.user = u->name;
    req.password = u->password;
  }
  Scope scope(base.get());
  scope.set_deadline(timeout_ms);
  auto run = [&]() -> Task<void> {
    out.response = co_await http::fetch(io, scope, url, req, tls_settings, timeout_ms);
    out.reached = true;
  };
  bool done = false;
  start_detached(run(), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        out.error = ex.what();
      }
    }
    done = true;
    event_base_loopexit(base.get(), nullptr);
  });
  if (!done) event_base_dispatch(base.get());
  return out;
}

}  // namespace mw::cli
