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
    if (accept("facility")) {
      Location where = peek().where;
      std::string f = str::lower(value("a syslog facility"));
      if (f.rfind("log_", 0) == 0) f = f.substr(4);  // monit writes log_daemon, log_local0
      static const std::vector<std::string> known = {"user",   "daemon", "mail",   "local0",
                                                     "local1", "local2", "local3", "local4",
                                                     "local5", "local6", "local7"};
      if (std::find(known.begin(), known.end(), f) == known.end())
        fail(where, "unknown syslog facility '" + f + "' (" + one_of(known) + ")" +
                        did_you_mean(f, known));
      cfg_.settings.syslog_facility = f;
    }
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
  return files::dirname(current_file()) + "/" + path;
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

void Parser::set_idfile() {
  Location where = prev().where;
  (void)path_value("the id file path");
  accepted_without_effect(where, "set idfile",
                          "the id names this host to M/Monit, which mailwarden does not report to");
  check_statement_end("set idfile", {});
}

void Parser::set_mmonit() {
  Location where = prev().where;
  // "https://user:password@host:8443/collector": the URL may hold a password.
  if (peek().kind != Token::Kind::end && peek().text.find('@') != std::string::npos &&
      peek().text.find(':', peek().text.find("://") + 3) < peek().text.find('@'))
    note_secret(peek().where);
  value("the M/Monit collector URL");
  skip_statement_rest();
  accepted_without_effect(where, "set mmonit",
                          "mailwarden does not report to M/Monit; its status is served by "
                          "itself");
}

void Parser::set_onreboot() {
  if (accept("start"))
    default_onreboot_ = OnReboot::start;
  else if (accept("nostart"))
    default_onreboot_ = OnReboot::nostart;
  else if (accept("laststate"))
    default_onreboot_ = OnReboot::laststate;
  else
    fail_expected("'start', 'nostart' or 'laststate' after 'set onreboot'",
                  {"start", "nostart", "laststate"});
  check_statement_end("set onreboot", {});
}

void Parser::set_init() {
  Location where = prev().where;
  accepted_without_effect(where, "set init",
                          "mailwarden -I (or the systemd unit) runs in the foreground");
  check_statement_end("set init", {});
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
    } else if (peek().kind == Token::Kind::word) {
      // monit's limits (programoutput, sendexpectbuffer, filecontentbuffer, httpcontentbuffer,
      // programtimeout, stoptimeout, starttimeout, restarttimeout, execTimeout...): mailwarden
      // bounds these itself. Accepted with a warning, the value skipped.
      Token key = next();
      accept_colon();
      while (peek().kind != Token::Kind::comma && peek().kind != Token::Kind::rbrace &&
             peek().kind != Token::Kind::end && peek(1).kind != Token::Kind::colon)
        next();
      warn(key.where, "limit '" + key.text +
                          "' accepted for monit compatibility; no effect: "
                          "mailwarden has its own bounds (known here: " +
                          one_of(keys) + ")");
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
  credentials_path_ = path[0] == '/' ? path : files::dirname(current_file()) + "/" + path;
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
      "verify",   "selfsigned", "cacertificatefile", "cacertificatepath",
      "version",  "ciphers",    "servername",        "pemfile",
      "pemchain", "pemkey",     "clientpemfile"};
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
      parse_tls_versions(o, key.where);
    } else if (k == "ciphers") {
      o.ciphers = value("a cipher list");
      warn(key.where,
           "'ciphers:' accepted for monit compatibility; no effect: mailwarden uses "
           "OpenSSL's default cipher suites for TLS 1.2 and 1.3");
    } else if (k == "servername") {
      o.server_name = value("a server name");
    } else if (k == "pemfile" || k == "pemchain" || k == "pemkey" || k == "clientpemfile") {
      (void)path_value("a PEM file");
      warn(key.where, "'" + k +
                          ":' accepted for monit compatibility; no effect here: "
                          "mailwarden presents no client certificate (set httpd { ssl } takes "
                          "the server's)");
    } else {
      fail(key.where, "unknown ssl option '" + key.text + "' (expected " + one_of(keys) + ")" +
                          did_you_mean(key.text, keys));
    }
  }
  next();
}

// "version: tlsv12", "version: auto", or monit's list "auto -sslv2 -sslv3 +tlsv12 ...": the
// versions left enabled are mapped to the oldest of them, which becomes the minimum version.
// mailwarden never speaks anything older than TLS 1.2, and caps nothing above the minimum.
void Parser::parse_tls_versions(TlsOverrides& o, const Location& where) {
  // bit per version: sslv2 sslv3 tlsv1 tlsv11 tlsv12 tlsv13
  static const std::vector<std::pair<std::vector<std::string>, int>> names = {
      {{"sslv2"}, 0},
      {{"sslv3"}, 1},
      {{"tlsv1", "tlsv10", "tlsv1.0", "tls1.0"}, 2},
      {{"tlsv11", "tlsv1.1", "tls1.1"}, 3},
      {{"tlsv12", "tlsv1.2", "tls1.2"}, 4},
      {{"tlsv13", "tlsv1.3", "tls1.3"}, 5}};
  auto index_of = [&](const std::string& v) {
    for (const auto& [spellings, i] : names)
      if (std::find(spellings.begin(), spellings.end(), v) != spellings.end()) return i;
    return -1;
  };
  unsigned enabled = 0;
  bool any = false, exact = false;
  while (peek().kind == Token::Kind::word) {
    std::string w = str::lower(peek().text);
    char sign = w[0] == '+' || w[0] == '-' ? w[0] : 0;
    std::string v = sign ? w.substr(1) : w;
    if (v == "auto" || v == "sslauto") {
      if (sign) fail(peek().where, "'" + w + "': auto takes no sign");
      enabled |= (1u << 4) | (1u << 5);  // auto: what mailwarden speaks, TLS 1.2 and 1.3
    } else {
      int i = index_of(v);
      if (i < 0) {
        // The next ssl option (written without a comma) ends the list.
        if (!any || sign)
          fail(peek().where, "unknown TLS version '" + w +
                                 "' (auto, sslv2, sslv3, tlsv1, tlsv11, tlsv12, tlsv13, each "
                                 "may carry + or -)");
        break;
      }
      if (sign == '-') {
        enabled &= ~(1u << i);
      } else {
        enabled |= 1u << i;
        exact = exact || (!sign && !any);
      }
    }
    any = true;
    next();
  }
  if (!any) fail_expected("a TLS version (auto, tlsv12, tlsv13, or +/- versions)");
  if (enabled & 0xfu)
    warn(where,
         "TLS versions older than 1.2 are not spoken by mailwarden; its minimum is "
         "TLS 1.2");
  if ((enabled & (1u << 4)) && !(enabled & (1u << 5)) && exact)
    warn(where, "mailwarden sets only a minimum TLS version: TLS 1.3 stays allowed");
  if (enabled == 0) fail(where, "the version list leaves no TLS version enabled");
  bool auto_only = !exact && (enabled & 0x30u) == 0x30u && !(enabled & 0xfu);
  if ((enabled & 0x3fu) == (1u << 5))
    o.min_version = TlsVersion::tls13;
  else
    o.min_version = auto_only ? TlsVersion::auto_min : TlsVersion::tls12;
}

}  // namespace mw::config::parsing
