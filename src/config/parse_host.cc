// "check host NAME with address HOST" and its port tests: clauses, event rules, actions, and
// the semantic checks that make a parsed test one that can run.
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

// ---- check host ---------------------------------------------------------------------------
void Parser::check_host() {
  size_t index = begin_service(ServiceKind::host, "check host");
  expect_kw("address", "after the service name (check host NAME with address HOST)");
  cfg_.services[index].address = value("a host name or address");
  parse_service_body(index, service_statements());
}

void Parser::parse_group(size_t index) {
  next();
  cfg_.services[index].groups.push_back(value("a group name"));
}

void Parser::parse_if(size_t index) {
  Location where = next().where;
  if (accept("failed")) {
    parse_port_test(index, where);
    return;
  }
  fail_expected("'failed' after 'if'", {"failed"});
}

void Parser::parse_port_test(size_t index, const Location& where) {
  Service& svc = cfg_.services[index];
  Check chk;
  chk.where = where;
  chk.timeout_ms = default_timeout_ms_;
  PortCheck pc;
  pc.endpoint.host = svc.address;
  PortClauses c;
  Rule rule;
  rule.where = where;
  std::optional<int64_t> deadline;
  static const std::vector<std::string> clauses = {
      "host",  "port",     "unixsocket", "ipv4",        "ipv6",     "type",        "ssl",
      "tls",   "protocol", "starttls",   "username",    "password", "masteruser",  "credentials",
      "allow", "select",   "timeout",    "deadline",    "retry",    "certificate", "for",
      "then",  "send",     "expect",     "responsetime"};
  for (;;) {
    const Token& t = peek();
    if (is_kw(t, "then")) break;
    if (t.kind == Token::Kind::number) {
      parse_cycles(rule.fail_rule);
      continue;
    }
    if (t.kind != Token::Kind::word) fail_expected("a port test clause or 'then'", {});
    std::string k = str::lower(t.text);
    Location at_kw = t.where;
    next();
    if (k == "host") {
      pc.endpoint.host = value("a host after 'host'");
    } else if (k == "port") {
      c.port_at = at_kw;
      pc.endpoint.port = static_cast<uint16_t>(number("a port number", 1, 65535));
    } else if (k == "unixsocket" || k == "unix") {
      c.unix_at = at_kw;
      pc.endpoint.unix_path = value("a unix socket path");
    } else if (k == "ipv4") {
      pc.endpoint.family = AddressFamily::ipv4;
    } else if (k == "ipv6") {
      pc.endpoint.family = AddressFamily::ipv6;
    } else if (k == "type") {
      std::string ty = str::lower(value("a connection type (tcp or tcpssl)"));
      if (ty == "tcpssl") {
        c.type_ssl = true;
        c.ssl_at = at_kw;
      } else if (ty != "tcp") {
        fail(at_kw, "unsupported connection type '" + ty + "' (mailwarden speaks tcp and tcpssl)");
      }
    } else if (k == "ssl" || k == "tls") {
      if (at("options") || peek().kind == Token::Kind::lbrace) {
        accept("options");
        TlsOverrides o;
        parse_tls_block(o);
        c.tls = o;
      } else {
        c.type_ssl = true;
        c.ssl_at = at_kw;
      }
    } else if (k == "protocol" || k == "proto") {
      c.protocol_at = peek().where;
      pc.protocol_name = str::lower(value("a protocol name"));
      if (accept("starttls")) {
        c.starttls = true;
        c.starttls_at = prev().where;
      }
    } else if (k == "starttls") {
      c.starttls = true;
      c.starttls_at = at_kw;
    } else if (k == "username" || k == "user") {
      pc.options.username = string_or_word("a user name");
    } else if (k == "password") {
      c.password_at = at_kw;
      pc.options.password = string_or_word("a password");
      note_secret(at_kw);
    } else if (k == "masteruser") {
      c.masteruser_at = at_kw;
      pc.options.authzid = string_or_word("a master user name");
    } else if (k == "allow") {
      expect_kw("plaintext", "after 'allow' (allow plaintext)");
      pc.options.allow_plaintext = true;
    } else if (k == "select" || k == "mailbox") {
      c.mailbox_at = at_kw;
      pc.options.mailbox = string_or_word("a mailbox name");
    } else if (k == "timeout") {
      chk.timeout_ms = duration_ms("the timeout", 100);
    } else if (k == "deadline") {
      deadline = duration_ms("the deadline", 100);
    } else if (k == "retry") {
      chk.retry = static_cast<int>(number("the number of retries", 0, 10));
    } else if (k == "certificate" || k == "cert") {
      c.cert_at = at_kw;
      parse_certificate_clause(pc);
    } else if (k == "responsetime") {
      parse_comparison_gt("'responsetime'");
      pc.max_response_ms = duration_ms("the response time limit", 1);
    } else if (k == "for") {
      long long n = number("the number of cycles", 1, kMaxCycles);
      expect_kw("cycles", "after 'for N'");
      rule.fail_rule = EventRule{static_cast<int>(n), static_cast<int>(n)};
    } else {
      fail(at_kw, "unknown port test clause '" + t.text + "'" + did_you_mean(k, clauses));
    }
  }
  next();  // then
  parse_actions(rule.fail_actions);
  if (accept("else")) {
    expect_kw("if", "after 'else'");
    if (!accept("succeeded") && !accept("passed"))
      fail_expected("'succeeded' after 'else if'", {"succeeded"});
    if (peek().kind == Token::Kind::number) parse_cycles(rule.ok_rule);
    if (accept("for")) {
      long long n = number("the number of cycles", 1, kMaxCycles);
      expect_kw("cycles", "after 'for N'");
      rule.ok_rule = EventRule{static_cast<int>(n), static_cast<int>(n)};
    }
    expect_kw("then", "after 'else if succeeded'");
    parse_actions(rule.ok_actions);
  }
  // The statement is fully read: a semantic error must not make the parser skip what follows.
  try {
    finish_port_test(index, std::move(chk), std::move(pc), c, std::move(rule), deadline);
  } catch (const Abandon&) {
  }
}

void Parser::parse_comparison_gt(const std::string& after) {
  const Token& t = peek();
  if (t.kind == Token::Kind::op && t.text == ">") {
    next();
    return;
  }
  if (accept("greater") || accept("gt")) return;
  fail_expected("'>' after " + after);
}

void Parser::parse_certificate_clause(PortCheck& pc) {
  if (accept("valid")) {
    const Token& t = peek();
    if (t.kind == Token::Kind::op && (t.text == ">" || t.text == ">=")) {
      next();
    } else if (accept("greater") || accept("gt") || accept("for")) {
      accept("more");
    }
    pc.cert_min_days = static_cast<int>(number("the number of days", 0, 36500));
    if (!accept("days") && !accept("day")) fail_expected("'days' after the number", {"days"});
    return;
  }
  if (accept("checksum")) {
    if (accept("md5") || accept("sha1"))
      fail(prev().where, "only sha256 certificate checksums are supported");
    accept("sha256");
    if (peek().kind == Token::Kind::op && (peek().text == "=" || peek().text == "==")) next();
    Location at_hex = peek().where;
    std::string hex;
    for (char ch : value("the certificate's SHA-256 fingerprint (hex)"))
      if (ch != ':') hex += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      fail(at_hex, "a SHA-256 fingerprint is 64 hex digits (colons allowed)");
    pc.cert_sha256 = hex;
    return;
  }
  fail_expected("'valid' or 'checksum' after 'certificate'", {"valid", "checksum"});
}

// "N times within M cycles" or "N cycles" (= for N cycles).
void Parser::parse_cycles(EventRule& rule) {
  Location where = peek().where;
  long long n = number("a number of cycles", 1, kMaxCycles);
  if (accept("times")) {
    expect_kw("within", "after 'N times' (N times within M cycles)");
    long long m = number("a number of cycles", 1, kMaxCycles);
    expect_kw("cycles", "after 'within M'");
    if (n > m)
      fail(where, std::to_string(n) + " times within " + std::to_string(m) +
                      " cycles can never happen (N must not exceed M)");
    rule = EventRule{static_cast<int>(n), static_cast<int>(m)};
    return;
  }
  if (accept("cycles") || accept("cycle")) {
    rule = EventRule{static_cast<int>(n), static_cast<int>(n)};
    return;
  }
  fail_expected("'times within M cycles' or 'cycles' after the number", {"times", "cycles"});
}

void Parser::parse_actions(std::vector<Action>& out) {
  static const std::vector<std::string> actions = {"alert", "exec"};
  do {
    const Token& t = peek();
    if (accept("alert")) {
      out.push_back(Action{ActionKind::alert, {}});
    } else if (accept("exec")) {
      Action a;
      a.kind = ActionKind::exec;
      parse_exec(a.exec);
      out.push_back(std::move(a));
    } else if (is_kw(t, "restart") || is_kw(t, "start") || is_kw(t, "stop") ||
               is_kw(t, "unmonitor") || is_kw(t, "monitor")) {
      fail(t.where, "action '" + t.text +
                        "' needs a program mailwarden does not manage; use exec \"COMMAND\"");
    } else {
      fail_expected("an action (" + one_of(actions) + ")", actions);
    }
  } while (at("alert") || at("exec"));
}

void Parser::parse_exec(ExecSpec& e) {
  Location where = peek().where;
  e.command = string_value("the command to run after 'exec'");
  if (str::trim(e.command).empty()) fail(where, "exec needs a command");
  for (;;) {
    if (accept("uid")) {
      e.uid = resolve_user(value("a user name or uid"));
    } else if (accept("gid")) {
      e.gid = resolve_group(value("a group name or gid"));
    } else if (accept("timeout")) {
      e.timeout_s = static_cast<int>(duration_ms("the exec timeout", 1000) / 1000);
    } else if (accept("repeat")) {
      expect_kw("every", "after 'repeat'");
      e.repeat_every = static_cast<int>(number("a number of cycles", 1, 100000));
      expect_kw("cycles", "after 'repeat every N'");
    } else {
      return;
    }
  }
}

uid_t Parser::resolve_user(const std::string& name) {
  Location where = prev().where;
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos)
    return static_cast<uid_t>(std::stoul(name));
  struct passwd* pw = getpwnam(name.c_str());
  if (!pw) fail(where, "unknown user '" + name + "'");
  return pw->pw_uid;
}

gid_t Parser::resolve_group(const std::string& name) {
  Location where = prev().where;
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos)
    return static_cast<gid_t>(std::stoul(name));
  struct group* gr = getgrnam(name.c_str());
  if (!gr) fail(where, "unknown group '" + name + "'");
  return gr->gr_gid;
}

void Parser::finish_port_test(size_t index, Check chk, PortCheck pc, const PortClauses& c,
                              Rule rule, std::optional<int64_t> deadline) {
  Service& svc = cfg_.services[index];
  const Location& where = chk.where;
  if (c.port_at && c.unix_at) fail(*c.unix_at, "a port test has either 'port' or 'unixsocket'");
  const protocols::ProtocolInfo* proto = nullptr;
  if (!pc.protocol_name.empty()) {
    proto = protocols::find(pc.protocol_name);
    if (!proto) {
      std::vector<std::string> names;
      for (const auto& row : protocols::all()) names.emplace_back(row.name);
      fail(*c.protocol_at, "unknown protocol '" + pc.protocol_name +
                               "' (known: " + str::join(names, ", ") + ")" +
                               did_you_mean(pc.protocol_name, names));
    }
  } else {
    fail(where, "the port test names no protocol (add 'protocol imap', 'protocol imaps', ...)");
  }
  pc.protocol = proto;
  if (!c.port_at && !c.unix_at) pc.endpoint.port = proto->default_port;
  if (pc.endpoint.unix_path.empty() && pc.endpoint.host.empty())
    fail(where, "the port test has no host (the service has no address)");

  // TLS mode: the protocol's own, 'ssl'/'tcpssl', and 'starttls'.
  TlsMode mode = proto->default_tls;
  if (c.type_ssl) mode = TlsMode::implicit;
  if (mode == TlsMode::implicit && proto->default_tls == TlsMode::implicit && !c.type_ssl &&
      proto->starttls_port != 0 && pc.endpoint.port == proto->starttls_port)
    mode = TlsMode::starttls;  // monit: "protocol imaps" on port 143
  if (c.starttls) {
    if (c.type_ssl || (proto->default_tls == TlsMode::implicit && mode == TlsMode::implicit))
      fail(*c.starttls_at, "'starttls' cannot be combined with TLS from the first byte (" +
                               std::string(c.type_ssl ? "ssl" : "protocol " + pc.protocol_name) +
                               "); use the plain protocol with starttls");
    if (!proto->starttls)
      fail(*c.starttls_at, "protocol '" + pc.protocol_name + "' has no STARTTLS");
    mode = TlsMode::starttls;
  }
  pc.tls_mode = mode;
  if (c.tls && mode == TlsMode::none)
    fail(where, "ssl options given, but this test does not use TLS (add 'ssl' or 'starttls')");
  if ((pc.cert_min_days || !pc.cert_sha256.empty()) && mode == TlsMode::none)
    fail(*c.cert_at,
         "a certificate test needs TLS (add 'ssl', 'starttls' or an implicit-TLS "
         "protocol such as imaps)");

  // Options the protocol accepts.
  auto reject_option = [&](bool used, unsigned flag, const std::optional<Location>& at,
                           const char* name) {
    if (used && !(proto->accepts & flag))
      fail(at ? *at : where, "protocol '" + pc.protocol_name + "' does not take '" + name + "'");
  };
  reject_option(pc.options.has_login() || !pc.options.password.empty(), protocols::kLogin,
                c.password_at, "username/password");
  reject_option(!pc.options.authzid.empty(), protocols::kMasterUser, c.masteruser_at, "masteruser");
  reject_option(!pc.options.mailbox.empty(), protocols::kMailbox, c.mailbox_at, "select");
  if (!pc.options.password.empty() && pc.options.username.empty())
    fail(c.password_at ? *c.password_at : where, "a password needs a username");
  if (pc.options.has_login() && pc.options.password.empty())
    fail(where, "username '" + pc.options.username + "' has no password");
  if (!pc.options.authzid.empty() && !pc.options.has_login())
    fail(c.masteruser_at ? *c.masteruser_at : where, "masteruser needs a username to log in as");
  if (pc.options.has_login() && mode == TlsMode::none && !pc.options.allow_plaintext)
    fail(c.password_at ? *c.password_at : where,
         "the password of '" + pc.options.username +
             "' would cross an unencrypted connection; use starttls, ssl or an implicit-TLS "
             "protocol, or say 'allow plaintext'");
  if (!pc.options.mailbox.empty() && !pc.options.has_login())
    fail(c.mailbox_at ? *c.mailbox_at : where, "select needs a login (username and password)");

  chk.deadline_ms = deadline ? *deadline : 3 * chk.timeout_ms;
  if (chk.deadline_ms < chk.timeout_ms)
    fail(where, "the deadline must not be shorter than the timeout");
  std::string endpoint = pc.endpoint.describe();
  std::string label = pc.protocol_name;
  if (mode == TlsMode::starttls && proto->default_tls != TlsMode::implicit) label += "+starttls";
  if (mode == TlsMode::implicit && proto->default_tls != TlsMode::implicit) label += "+ssl";
  chk.description = label + " " + endpoint;
  if (pc.options.has_login()) chk.description += " as " + pc.options.username;
  if (!pc.options.authzid.empty()) chk.description += " via " + pc.options.authzid;
  std::string id = chk.description;
  int n = 1;
  while (std::any_of(svc.checks.begin(), svc.checks.end(),
                     [&](const Check& other) { return other.id == id; }))
    id = chk.description + " #" + std::to_string(++n);
  chk.id = id;
  if (n > 1) chk.description = id;
  chk.what = std::move(pc);
  chk.rules.push_back(std::move(rule));
  svc.checks.push_back(std::move(chk));
  if (c.tls) pending_tls_.push_back({index, svc.checks.size() - 1, *c.tls});
}

}  // namespace mw::config::parsing
