// "set ..." statements: daemon, log, pid and state files, TLS defaults, limits.
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "config/parser.h"
#include "config/parser_impl.h"
#include "protocols/registry.h"
#include "util/files.h"
#include "util/strings.h"

namespace mw::config::parsing {

// ---- set ----------------------------------------------------------------------------------
void Parser::set_daemon() {
  cfg_.settings.cycle_s = static_cast<int>(number("the cycle length in seconds", 1, 86400));
  if (accept("start")) {
    expect_kw("delay", "after 'start'");
    cfg_.settings.start_delay_s = static_cast<int>(number("the start delay in seconds", 0, 86400));
  }
}

void Parser::set_log() {
  if (accept("syslog")) {
    cfg_.settings.log_sink = LogSink::syslog;
    if (accept("facility")) cfg_.settings.syslog_facility = str::lower(value("a syslog facility"));
  } else {
    cfg_.settings.log_sink = LogSink::file;
    cfg_.settings.logfile = path_value("a log file path or 'syslog'");
  }
}

// A path as written, made absolute against the directory of the file it is written in: the
// daemon runs from "/" while status and quit run wherever the operator is.
std::string Parser::path_value(const std::string& what) {
  std::string path = files::expand_home(value(what));
  if (path.empty() || path[0] == '/') return path;
  return files::dirname(current_file_) + "/" + path;
}

void Parser::set_pidfile() {
  cfg_.settings.pidfile = path_value("a pid file path");
}

void Parser::set_statefile() {
  cfg_.settings.statefile = path_value("a state file path");
}

void Parser::set_ssl() {
  accept("options");
  parse_tls_block(global_tls_);
}

void Parser::set_limits() {
  if (peek().kind != Token::Kind::lbrace) fail_expected("'{' after 'set limits'");
  next();
  static const std::vector<std::string> keys = {"connections", "handshakes", "startrate",
                                                "networktimeout"};
  while (peek().kind != Token::Kind::rbrace) {
    if (peek().kind == Token::Kind::end) fail_expected("'}' to close 'set limits {'");
    if (peek().kind == Token::Kind::comma) {
      next();
      continue;
    }
    if (accept("connections")) {
      accept_colon();
      cfg_.settings.concurrency = static_cast<int>(number("the connection limit", 1, 100000));
    } else if (accept("startrate")) {
      accept_colon();
      cfg_.settings.start_rate =
          static_cast<int>(number("the start rate (checks per second, 0 = no pacing)", 0, 1000000));
    } else if (accept("handshakes")) {
      accept_colon();
      cfg_.settings.handshakes = static_cast<int>(number("the TLS handshake limit", 1, 100000));
    } else if (accept("networktimeout")) {
      accept_colon();
      default_timeout_ms_ = duration_ms("the network timeout", 100);
    } else {
      fail_expected("a limit (" + one_of(keys) + ")", keys);
    }
  }
  next();
}

// set credentials "PATH": the libconfig file of logins that tests name with credentials "NAME".
void Parser::set_credentials() {
  Location where = prev().where;
  std::string path = value("the path of the credentials file");
  if (path.empty()) fail(where, "empty credentials file path");
  if (!credentials_path_.empty())
    fail(where, "the credentials file is already set at " + credentials_at_.str());
  path = files::expand_home(path);
  credentials_path_ = path[0] == '/' ? path : files::dirname(current_file_) + "/" + path;
  credentials_at_ = where;
}

// set user NAME|UID: the daemon, started as root, becomes this user (with its primary group).
void Parser::set_user() {
  Location where = prev().where;
  uid_t uid = resolve_user(value("a user name or uid"));
  struct passwd* pw = getpwuid(uid);
  if (!pw) fail(where, "set user: no user has uid " + std::to_string(uid));
  cfg_.settings.user = RunAs{where, pw->pw_name, pw->pw_uid, pw->pw_gid};
}

void Parser::accept_colon() {
  if (peek().kind == Token::Kind::colon) next();
}

bool Parser::parse_bool(const std::string& what) {
  const Token& t = peek();
  static const std::vector<std::string> words = {"enable", "disable", "yes", "no", "true", "false"};
  if (t.kind == Token::Kind::word) {
    std::string v = str::lower(t.text);
    if (v == "enable" || v == "enabled" || v == "yes" || v == "true") {
      next();
      return true;
    }
    if (v == "disable" || v == "disabled" || v == "no" || v == "false") {
      next();
      return false;
    }
  }
  fail_expected(what + " (enable or disable)", words);
}

void Parser::parse_tls_block(TlsOverrides& o) {
  if (peek().kind != Token::Kind::lbrace) fail_expected("'{' to start the ssl options");
  next();
  static const std::vector<std::string> keys = {
      "verify", "selfsigned", "cacertificatefile", "cacertificatepath", "version", "servername"};
  while (peek().kind != Token::Kind::rbrace) {
    if (peek().kind == Token::Kind::end) fail_expected("'}' to close the ssl options");
    if (peek().kind == Token::Kind::comma) {
      next();
      continue;
    }
    const Token key = peek();
    if (key.kind != Token::Kind::word) fail_expected("an ssl option (" + one_of(keys) + ")", keys);
    std::string k = str::lower(key.text);
    next();
    accept_colon();
    if (k == "verify") {
      o.verify = parse_bool("'verify:'");
    } else if (k == "selfsigned") {
      if (accept("allow")) {
        o.allow_selfsigned = true;
      } else if (accept("reject")) {
        o.allow_selfsigned = false;
      } else {
        fail_expected("'allow' or 'reject' after 'selfsigned:'", {"allow", "reject"});
      }
    } else if (k == "cacertificatefile") {
      o.ca_file = path_value("a CA certificate file");
    } else if (k == "cacertificatepath") {
      o.ca_path = path_value("a CA certificate directory");
    } else if (k == "version") {
      std::string v = str::lower(value("a TLS version"));
      if (v == "auto" || v == "tlsv12" || v == "tlsv1.2" || v == "tls1.2") {
        o.min_version = v == "auto" ? TlsVersion::auto_min : TlsVersion::tls12;
      } else if (v == "tlsv13" || v == "tlsv1.3" || v == "tls1.3") {
        o.min_version = TlsVersion::tls13;
      } else {
        fail(key.where, "unsupported TLS version '" + v +
                            "': mailwarden speaks TLS 1.2 and 1.3 (auto, tlsv12, tlsv13)");
      }
    } else if (k == "servername") {
      o.server_name = value("a server name");
    } else {
      fail(key.where, "unknown ssl option '" + key.text + "' (expected " + one_of(keys) + ")" +
                          did_you_mean(key.text, keys));
    }
  }
  next();
}

}  // namespace mw::config::parsing
