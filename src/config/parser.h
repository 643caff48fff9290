// Control file -> immutable model. A hand-written recursive-descent parser for a monit-compatible
// language; semantic checks (ports, protocols, TLS modes, regexes, file permissions) happen here,
// so that a model that exists is a model that can run.
#pragma once

#include <memory>
#include <string>

#include "config/diagnostics.h"
#include "config/model.h"

namespace mw::config {

struct ParseResult {
  std::shared_ptr<const Config> config;   // null when there is any error
  std::shared_ptr<const Config> partial;  // with errors: what could be read (never to be run)
  Diagnostics diagnostics;
};

// Reads `path` and every file it includes.
[[nodiscard]] ParseResult parse_file(const std::string& path);

// The control file mailwarden uses when -c is not given: ~/.mailwardenrc, then
// /etc/mailwarden/mailwardenrc. Empty when neither exists.
[[nodiscard]] std::string default_control_file();

namespace parsing {
// A composite check's server URL (imaps://user:pw@host:993/INBOX, smtp+starttls://..., file:///d)
// into `out`; returns an error message, or empty. The drop-in plugins read their URLs with it.
[[nodiscard]] std::string parse_mail_url(const std::string& text, MailUrl& out);
}  // namespace parsing

}  // namespace mw::config
