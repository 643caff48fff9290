#include "cli/remote.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "config/credentials.h"

#include "http/from_config.h"
#include "http/server_tls.h"
#include "net/gate.h"
#include "net/scope.h"
#include "net/task.h"
#include "util/handles.h"

namespace mw::cli {
namespace {

// Reads a line from the terminal with its echo off; false when there is no terminal.
bool ask_password(const std::string& prompt, std::string& password) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return false;
  termios saved{};
  bool restore = tcgetattr(fd, &saved) == 0;
  if (restore) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    (void)tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  ssize_t ignored = write(fd, prompt.data(), prompt.size());
  (void)ignored;
  password.clear();
  char c;
  bool ok = false;
  while (read(fd, &c, 1) == 1) {
    if (c == '\n') {
      ok = true;
      break;
    }
    if (password.size() < 1024) password += c;
  }
  if (restore) (void)tcsetattr(fd, TCSAFLUSH, &saved);
  close(fd);
  return ok;
}

const char* env(const char* name) {
  const char* v = getenv(name);
  return v && *v ? v : nullptr;
}

}  // namespace

bool cli_login(const http::HttpdSettings& s, Login& login, std::string& error) {
  login = Login{};
  if (const char* user = env("MAILWARDEN_HTTP_USER")) {
    login.user = user;
    login.from = "MAILWARDEN_HTTP_USER";
    if (const char* password = getenv("MAILWARDEN_HTTP_PASSWORD")) {
      login.password = password;
      return true;
    }
    if (ask_password("Password of " + login.user + " for mailwarden's HTTP interface: ",
                     login.password))
      return true;
    error =
        "MAILWARDEN_HTTP_USER is set, but MAILWARDEN_HTTP_PASSWORD is not and there is no "
        "terminal to ask for the password on";
    return false;
  }
  if (getenv("MAILWARDEN_HTTP_PASSWORD")) {
    error =
        "MAILWARDEN_HTTP_PASSWORD is set, but MAILWARDEN_HTTP_USER (whose password it is) is "
        "not";
    return false;
  }
  if (const char* path = env("MAILWARDEN_HTTP_CREDENTIALS")) {
    config::Location at;
    std::string why;
    auto file = config::CredentialsFile::load(path, at, why);
    if (!file) {
      error = "MAILWARDEN_HTTP_CREDENTIALS: " + at.str() + ": " + why;
      return false;
    }
    const config::Credential* c = file->find("httpd");
    if (!c || c->username.empty()) {
      error = std::string("MAILWARDEN_HTTP_CREDENTIALS: ") + path +
              " has no entry httpd: { username = \"...\"; password = \"...\"; }";
      return false;
    }
    login.user = c->username;
    login.password = c->password;
    login.from = std::string(path) + " (entry httpd)";
    return true;
  }
  if (const http::User* u = s.cli_user()) {
    login.user = u->name;
    login.password = u->password;
    login.from = "the control file";
    return true;
  }
  if (!s.has_users()) return true;
  error =
      "the daemon's HTTP interface asks for a password, and the control file has no 'allow "
      "USER:PASSWORD' for the CLI to use (its users are in htpasswd files or Unix groups). Set "
      "MAILWARDEN_HTTP_USER=NAME (the password is asked on the terminal, or read from "
      "MAILWARDEN_HTTP_PASSWORD), or MAILWARDEN_HTTP_CREDENTIALS=FILE (a credentials file with an "
      "entry httpd); see mailwarden(1)";
  return false;
}

std::string explain_refusal(const RemoteResult& r) {
  if (!r.reached) return "";
  std::string who = r.user.empty() ? "no user" : "user '" + r.user + "' (from " + r.user_from + ")";
  if (r.response.status == 401) {
    if (r.user.empty())
      return "the daemon asks for a password; set MAILWARDEN_HTTP_USER (see mailwarden(1))";
    return "the daemon refused the password of " + who +
           "; check it, or log in as another user with MAILWARDEN_HTTP_USER and "
           "MAILWARDEN_HTTP_PASSWORD (see mailwarden(1))";
  }
  if (r.response.status == 403) {
    std::string message;
    try {
      auto j = nlohmann::json::parse(r.response.body);
      if (j.is_object() && j.contains("message") && j["message"].is_string())
        message = j["message"].get<std::string>();
    } catch (const std::exception&) {
      message = r.response.body;
      while (!message.empty() && (message.back() == '\n' || message.back() == '\r'))
        message.pop_back();
    }
    return "the daemon refused " + who + (message.empty() ? "" : ": " + message);
  }
  return "";
}

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
  Login login;
  if (!cli_login(s, login, out.error)) {
    out.no_login = true;
    return out;
  }
  req.user = login.user;
  req.password = login.password;
  out.user = login.user;
  out.user_from = login.from;
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
