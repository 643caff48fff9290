// "check host NAME with address HOST" and its port tests: clauses, event rules, actions, and
// the semantic checks that make a parsed test one that can run.
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "checks/registry.h"
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
  std::string address = value("a host name or address");
  // "[::1]" as in URLs: the brackets are not part of the address.
  if (address.size() > 2 && address.front() == '[' && address.back() == ']')
    address = address.substr(1, address.size() - 2);
  cfg_.services[index].address = address;
  parse_service_body(index, service_statements());
}

void Parser::parse_group(size_t index) {
  next();
  cfg_.services[index].groups.push_back(value("a group name"));
}

// mode active|passive|manual, as monit: passive never starts, stops or restarts the service
// on a rule (alerts only); manual is not monitored until a verb (start, monitor) says so.
void Parser::parse_mode(size_t index) {
  next();
  Service& svc = cfg_.services[index];
  if (accept("active")) {
    svc.mode = ServiceMode::active;
  } else if (accept("passive")) {
    svc.mode = ServiceMode::passive;
  } else if (accept("manual")) {
    svc.mode = ServiceMode::manual;
  } else {
    fail_expected("'active', 'passive' or 'manual' after 'mode'", {"active", "passive", "manual"});
  }
}

void Parser::parse_service_onreboot(size_t index) {
  next();
  onreboot_given_.insert(index);
  Service& svc = cfg_.services[index];
  if (accept("start")) {
    svc.onreboot = OnReboot::start;
  } else if (accept("nostart")) {
    svc.onreboot = OnReboot::nostart;
  } else if (accept("laststate")) {
    svc.onreboot = OnReboot::laststate;
  } else {
    fail_expected("'start', 'nostart' or 'laststate' after 'onreboot'",
                  {"start", "nostart", "laststate"});
  }
}

// depends [on] NAME [[,] NAME ...]: the names are checked once the whole file is read.
void Parser::parse_depends(size_t index) {
  next();
  Service& svc = cfg_.services[index];
  size_t before = svc.depends.size();
  for (;;) {
    if (peek().kind == Token::Kind::comma) {
      next();
      continue;
    }
    const Token& t = peek();
    if (t.kind != Token::Kind::word && t.kind != Token::Kind::string) break;
    if (svc.depends.size() > before && t.kind == Token::Kind::word &&
        (at("if") || at("group") || at("alert") || at("noalert") || at("mode") || at("onreboot") ||
         at("depend") || at("start") || at("stop") || at("restart") || at("depends") ||
         at("every") || at("not") || at("check") || at("set") || at("include")))
      break;
    Location name_at = t.where;
    std::string name = value("a service name");
    if (std::find(svc.depends.begin(), svc.depends.end(), name) == svc.depends.end())
      svc.depends.push_back(name);
    depends_at_.push_back({index, name, name_at});
  }
  if (svc.depends.size() == before) fail_expected("the name of a service after 'depends on'");
}

void Parser::parse_every(size_t index) {
  next();
  parse_schedule(index, false);
}

void Parser::parse_not_every(size_t index) {
  next();
  expect_kw("every", "after 'not' (not every \"CRON\")");
  parse_schedule(index, true);
}

// every N cycles | every "CRON" | not every "CRON"
void Parser::parse_schedule(size_t index, bool negated) {
  Service& svc = cfg_.services[index];
  Location where = prev().where;
  if (svc.schedule) fail(where, "'" + svc.name + "' already has an 'every' schedule");
  ServiceSchedule& schedule = svc.schedule.ensure();
  if (!negated && peek().kind == Token::Kind::number) {
    schedule.cycles = static_cast<int>(number("the number of cycles", 1, 100000));
    if (!accept("cycles") && !accept("cycle"))
      fail_expected("'cycles' after 'every N'", {"cycles"});
    schedule.kind = ServiceSchedule::Kind::cycles;
    return;
  }
  Location spec_at = peek().where;
  schedule.source =
      string_value(negated ? "a cron specification" : "N cycles or a cron specification");
  std::string error;
  auto spec = parse_cron(schedule.source, error);
  if (!spec) fail(spec_at, error);
  schedule.cron = *spec;
  schedule.kind = negated ? ServiceSchedule::Kind::not_cron : ServiceSchedule::Kind::cron;
}

// Every name a "depends on" gives must be a service of the file, and the dependencies must not
// form a cycle (a service would wait on itself forever).
void Parser::check_dependencies() {
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < cfg_.services.size(); ++i) by_name[cfg_.services[i].name] = i;
  for (const auto& d : depends_at_) {
    const std::string& svc = cfg_.services[d.service].name;
    if (d.name == svc) {
      d_.error(d.where, "'" + svc + "' depends on itself");
    } else if (!by_name.count(d.name) && !services_not_run_.count(d.name)) {
      std::vector<std::string> names;
      for (const auto& [n, at] : service_at_) names.push_back(n);
      d_.error(d.where, "'" + svc + "' depends on '" + d.name +
                            "', which is not a service of this file" + did_you_mean(d.name, names));
    }
  }
  // Cycles: depth-first search, reporting each cycle once at the service that closes it.
  enum Mark { none, active, done };
  std::vector<Mark> mark(cfg_.services.size(), none);
  std::vector<std::string> path;
  std::function<void(size_t)> visit = [&](size_t i) {
    mark[i] = active;
    path.push_back(cfg_.services[i].name);
    for (const auto& dep : cfg_.services[i].depends) {
      auto it = by_name.find(dep);
      if (it == by_name.end() || it->second == i) continue;
      if (mark[it->second] == active) {
        auto from = std::find(path.begin(), path.end(), dep);
        std::vector<std::string> cycle(from, path.end());
        cycle.push_back(dep);
        Location where = cfg_.services[i].where;
        for (const auto& d : depends_at_)
          if (d.service == i && d.name == dep) where = d.where;
        d_.error(where, "dependency cycle: " + str::join(cycle, " -> "));
      } else if (mark[it->second] == none) {
        visit(it->second);
      }
    }
    path.pop_back();
    mark[i] = done;
  };
  for (size_t i = 0; i < cfg_.services.size(); ++i)
    if (mark[i] == none) visit(i);
}

void Parser::parse_if(size_t index) {
  Location where = next().where;
  if (parse_local_if(index, where)) return;
  if (accept("failed")) {
    if (at("ping") || at("icmp") || at("ping4") || at("ping6"))
      return parse_ping_test(index, where);
    parse_port_test(index, where);
    return;
  }
  // monit's "if N restarts within M cycles then ...": counts restarts, which a check host never
  // makes. Read in full, with a warning.
  if (peek().kind == Token::Kind::number &&
      (is_kw(peek(1), "restarts") || is_kw(peek(1), "restart"))) {
    next();
    next();
    accept("within");
    if (peek().kind == Token::Kind::number) {
      number("a number of cycles", 1, kMaxCycles);
      if (!accept("cycles")) accept("cycle");
    }
    expect_kw("then", "after 'if N restarts within M cycles'");
    Rule ignored;
    parse_rule_tail(ignored, "if N restarts");
    warn(where, "'if N restarts within M cycles' has no effect in check host '" +
                    cfg_.services[index].name + "': mailwarden restarts nothing here");
    return;
  }
  fail_expected("'failed' after 'if'", {"failed"});
}

void Parser::parse_port_test(size_t index, const Location& where) {
  Service& svc = cfg_.services[index];
  Check chk;
  chk.where = where;
  chk.timeout_ms = 0;  // none written: set limits { networktimeout } decides, in finalize()
  PortCheck pc;
  pc.endpoint.host = svc.address;
  PortClauses c;
  Rule rule;
  rule.where = where;
  std::optional<int64_t> deadline;
  static const std::vector<std::string> clauses = {
      "host",  "port",     "unixsocket", "ipv4",         "ipv6",     "type",        "ssl",
      "tls",   "protocol", "starttls",   "username",     "password", "masteruser",  "credentials",
      "allow", "select",   "timeout",    "deadline",     "retry",    "certificate", "for",
      "then",  "send",     "expect",     "responsetime", "mail",     "rcpt",        "helo"};
  for (;;) {
    if (splice_include_here()) continue;
    const Token& t = peek();
    if (is_kw(t, "then")) break;
    if (t.kind == Token::Kind::number || is_kw(t, "for")) {
      parse_cycles(rule.fail_rule);
      continue;
    }
    if (t.kind != Token::Kind::word) fail_expected("a port test clause or 'then'", {});
    std::string k = str::lower(t.text);
    static const std::set<std::string> after_then = {
        "alert", "exec", "restart", "start", "stop", "check", "set", "if", "group", "unmonitor"};
    if (after_then.count(k))
      fail(t.where, "expected 'then' before " + describe(t) + " (the rule started at " +
                        where.str() + " has no 'then')");
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
      Location ty_at = peek().where;
      std::string ty = str::lower(value("a connection type (tcp, tcpssl or udp)"));
      if (ty == "tcpssl") {
        c.type_ssl = true;
        c.ssl_at = at_kw;
        parse_tcpssl_version(c);
      } else if (ty == "udp") {
        warn(ty_at,
             "type udp: mailwarden tests over TCP only; this test connects to the same "
             "port over TCP");
      } else if (ty != "tcp") {
        fail(ty_at, "unsupported connection type '" + ty + "' (tcp, tcpssl or udp)");
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
    } else if (k == "starttls" && !pc.options.steps.empty()) {
      // Between send/expect steps: upgrade at this point of the dialogue.
      c.steps_at = c.steps_at ? c.steps_at : at_kw;
      c.step_starttls_at = at_kw;
      Step s;
      s.kind = Step::Kind::starttls;
      pc.options.steps.push_back(std::move(s));
    } else if (k == "starttls") {
      c.starttls = true;
      c.starttls_at = at_kw;
    } else if (k == "send") {
      if (!c.steps_at) c.steps_at = at_kw;
      pc.options.steps.push_back(parse_send_step());
    } else if (k == "expect") {
      if (at("reject")) fail(at_kw, "'expect reject' follows 'rcpt to \"ADDRESS\"'");
      if (!c.steps_at) c.steps_at = at_kw;
      pc.options.steps.push_back(parse_expect_step());
    } else if (k == "mail") {
      expect_kw("from", "after 'mail' (mail from \"ADDRESS\")");
      if (!c.envelope_at) c.envelope_at = at_kw;
      pc.options.mail_from = envelope_address("the sender address after 'mail from'");
    } else if (k == "rcpt") {
      if (!c.envelope_at) c.envelope_at = at_kw;
      pc.options.rcpt_to = envelope_address("the recipient address after 'rcpt to'");
      if (at("expect") && is_kw(peek(1), "reject")) {
        next();
        next();
        pc.options.expect_reject = true;
      }
    } else if (k == "helo" || k == "ehlo" || k == "lhlo") {
      c.helo_at = at_kw;
      pc.options.helo = value("the name to greet with after '" + k + "'");
      if (pc.options.helo.empty() || pc.options.helo.find_first_of(" \t\r\n") != std::string::npos)
        fail(c.helo_at.value(), "the " + k + " name must be one word");
    } else if (k == "username" || k == "user") {
      pc.options.username = string_or_word("a user name");
    } else if (k == "password") {
      c.password_at = at_kw;
      pc.options.password = string_or_word("a password");
      note_secret(at_kw);
    } else if (k == "masteruser") {
      c.masteruser_at = at_kw;
      pc.options.authzid = string_or_word("a master user name");
    } else if (k == "credentials") {
      c.credentials_at = peek().where;
      pc.options.credentials = string_or_word("the name of an entry of the credentials file");
    } else if (k == "allow") {
      if (at("preauth")) {
        c.preauth_at = next().where;
        pc.options.allow_preauth = true;
      } else {
        expect_kw("plaintext", "after 'allow' (allow plaintext or allow preauth)");
        pc.options.allow_plaintext = true;
      }
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
    } else if (!parse_protocol_clause(k, at_kw, pc, c)) {
      fail(at_kw, "unknown port test clause '" + t.text + "'" + did_you_mean(k, clauses));
    }
  }
  next();  // then
  parse_rule_tail(rule, "if failed");
  // The statement is fully read: a semantic error must not make the parser skip what follows.
  try {
    finish_port_test(index, std::move(chk), std::move(pc), c, std::move(rule), deadline);
  } catch (const Abandon&) {
  }
}

void Parser::parse_tcpssl_version(PortClauses& c) {
  if (peek().kind != Token::Kind::word) return;
  std::string v = str::lower(peek().text);
  Location where = peek().where;
  auto set_min = [&](TlsVersion version) {
    if (!c.tls) c.tls = TlsOverrides{};
    c.tls->min_version = version;
  };
  if (v == "sslauto" || v == "auto") {
    c.sslauto = true;
  } else if (v == "tlsv12" || v == "tlsv1.2") {
    set_min(TlsVersion::tls12);
  } else if (v == "tlsv13" || v == "tlsv1.3") {
    set_min(TlsVersion::tls13);
  } else if (v == "sslv2" || v == "sslv3" || v == "tlsv1" || v == "tlsv11" || v == "tlsv1.1") {
    warn(where, "'" + v +
                    "' is older than TLS 1.2, which mailwarden never speaks; the test uses "
                    "TLS 1.2 or newer");
  } else {
    return;
  }
  next();
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

// monit's rates: "[for] N cycles" and "[for] N times within M cycles" (monit reads "for",
// "times" and "within" as noise, so "N M cycles" is the same rule).
void Parser::parse_cycles(EventRule& rule) {
  accept("for");
  Location where = peek().where;
  long long n = number("the number of cycles", 1, kMaxCycles);
  bool times = accept("times") || accept("time");
  bool within = accept("within");
  if (times || within || peek().kind == Token::Kind::number) {
    long long m = number("the number of cycles", 1, kMaxCycles);
    if (!accept("cycles") && !accept("cycle"))
      fail_expected("'cycles' after 'within M'", {"cycles"});
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

// After "then": the actions; then "else if succeeded|recovered|passed [rate] then ACTIONS".
void Parser::parse_rule_tail(Rule& rule, const std::string& context) {
  parse_actions(rule.fail_actions);
  parse_severity(rule.severity);
  if (!at("else")) return;
  next();
  expect_kw("if", "after 'else'");
  if (!accept("succeeded") && !accept("recovered") && !accept("passed"))
    fail_expected("'succeeded' or 'recovered' after 'else if'", {"succeeded", "recovered"});
  if (peek().kind == Token::Kind::number || at("for")) parse_cycles(rule.ok_rule);
  expect_kw("then", "after 'else if succeeded' (" + context + ")");
  parse_actions(rule.ok_actions);
}

void Parser::parse_actions(std::vector<Action>& out) {
  static const std::vector<std::string> actions = {"alert", "exec", "director",  "restart",
                                                   "start", "stop", "unmonitor", "monitor"};
  do {
    const Token& t = peek();
    if (accept("alert")) {
      out.push_back(Action{ActionKind::alert, {}, {}});
    } else if (accept("exec")) {
      Action a;
      a.kind = ActionKind::exec;
      parse_exec(a.exec.ensure());
      out.push_back(std::move(a));
    } else if (accept("director")) {
      Action a;
      a.kind = ActionKind::director;
      parse_director_action(a.director.ensure());
      out.push_back(std::move(a));
    } else if (programs_allowed_ && accept("restart")) {
      out.push_back(Action{ActionKind::restart, {}, {}});
    } else if (programs_allowed_ && accept("start")) {
      out.push_back(Action{ActionKind::start, {}, {}});
    } else if (programs_allowed_ && accept("stop")) {
      out.push_back(Action{ActionKind::stop, {}, {}});
    } else if (programs_allowed_ && accept("unmonitor")) {
      out.push_back(Action{ActionKind::unmonitor, {}, {}});
    } else if (programs_allowed_ && accept("monitor")) {
      out.push_back(Action{ActionKind::monitor, {}, {}});
    } else if (is_kw(t, "restart") || is_kw(t, "start") || is_kw(t, "stop") ||
               is_kw(t, "unmonitor") || is_kw(t, "monitor") || is_kw(t, "timeout")) {
      // monit allows these on any service; in a check host there is no program to act on.
      // monit also alerts on the event, which is what mailwarden does.
      Token action = next();
      warn(action.where, "action '" + str::lower(action.text) +
                             "' has no effect in a check host (mailwarden manages no program "
                             "here); the rule alerts");
      out.push_back(Action{ActionKind::alert, {}, {}});
    } else {
      fail_expected("an action (" + one_of(actions) + ")", actions);
    }
    // "alert ADDR" after the actions is the service's next statement, not one more action.
    // "start program = ..." after the actions is the next statement too.
  } while (at("exec") || at("director") || at("unmonitor") ||
           ((at("restart") || at("start") || at("stop")) && !is_kw(peek(1), "program")) ||
           (at("alert") &&
            !(peek(1).kind == Token::Kind::string ||
              (peek(1).kind == Token::Kind::word && peek(1).text.find('@') != std::string::npos))));
}

// "as warning [on { CLASS, ... }]" or "as critical" after a rule's actions ("as" and "on" are
// noise words): the state Nagios plugin output gives its failure (mailwarden plugin). Without
// it a failure is CRITICAL.
void Parser::parse_severity(Severity& out) {
  if (accept("critical")) return;
  if (!accept("warning")) return;
  out.warning = true;
  if (peek().kind != Token::Kind::lbrace) return;
  next();
  while (peek().kind != Token::Kind::rbrace) {
    if (peek().kind == Token::Kind::end) fail_expected("'}' to close the failure classes");
    if (peek().kind == Token::Kind::comma) {
      next();
      continue;
    }
    const Token t = peek();
    std::string name = t.kind == Token::Kind::word ? str::lower(t.text) : "";
    FailureClass cls = failure_class_from_name(name, FailureClass::none);
    if (cls == FailureClass::none || cls == FailureClass::internal)
      fail(t.where,
           "expected a failure class (connect, timeout, tls, protocol, auth, rejected, "
           "missing-feature, certificate, responsetime, content), got " +
               describe(t));
    out.only.push_back(cls);
    next();
  }
  next();  // }
  if (out.only.empty()) fail(prev().where, "'as warning on { }' names no failure class");
}

void Parser::parse_exec(ExecSpec& e) {
  Location where = peek().where;
  e.command = string_value("the command to run after 'exec'");
  if (str::trim(e.command).empty()) fail(where, "exec needs a command");
  for (;;) {
    if (accept("timeout")) {
      int64_t ms = duration_ms("the exec timeout", 1000);
      if (ms > 7LL * 86400 * 1000) fail(prev().where, "an exec timeout can be at most 7 days");
      e.timeout_s = static_cast<int>(ms / 1000);
    } else if (!parse_run_as(e) && !parse_repeat_or_rate(e.repeat_every, e.rate)) {
      break;
    }
  }
  if (e.uid && !e.gid)
    e.gid = group_of_uid(*e.uid, where,
                         "exec as uid " + std::to_string(*e.uid) +
                             " needs a gid as well (no user has that uid): add 'gid G'");
}

bool Parser::parse_run_as(ExecSpec& e) {
  if (accept("uid")) {
    e.uid = resolve_user(value("a user name or uid"));
  } else if (accept("gid")) {
    e.gid = resolve_group(value("a group name or gid"));
  } else {
    return false;
  }
  return true;
}

// "as uid U" alone runs with U's own group, never with mailwarden's (root's) group.
gid_t Parser::group_of_uid(uid_t uid, const Location& where, const std::string& unknown) {
  struct passwd* pw = getpwuid(uid);
  if (!pw) fail(where, unknown);
  return pw->pw_gid;
}

// "repeat every N cycles" or "rate limit N per [M] seconds|minutes|hours" after an action;
// false when neither follows.
bool Parser::parse_repeat_or_rate(int& repeat_every, std::optional<RateLimit>& out) {
  if (accept("repeat")) {
    expect_kw("every", "after 'repeat'");
    repeat_every = static_cast<int>(number("a number of cycles", 1, 100000));
    expect_kw("cycles", "after 'repeat every N'");
    return true;
  }
  if (!accept("rate")) return false;
  expect_kw("limit", "after 'rate' (rate limit N per M seconds)");
  RateLimit rate;
  rate.count = static_cast<int>(number("the number of runs", 1, 100000));
  expect_kw("per", "after 'rate limit N' (rate limit N per M seconds)");
  Location at_period = peek().where;
  long long period = peek().kind == Token::Kind::number ? number("the period", 1, 1000000) : 1;
  std::string unit = peek().kind == Token::Kind::word ? str::lower(peek().text) : "";
  long long factor = 0;
  if (unit == "s" || unit == "sec" || unit == "second" || unit == "seconds") factor = 1;
  if (unit == "min" || unit == "minute" || unit == "minutes") factor = 60;
  if (unit == "h" || unit == "hour" || unit == "hours") factor = 3600;
  if (factor == 0)
    fail_expected("'seconds', 'minutes' or 'hours' after 'per'", {"seconds", "minutes", "hours"});
  next();
  if (period * factor > 366LL * 86400) fail(at_period, "a rate limit period can be at most a year");
  rate.per_seconds = static_cast<int>(period * factor);
  out = rate;
  return true;
}

// A number that fits the id type and is not (id_t)-1, which means "no change" to setuid.
template <typename Id>
static bool parse_id(const std::string& text, Id& out) {
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  if (v >= static_cast<unsigned long long>(static_cast<Id>(-1))) return false;
  out = static_cast<Id>(v);
  return true;
}

uid_t Parser::resolve_user(const std::string& name) {
  Location where = prev().where;
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
    uid_t uid = 0;
    if (!parse_id(name, uid)) fail(where, "uid " + name + " is out of range");
    return uid;
  }
  struct passwd* pw = getpwnam(name.c_str());
  if (!pw) fail(where, "unknown user '" + name + "'");
  return pw->pw_uid;
}

gid_t Parser::resolve_group(const std::string& name) {
  Location where = prev().where;
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
    gid_t gid = 0;
    if (!parse_id(name, gid)) fail(where, "gid " + name + " is out of range");
    return gid;
  }
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
  const bool no_protocol = pc.protocol_name.empty();
  if (no_protocol) pc.protocol_name = "tcp";  // monit, check_tcp: a plain connect
  {
    proto = protocols::find(pc.protocol_name);
    if (!proto) {
      std::vector<std::string> names;
      for (const auto& row : protocols::all()) names.emplace_back(row.name);
      fail(*c.protocol_at, "unknown protocol '" + pc.protocol_name +
                               "' (known: " + str::join(names, ", ") + ")" +
                               protocol_did_you_mean(pc.protocol_name, names));
    }
  }
  pc.protocol = proto;
  check_protocol_clauses(pc, c);
  if (!c.port_at && !c.unix_at) pc.endpoint.port = proto->default_port;
  if (!c.unix_at && pc.endpoint.port == 0)
    fail(where, no_protocol
                    ? "a port test without a protocol needs 'port N' (or 'unixsocket PATH')"
                    : "protocol '" + pc.protocol_name + "' has no usual port: add 'port N'");
  if (pc.endpoint.unix_path.empty() && pc.endpoint.host.empty())
    fail(where, "the port test has no host (the service has no address)");

  // TLS mode: the protocol's own, 'ssl'/'tcpssl', and 'starttls'.
  // "type tcpssl sslauto": TLS whichever way the port speaks it. On a port where the protocol
  // starts in plain text (25, 587, 24, 110, 143, 4190) and knows STARTTLS, STARTTLS; on every
  // other port (993, 995, 465, ...) and without a protocol, TLS from the first byte.
  bool plain_first_port = false;
  for (uint16_t p : {25, 587, 24, 110, 143, 4190})
    plain_first_port = plain_first_port || pc.endpoint.port == p;
  const bool auto_starttls = c.sslauto && proto->starttls && plain_first_port &&
                             pc.endpoint.unix_path.empty() && !c.starttls;
  const bool type_ssl = c.type_ssl && !auto_starttls;
  TlsMode mode = proto->default_tls;
  if (type_ssl) mode = TlsMode::implicit;
  if (mode == TlsMode::implicit && proto->default_tls == TlsMode::implicit && !type_ssl &&
      proto->starttls_port != 0 && pc.endpoint.port == proto->starttls_port)
    mode = TlsMode::starttls;  // monit: "protocol imaps" on port 143
  if (auto_starttls) mode = TlsMode::starttls;
  if (c.starttls) {
    if (type_ssl || (proto->default_tls == TlsMode::implicit && mode == TlsMode::implicit))
      fail(*c.starttls_at, "'starttls' cannot be combined with TLS from the first byte (" +
                               std::string(type_ssl ? "ssl" : "protocol " + pc.protocol_name) +
                               "); use the plain protocol with starttls");
    if (!proto->starttls && (proto->accepts & protocols::kSteps))
      fail(*c.starttls_at,
           "starttls needs a protocol that knows its STARTTLS command (add 'protocol smtp', "
           "'protocol imap', ...), or a send/expect dialogue with starttls after the steps "
           "that ask for it");
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
  // PREAUTH is an IMAP greeting: the protocols that take a mailbox are the IMAP ones.
  reject_option(pc.options.allow_preauth, protocols::kMailbox, c.preauth_at, "allow preauth");
  if (pc.options.allow_preauth && !pc.options.has_login() && pc.options.credentials.empty())
    fail(*c.preauth_at, "allow preauth needs a login (username and password) to stand for");
  check_credentials_clause(pc, c, mode);
  check_dialogue_clauses(pc, c, where);
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
  if (!pc.options.mailbox.empty() && !pc.options.has_login() && pc.options.credentials.empty())
    fail(c.mailbox_at ? *c.mailbox_at : where, "select needs a login (username and password)");

  bool default_timeout = chk.timeout_ms == 0;
  if (default_timeout) chk.timeout_ms = default_timeout_ms_;
  chk.deadline_ms = deadline ? *deadline : 3 * chk.timeout_ms;
  if (deadline && chk.deadline_ms < chk.timeout_ms)
    fail(where, "the deadline must not be shorter than the timeout");
  std::string endpoint = pc.endpoint.describe();
  std::string label = pc.protocol_name;
  if (mode == TlsMode::starttls && proto->default_tls == TlsMode::none) label += "+starttls";
  if (mode == TlsMode::implicit && proto->default_tls != TlsMode::implicit) label += "+ssl";
  chk.description = label + " " + endpoint;
  if (pc.options.has_login()) chk.description += " as " + pc.options.username;
  if (!pc.options.authzid.empty()) chk.description += " via " + pc.options.authzid;
  // The id names the entry, not its user: editing the credentials file keeps the test's state.
  if (!pc.options.credentials.empty()) chk.description += " credentials " + pc.options.credentials;
  assign_check_id(svc, chk);
  chk.kind = &checks::get("port");
  chk.spec = std::make_shared<PortCheck>(std::move(pc));
  chk.rules.push_back(std::move(rule));
  svc.checks.push_back(std::move(chk));
  if (default_timeout)
    pending_timeouts_.push_back({index, svc.checks.size() - 1, deadline.has_value()});
  if (c.tls) pending_tls_.push_back({index, svc.checks.size() - 1, *c.tls});
  if (c.credentials_at) apply_credentials_later(index, svc.checks.size() - 1, *c.credentials_at);
}

// send "TEXT": escapes resolved now; \0..\9 (the last expect's match and its captures) are
// recorded as insertion points, so that an escaped backslash before a digit stays literal.
Step Parser::parse_send_step() {
  const Token& t = peek();
  if (t.kind != Token::Kind::string) fail_expected("the text to send in double quotes");
  Location where = t.where;
  std::string raw = t.text;
  next();
  Step s;
  s.kind = Step::Kind::send;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      s.text += raw[i];
      continue;
    }
    char e = i + 1 < raw.size() ? raw[i + 1] : '\0';
    if (e >= '0' && e <= '9') {
      s.captures.emplace_back(s.text.size(), e - '0');
      ++i;
      continue;
    }
    size_t len = std::min(raw.size() - i, static_cast<size_t>(e == 'x' ? 4 : 2));
    std::string bytes, error;
    if (!unescape_send(raw.substr(i, len), bytes, error))
      fail(where, "in the text to send: " + error);
    s.text += bytes;
    i += len - 1;
  }
  if (s.text.empty() && s.captures.empty()) fail(where, "nothing to send (empty string)");
  return s;
}

// expect "REGEX" [within N bytes]
Step Parser::parse_expect_step() {
  const Token& t = peek();
  if (t.kind != Token::Kind::string)
    fail_expected("a regular expression in double quotes after 'expect'");
  Location where = t.where;
  std::string source = unescape_plain(t.text);
  next();
  Step s;
  s.kind = Step::Kind::expect;
  s.regex = compile_regex(source, where);
  if (accept("within")) {
    s.max_bytes = static_cast<size_t>(number("the number of bytes to read", 1, 1024 * 1024));
    if (!accept("bytes") && !accept("byte")) fail_expected("'bytes' after the number", {"bytes"});
  }
  return s;
}

Regex Parser::compile_regex(const std::string& source, const Location& where) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(), 0,
                                 &code, &offset, nullptr);
  if (!re) {
    PCRE2_UCHAR text[256];
    pcre2_get_error_message(code, text, sizeof text);
    fail(where, "bad regular expression \"" + source + "\": " +
                    reinterpret_cast<const char*>(text) + " at offset " + std::to_string(offset));
  }
  (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // only faster when it works
  return Regex{source, std::shared_ptr<pcre2_code>(re, pcre2_code_free)};
}

// An address for MAIL FROM / RCPT TO: one word, without the angle brackets the client adds.
std::string Parser::envelope_address(const std::string& what) {
  Location where = peek().where;
  std::string a = value(what);
  if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
  if (a.find_first_of(" \t\r\n<>") != std::string::npos)
    fail(where, "'" + a + "' is not a mail address (no spaces, CR, LF or angle brackets)");
  return a;
}

// What the dialogue clauses (send/expect, the envelope, helo) need of the protocol and of each
// other.
void Parser::check_dialogue_clauses(const PortCheck& pc, const PortClauses& c,
                                    const Location& where) {
  const auto& o = pc.options;
  const std::string name = pc.protocol_name.empty() ? "tcp" : pc.protocol_name;
  if (!o.steps.empty() && !(pc.protocol->accepts & protocols::kSteps))
    fail(*c.steps_at, "send/expect steps belong to a port test without a protocol; protocol '" +
                          name + "' speaks its own dialogue");
  if ((!o.mail_from.empty() || !o.rcpt_to.empty()) &&
      !(pc.protocol->accepts & protocols::kEnvelope))
    fail(*c.envelope_at, "protocol '" + name + "' does not take 'mail from'/'rcpt to'");
  if (c.helo_at && !(pc.protocol->accepts & protocols::kHelo))
    fail(*c.helo_at, "protocol '" + name + "' does not take 'helo'");
  if (o.expect_reject && o.rcpt_to.empty())
    fail(c.envelope_at.value_or(where), "'expect reject' needs 'rcpt to \"ADDRESS\"'");
  if (c.step_starttls_at && (c.starttls || c.type_ssl))
    fail(*c.step_starttls_at,
         "starttls between send/expect steps upgrades a plain connection; "
         "this test already uses TLS");
  const Step* last_expect = nullptr;
  for (const auto& s : o.steps) {
    if (s.kind == Step::Kind::expect) last_expect = &s;
    for (const auto& [at, group] : s.captures) {
      std::string ref = "\\" + std::to_string(group);
      if (!last_expect)
        fail(*c.steps_at, "send uses " + ref + " but no expect comes before it to capture it");
      uint32_t count = 0;
      pcre2_pattern_info(last_expect->regex.code.get(), PCRE2_INFO_CAPTURECOUNT, &count);
      if (static_cast<uint32_t>(group) > count)
        fail(*c.steps_at, "send uses " + ref + " but the expect \"" + last_expect->regex.source +
                              "\" before it has " + std::to_string(count) + " capture group" +
                              (count == 1 ? "" : "s"));
    }
  }
}

// `credentials "NAME"` stands for username, password and masteruser, which arrive only when the
// whole file has been read; what can be checked now is checked now.
void Parser::check_credentials_clause(const PortCheck& pc, const PortClauses& c, TlsMode mode) {
  if (!c.credentials_at) return;
  const Location& at = *c.credentials_at;
  if (!(pc.protocol->accepts & protocols::kLogin))
    fail(at, "protocol '" + pc.protocol_name + "' does not take 'credentials'");
  if (pc.options.has_login() || !pc.options.password.empty() || !pc.options.authzid.empty())
    fail(at, "a test takes either 'credentials' or username/password/masteruser, not both");
  if (mode == TlsMode::none && !pc.options.allow_plaintext)
    fail(at, "the password of credentials \"" + pc.options.credentials +
                 "\" would cross an unencrypted connection; use starttls, ssl or an implicit-TLS "
                 "protocol, or say 'allow plaintext'");
}

// The id is the description, numbered when the service already has a check of that name (two
// tests of the same port): it keys the check's state across restarts and reloads.
void Parser::assign_check_id(const Service& svc, Check& chk) {
  std::string id = chk.description;
  int n = 1;
  while (std::any_of(svc.checks.begin(), svc.checks.end(),
                     [&](const Check& other) { return other.id == id; }))
    id = chk.description + " #" + std::to_string(++n);
  chk.id = id;
  if (n > 1) chk.description = id;
}

void Parser::apply_credentials_later(size_t service, size_t check, const Location& where) {
  const auto& pc = *cfg_.services[service].checks[check].as<PortCheck>();
  use_credentials(pc.options.credentials, where,
                  [this, service, check, where](const Credential& c) {
                    apply_credential(service, check, where, c);
                  });
}

void Parser::apply_credential(size_t service, size_t check, const Location& where,
                              const Credential& c) {
  Check& chk = cfg_.services[service].checks[check];
  auto& pc = *chk.as<PortCheck>();
  if (!c.masteruser.empty() && !(pc.protocol->accepts & protocols::kMasterUser)) {
    d_.error(where, "credentials \"" + pc.options.credentials +
                        "\" have a masteruser, which protocol '" + pc.protocol_name +
                        "' does not take");
    return;
  }
  pc.options.username = c.username;
  pc.options.password = c.password;
  pc.options.authzid = c.masteruser;
  // Shown to people; the id (set in finish_port_test) keeps naming the entry.
  std::string named = " credentials " + pc.options.credentials;
  std::string who = " as " + c.username + (c.masteruser.empty() ? "" : " via " + c.masteruser);
  if (auto at = chk.description.find(named); at != std::string::npos)
    chk.description.replace(at, named.size(), who);
}

}  // namespace mw::config::parsing
