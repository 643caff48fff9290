// The CLI asking the running daemon over its HTTP interface (when `set httpd` is configured),
// as monit's CLI does: status, summary, validate --now. Over the unix socket when set httpd has
// one, else over TCP; over HTTPS the daemon's certificate is recognised by its fingerprint
// (read from the pemfile or pemchain of the control file), not by a CA.
#pragma once

#include <string>

#include "config/model.h"
#include "http/client.h"
#include "http/settings.h"

namespace mw::cli {

struct RemoteResult {
  bool reached = false;  // a response came (any status)
  http::Response response;
  std::string error;      // why not reached
  bool no_login = false;  // not tried: the CLI has no usable user (`error` says what to set)
  std::string user;       // who the CLI logged in as, and who said so
  std::string user_from;
};

// Who the CLI logs in as, first found:
//   - MAILWARDEN_HTTP_USER, with the password of MAILWARDEN_HTTP_PASSWORD, else asked on the
//     terminal (never an argument: the command line is visible to every user in ps);
//   - MAILWARDEN_HTTP_CREDENTIALS=FILE: the entry "httpd" of a credentials file (the format of
//     `set credentials`, readable by its owner only): httpd: { username = "..."; password = "...";
//     };
//   - the control file's first read-write user with a password in it (allow USER:PASSWORD).
// False with `error` when one of them is given but unusable, or when the daemon asks for a
// password and none of them gives one (users only in htpasswd files or Unix groups): the
// error says what to set. True with an empty `login.user` when no password is asked.
struct Login {
  std::string user, password;
  std::string from;  // "MAILWARDEN_HTTP_USER", "FILE (entry httpd)", "the control file"
};
[[nodiscard]] bool cli_login(const http::HttpdSettings& s, Login& login, std::string& error);

// A line that explains a refusal (401, 403) and how to fix it; empty for other answers.
[[nodiscard]] std::string explain_refusal(const RemoteResult& r);

// One request to the daemon of `config`, as cli_login says. Bounded by `timeout_ms`.
[[nodiscard]] RemoteResult ask_daemon(const config::Config& config, const std::string& method,
                                      const std::string& path, int64_t timeout_ms = 10000);

}  // namespace mw::cli
