// The HTTP interface's TLS ("set httpd ... with ssl { ... }"): a server context made from the
// certificate and key files at start and on every reload (a renewed certificate is served
// after SIGHUP). TLS 1.2 or newer; with a client CA file, clients must show a certificate
// that verifies against it (monit's clientpemfile), optionally self-signed ones too.
#pragma once

#include <string>

#include "http/settings.h"
#include "util/handles.h"

namespace mw::http {

// Null with `error` when a file cannot be read, the key is accessible by group or others, or
// the key does not match the certificate.
[[nodiscard]] SslCtxPtr make_server_context(const ServerTls& tls, std::string& error);

// The SHA-256 fingerprint (lower-case hex) of the first certificate of a PEM file: how the CLI
// recognises its own daemon. Empty with `error` when there is none.
[[nodiscard]] std::string pem_fingerprint(const std::string& path, std::string& error);

}  // namespace mw::http
