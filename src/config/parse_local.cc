// monit's local service types: "check process", "check program", "check file", "check
// directory", "check fifo", "check filesystem" / "check device", "check system"; their tests
// (if does not exist, if cpu > 80%, if failed checksum, if space usage > 90%, ...), the
// programs that start and stop a service, and "if N restarts within M cycles". Each test
// becomes a rule on the service's main check: "does not exist" on the run itself, the others a
// Comparison of a value the check measures (engine/compare.h).
#include <pwd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "checks/registry.h"
#include "config/parser.h"
#include "config/parser_impl.h"
#include "util/strings.h"

namespace mw::config::parsing {
namespace {

constexpr int64_t kLocalTimeoutMs = 5000;
constexpr int64_t kLocalDeadlineMs = 120000;     // hashing a big file may take a while
constexpr int64_t kProgramTimeoutMs = 300000;    // monit's default for check program
constexpr int64_t kServiceProgramTimeoutS = 30;  // start/stop programs, as monit

bool is_local(ServiceKind k) {
  switch (k) {
    case ServiceKind::process:
    case ServiceKind::program:
    case ServiceKind::file:
    case ServiceKind::directory:
    case ServiceKind::fifo:
    case ServiceKind::filesystem:
    case ServiceKind::system:
      return true;
    default:
      return false;
  }
}

const char* statement_of(ServiceKind k) {
  switch (k) {
    case ServiceKind::process:
      return "check process";
    case ServiceKind::program:
      return "check program";
    case ServiceKind::file:
      return "check file";
    case ServiceKind::directory:
      return "check directory";
    case ServiceKind::fifo:
      return "check fifo";
    case ServiceKind::filesystem:
      return "check filesystem";
    case ServiceKind::system:
      return "check system";
    case ServiceKind::host:
      return "check host";
    default:
      return "this check";
  }
}

std::string op_text(CompareOp op) {
  switch (op) {
    case CompareOp::gt:
      return ">";
    case CompareOp::lt:
      return "<";
    case CompareOp::ge:
      return ">=";
    case CompareOp::le:
      return "<=";
    case CompareOp::eq:
      return "=";
    case CompareOp::ne:
      return "!=";
    case CompareOp::changed:
      return "changed";
  }
  return "?";
}

// "80" "%" / "80%" / "1.5" / "200MB" / "200 MB": a number, then its unit.
bool split_number(const std::string& word, double& value, std::string& unit) {
  const char* start = word.c_str();
  char* end = nullptr;
  value = strtod(start, &end);
  if (end == start || !std::isfinite(value)) return false;
  unit = str::lower(std::string(end));
  return true;
}

// Kilobytes in one unit of size; 0 when `unit` is not a size.
double size_unit_kb(const std::string& u) {
  if (u == "b" || u == "byte" || u == "bytes") return 1.0 / 1024.0;
  if (u == "k" || u == "kb" || u == "kib" || u == "kilobyte" || u == "kilobytes") return 1.0;
  if (u == "m" || u == "mb" || u == "mib" || u == "megabyte" || u == "megabytes") return 1024.0;
  if (u == "g" || u == "gb" || u == "gib" || u == "gigabyte" || u == "gigabytes")
    return 1024.0 * 1024.0;
  if (u == "t" || u == "tb" || u == "tib" || u == "terabyte" || u == "terabytes")
    return 1024.0 * 1024.0 * 1024.0;
  return 0;
}

// Seconds in one unit of time; 0 when `unit` is not a time.
double time_unit_s(const std::string& u) {
  if (u == "s" || u == "sec" || u == "secs" || u == "second" || u == "seconds") return 1;
  if (u == "m" || u == "min" || u == "mins" || u == "minute" || u == "minutes") return 60;
  if (u == "h" || u == "hour" || u == "hours") return 3600;
  if (u == "d" || u == "day" || u == "days") return 86400;
  return 0;
}

// 80, 1.5, 0.25: as short as the number allows.
std::string format_value_text(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

// ---- the service statements ---------------------------------------------------------------

size_t Parser::begin_local_service(ServiceKind kind, const std::string& statement,
                                   std::shared_ptr<Spec> spec) {
  size_t index = begin_service(kind, statement);
  Service& svc = cfg_.services[index];
  svc.address = "localhost";  // port tests of a local service go to this host by default
  Check chk;
  chk.where = svc.where;
  chk.timeout_ms = kLocalTimeoutMs;
  chk.deadline_ms = kLocalDeadlineMs;
  chk.spec = std::move(spec);
  // The registry row: the word after "check" ("device" is its own row, run as a filesystem).
  chk.kind = &checks::get(statement.substr(6));
  // The implicit existence rule: a process, file or filesystem that is not there, or a program
  // that cannot run, is never silent. "if does not exist then ..." replaces it.
  Rule exists;
  exists.where = svc.where;
  exists.fail_actions.push_back(Action{ActionKind::alert, {}, {}});
  chk.rules.push_back(std::move(exists));
  svc.checks.push_back(std::move(chk));
  local_services_.push_back(index);
  programs_allowed_ = true;
  return index;
}

void Parser::check_process() {
  Location at = prev().where;
  size_t index =
      begin_local_service(ServiceKind::process, "check process", std::make_shared<ProcessCheck>());
  Check& chk = cfg_.services[index].checks[0];
  auto& pc = *chk.as<ProcessCheck>();
  if (accept("pidfile")) {
    Location where = peek().where;
    pc.pidfile = value("the path of the pid file");
    if (pc.pidfile.empty() || pc.pidfile[0] != '/')
      fail(where, "the pidfile must be an absolute path");
    chk.id = "process";
    chk.description = "process pidfile " + pc.pidfile;
  } else if (accept("matching") || accept("match")) {
    Location where = peek().where;
    std::string source = value("a regular expression for the command line after 'matching'");
    if (source.empty()) fail(where, "an empty pattern would match every process");
    pc.matching = compile_regex(source, where);
    chk.id = "process";
    chk.description = "process matching \"" + source + "\"";
  } else {
    fail_expected("'pidfile PATH' or 'matching \"REGEX\"' (check process NAME with pidfile PATH)",
                  {"pidfile", "matching"});
  }
  (void)at;
  parse_service_body(index, service_statements());
}

void Parser::check_program() {
  size_t index =
      begin_local_service(ServiceKind::program, "check program", std::make_shared<ProgramCheck>());
  Check& chk = cfg_.services[index].checks[0];
  expect_kw("path", "after the service name (check program NAME with path \"COMMAND\")");
  Location where = peek().where;
  std::string command = value("the program and its arguments");
  if (str::trim(command).empty()) fail(where, "check program needs a command");
  chk.as<ProgramCheck>()->command = command;
  chk.id = "program";
  chk.description = "program \"" + command + "\"";
  chk.timeout_ms = kProgramTimeoutMs;
  if (accept("timeout")) chk.timeout_ms = duration_ms("the program's timeout", 1000);
  chk.deadline_ms = chk.timeout_ms + 5000;  // the kill after the timeout takes a moment
  parse_service_body(index, service_statements());
}

void Parser::file_service(FileType type, const char* statement) {
  ServiceKind kind = type == FileType::directory ? ServiceKind::directory
                     : type == FileType::fifo    ? ServiceKind::fifo
                                                 : ServiceKind::file;
  auto fc = std::make_shared<FileCheck>();
  fc->type = type;
  size_t index = begin_local_service(kind, statement, fc);
  Check& chk = cfg_.services[index].checks[0];
  expect_kw("path", std::string("after the service name (") + statement + " NAME with path PATH)");
  Location where = peek().where;
  std::string path = value("a path");
  if (path.empty() || path[0] != '/') fail(where, "the path must be absolute");
  chk.as<FileCheck>()->path = path;
  chk.id = statement + 6;  // "file", "directory", "fifo"
  chk.description = chk.id + " " + path;
  parse_service_body(index, service_statements());
}

void Parser::check_file() {
  file_service(FileType::file, "check file");
}
void Parser::check_directory() {
  file_service(FileType::directory, "check directory");
}
void Parser::check_fifo() {
  file_service(FileType::fifo, "check fifo");
}

void Parser::check_filesystem() {
  bool device = is_kw(prev(), "device");
  size_t index =
      begin_local_service(ServiceKind::filesystem, device ? "check device" : "check filesystem",
                          std::make_shared<FilesystemCheck>());
  Check& chk = cfg_.services[index].checks[0];
  expect_kw("path", "after the service name (check filesystem NAME with path PATH)");
  Location where = peek().where;
  std::string path = value("a mount point or device path");
  if (path.empty() || path[0] != '/') fail(where, "the path must be absolute");
  chk.as<FilesystemCheck>()->path = path;
  chk.id = "filesystem";
  chk.description = "filesystem " + path;
  parse_service_body(index, service_statements());
}

void Parser::check_system() {
  // The name is optional in monit ("check system $HOST"); a name is required here too.
  size_t index =
      begin_local_service(ServiceKind::system, "check system", std::make_shared<SystemCheck>());
  Check& chk = cfg_.services[index].checks[0];
  chk.id = "system";
  chk.description = "system";
  parse_service_body(index, service_statements());
}

// ---- start, stop and restart programs -------------------------------------------------------

ExecSpec Parser::parse_program_spec(const std::string& which) {
  Location where = peek().where;
  ExecSpec e;
  e.command = string_value("the " + which + " program's command");
  if (str::trim(e.command).empty()) fail(where, "the " + which + " program needs a command");
  e.timeout_s = static_cast<int>(kServiceProgramTimeoutS);
  for (;;) {
    if (accept("timeout")) {
      int64_t ms = duration_ms("the " + which + " program's timeout", 1000);
      if (ms > 86400LL * 1000) fail(prev().where, "a program timeout can be at most a day");
      e.timeout_s = static_cast<int>(ms / 1000);
    } else if (!parse_run_as(e)) {
      break;
    }
  }
  if (e.uid && !e.gid)
    e.gid = group_of_uid(*e.uid, where,
                         "the " + which + " program runs as uid " + std::to_string(*e.uid) +
                             ", which no user has: add 'gid G'");
  return e;
}

void Parser::service_program(size_t index) {
  Token kw = next();
  std::string which = str::lower(kw.text);
  expect_kw("program", "after '" + which + "' (" + which + " program = \"COMMAND\")");
  if (peek().kind == Token::Kind::op && peek().text == "=") next();
  ExecSpec spec = parse_program_spec(which);
  Service& svc = cfg_.services[index];
  auto& slot = which == "start"  ? svc.start_program
               : which == "stop" ? svc.stop_program
                                 : svc.restart_program;
  if (slot) fail(kw.where, "the " + which + " program of '" + svc.name + "' is given twice");
  slot = std::move(spec);
}

// ---- if ... --------------------------------------------------------------------------------

CompareOp Parser::parse_operator(const std::string& after) {
  const Token& t = peek();
  if (t.kind == Token::Kind::op) {
    std::string o = t.text;
    next();
    if (o == ">") return CompareOp::gt;
    if (o == "<") return CompareOp::lt;
    if (o == ">=") return CompareOp::ge;
    if (o == "<=") return CompareOp::le;
    if (o == "=" || o == "==") return CompareOp::eq;
    if (o == "!=" || o == "<>") return CompareOp::ne;
    fail(t.where, "unknown operator '" + o + "'");
  }
  if (accept("greater") || accept("gt")) return CompareOp::gt;
  if (accept("less") || accept("lt")) return CompareOp::lt;
  if (accept("equal") || accept("eq")) return CompareOp::eq;
  if (accept("ne") || accept("notequal")) return CompareOp::ne;
  if (at("not") && is_kw(peek(1), "equal")) {
    next();
    next();
    return CompareOp::ne;
  }
  fail_expected("a comparison (> < >= <= = !=) after " + after);
}

Parser::Quantity Parser::parse_quantity(const std::string& what) {
  Quantity q;
  q.where = peek().where;
  const Token& t = peek();
  if (t.kind == Token::Kind::number) {
    q.value = static_cast<double>(t.number);
    next();
  } else if (t.kind == Token::Kind::word && split_number(t.text, q.value, q.unit)) {
    next();
  } else {
    fail_expected(what);
  }
  if (q.value < 0) fail(q.where, what + " cannot be negative");
  if (q.unit.empty() && peek().kind == Token::Kind::word) {
    std::string u = str::lower(peek().text);
    if (u == "%" || size_unit_kb(u) > 0 || time_unit_s(u) > 0) {
      q.unit = u;
      next();
    }
  }
  return q;
}

void Parser::parse_rule_tail(Rule& rule) {
  auto parse_for = [&](EventRule& r) {
    if (peek().kind == Token::Kind::number) {
      parse_cycles(r);
    } else if (accept("for")) {
      parse_cycles(r);  // "for N cycles" and "for N times within M cycles"
    }
  };
  parse_for(rule.fail_rule);
  expect_kw("then", "before the actions");
  parse_actions(rule.fail_actions);
  if (accept("else")) {
    expect_kw("if", "after 'else'");
    if (!accept("succeeded") && !accept("passed") && !accept("recovered"))
      fail_expected("'succeeded' after 'else if'", {"succeeded", "recovered"});
    parse_for(rule.ok_rule);
    expect_kw("then", "after 'else if succeeded'");
    parse_actions(rule.ok_actions);
  }
}

void Parser::add_local_rule(size_t index, Rule rule) {
  cfg_.services[index].checks[0].rules.push_back(std::move(rule));
}

void Parser::skip_to_then_and_warn(const Location& where, const std::string& what) {
  while (peek().kind != Token::Kind::end && !at("then") && !at("check") && !at("set")) next();
  Rule ignored;
  parse_rule_tail(ignored);
  d_.warning(where, "'" + what +
                        "' is accepted for monit compatibility but not measured; this rule "
                        "never fires");
}

bool Parser::parse_local_if(size_t index, const Location& where) {
  const ServiceKind kind = cfg_.services[index].kind;
  const Token& t = peek();
  const std::string w = t.kind == Token::Kind::word ? str::lower(t.text) : "";
  const std::string w1 = peek(1).kind == Token::Kind::word ? str::lower(peek(1).text) : "";

  // if N restarts within M cycles then ...
  if (t.kind == Token::Kind::number && (w1 == "restarts" || w1 == "restart")) {
    RestartLimit limit;
    limit.where = where;
    limit.restarts = static_cast<int>(number("the number of restarts", 1, kMaxCycles));
    next();
    accept("within");
    limit.cycles = static_cast<int>(number("the number of cycles", 1, kMaxCycles));
    if (!accept("cycles")) accept("cycle");
    if (limit.restarts > limit.cycles)
      fail(where, std::to_string(limit.restarts) + " restarts within " +
                      std::to_string(limit.cycles) +
                      " cycles can never happen (at most one restart per cycle)");
    expect_kw("then", "after 'N restarts within M cycles'");
    if (accept("timeout")) {
      // monit's old name: stop monitoring the service.
      limit.actions.push_back(Action{ActionKind::unmonitor, {}, {}});
      if (at("alert") || at("exec")) parse_actions(limit.actions);
    } else {
      parse_actions(limit.actions);
    }
    cfg_.services[index].restart_limits.push_back(std::move(limit));
    return true;
  }

  bool failed_form =
      w == "failed" && (w1 == "checksum" || w1 == "permission" || w1 == "perm" || w1 == "uid" ||
                        w1 == "gid" || w1 == "md5" || w1 == "sha1" || w1 == "sha256");
  static const std::set<std::string> local_words = {
      "does",      "not",      "exist",   "changed",  "cpu",     "totalcpu", "memory",
      "mem",       "totalmem", "swap",    "children", "threads", "uptime",   "loadavg",
      "timestamp", "size",     "content", "space",    "inode",   "inodes",   "status",
      "read",      "write",    "service", "match"};
  if (!failed_form && !local_words.count(w)) return false;
  if (w == "not" && w1 != "exist") return false;

  Location at_kw = t.where;
  auto only_for = [&](std::initializer_list<ServiceKind> kinds, const std::string& test) {
    if (std::find(kinds.begin(), kinds.end(), kind) != kinds.end()) return;
    std::vector<std::string> names;
    for (ServiceKind k : kinds) names.push_back("'" + std::string(statement_of(k)) + "'");
    fail(at_kw, "'" + test + "' is a test of " + str::join(names, " and ") + ", not of '" +
                    statement_of(kind) + "'");
  };
  Rule rule;
  rule.where = where;
  rule.condition = Condition::compare;
  Comparison& c = rule.compare.ensure();

  // does not exist / not exist
  if (w == "does" || (w == "not" && w1 == "exist")) {
    if (!is_local(kind)) only_for({ServiceKind::process, ServiceKind::file}, "does not exist");
    accept("does");
    expect_kw("not", "in 'does not exist'");
    expect_kw("exist", "in 'does not exist'");
    Rule exists;
    exists.where = where;
    exists.condition = Condition::failed;
    parse_rule_tail(exists);
    auto& rules = cfg_.services[index].checks[0].rules;
    if (!explicit_existence_.count(index)) {
      rules[0] = std::move(exists);
      explicit_existence_.insert(index);
    } else {
      rules.push_back(std::move(exists));
    }
    return true;
  }
  if (w == "exist" || w == "read" || w == "write" || w == "service") {
    if (!is_local(kind)) return false;
    skip_to_then_and_warn(at_kw, w == "exist" ? "if exist" : "if " + w + " ...");
    return true;
  }
  if (!is_local(kind))
    fail(at_kw, "'" + t.text +
                    "' is a test of monit's local service types (check process, "
                    "file, filesystem, system, program), not of '" +
                    statement_of(kind) + "'");

  next();
  // ---- changed X
  if (w == "changed") {
    c.op = CompareOp::changed;
    std::string what = str::lower(value("what changed (pid, ppid, checksum, timestamp, ...)"));
    if (what == "md5" || what == "sha1" || what == "sha256") {
      only_for({ServiceKind::file}, "changed checksum");
      cfg_.services[index].checks[0].as<FileCheck>()->hash = what;
      what = str::lower(value("'checksum'"));
    }
    if (what == "pid" || what == "ppid") {
      only_for({ServiceKind::process}, "changed " + what);
      c.metric = what;
      c.cls = what == "pid" ? FailureClass::pid : FailureClass::ppid;
    } else if (what == "checksum") {
      only_for({ServiceKind::file}, "changed checksum");
      auto& fc = *cfg_.services[index].checks[0].as<FileCheck>();
      if (fc.hash.empty()) fc.hash = "sha256";
      c.metric = "checksum";
      c.is_text = true;
      c.cls = FailureClass::checksum;
    } else if (what == "timestamp") {
      only_for({ServiceKind::file, ServiceKind::directory, ServiceKind::fifo}, "changed timestamp");
      c.metric = "timestamp";
      c.cls = FailureClass::timestamp;
    } else if (what == "size") {
      only_for({ServiceKind::file}, "changed size");
      c.metric = "size_bytes";
      c.cls = FailureClass::size;
    } else if (what == "fsflags" || what == "fsflag") {
      only_for({ServiceKind::filesystem}, "changed fsflags");
      c.metric = "fsflags";
      c.is_text = true;
      c.cls = FailureClass::fsflags;
    } else if (what == "status") {
      only_for({ServiceKind::program}, "changed status");
      c.metric = "status";
      c.cls = FailureClass::status;
    } else {
      fail(prev().where, "mailwarden cannot watch '" + what +
                             "' for changes (pid, ppid, checksum, timestamp, size, fsflags, "
                             "status)");
    }
    c.shown = "changed " + what;
    parse_rule_tail(rule);
    add_local_rule(index, std::move(rule));
    return true;
  }

  // ---- failed checksum / permission / uid / gid (file types)
  if (w == "failed") {
    only_for({ServiceKind::file, ServiceKind::directory, ServiceKind::fifo}, "failed " + w1);
    auto& fc = *cfg_.services[index].checks[0].as<FileCheck>();
    std::string what = str::lower(next().text);
    std::string algo;
    if (what == "md5" || what == "sha1" || what == "sha256") {
      algo = what;
      expect_kw("checksum", "after '" + algo + "'");
      what = "checksum";
    }
    if (what == "checksum") {
      if (kind != ServiceKind::file) fail(at_kw, "only a 'check file' has a checksum");
      if (accept("md5") || accept("sha1") || accept("sha256")) algo = str::lower(prev().text);
      c.metric = "checksum";
      c.is_text = true;
      c.cls = FailureClass::checksum;
      if (accept("expect")) {
        Location at_hex = peek().where;
        std::string hex = str::lower(value("the expected checksum (hex)"));
        size_t want = algo == "md5" ? 32 : algo == "sha1" ? 40 : algo == "sha256" ? 64 : 0;
        if (!want) {
          want = hex.size();
          algo = want == 32 ? "md5" : want == 40 ? "sha1" : "sha256";
        }
        if (hex.size() != want || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
          fail(at_hex, "an " + algo + " checksum is " + std::to_string(want) + " hex digits");
        c.op = CompareOp::ne;
        c.text = hex;
        c.shown = "failed checksum expect " + hex;
      } else {
        // monit: without an expected value, the checksum first seen is the reference.
        c.op = CompareOp::changed;
        c.shown = "failed checksum";
      }
      if (algo.empty()) algo = fc.hash.empty() ? "sha256" : fc.hash;
      if (!fc.hash.empty() && fc.hash != algo)
        fail(at_kw, "this file's checksum is already " + fc.hash + "; one algorithm per file");
      fc.hash = algo;
    } else if (what == "permission" || what == "perm") {
      Location at_mode = peek().where;
      std::string mode = value("the expected mode in octal (0644)");
      char* end = nullptr;
      unsigned long m = strtoul(mode.c_str(), &end, 8);
      if (mode.empty() || *end || m > 07777)
        fail(at_mode, "'" + mode + "' is not a file mode in octal (such as 0644 or 2555)");
      char text[8];
      snprintf(text, sizeof text, "%04lo", m);
      c.metric = "mode";
      c.is_text = true;
      c.op = CompareOp::ne;
      c.text = text;
      c.shown = std::string("failed permission ") + text;
      c.cls = FailureClass::permission;
    } else {
      bool uid = what == "uid";
      std::string name = value(uid ? "a user name or uid" : "a group name or gid");
      c.metric = what;
      c.op = CompareOp::ne;
      c.threshold =
          uid ? static_cast<double>(resolve_user(name)) : static_cast<double>(resolve_group(name));
      c.shown = "failed " + what + " " + name;
      c.cls = uid ? FailureClass::uid : FailureClass::gid;
    }
    parse_rule_tail(rule);
    add_local_rule(index, std::move(rule));
    return true;
  }

  // ---- content = "REGEX" (file, program)
  if (w == "content" || w == "match") {
    only_for({ServiceKind::file, ServiceKind::program}, "content");
    if (peek().kind == Token::Kind::op && peek().text == "!=")
      fail(peek().where,
           "'content !=' is not supported; write the pattern of what must not "
           "appear with 'content ='");
    if (peek().kind == Token::Kind::op) next();  // = or ==
    Location at_re = peek().where;
    Regex re = compile_regex(string_value("a regular expression"), at_re);
    Check& main_check = cfg_.services[index].checks[0];
    std::vector<Regex>& list = kind == ServiceKind::program ? main_check.as<ProgramCheck>()->content
                                                            : main_check.as<FileCheck>()->content;
    list.push_back(re);
    c.metric = "content_" + std::to_string(list.size());
    c.op = CompareOp::gt;
    c.threshold = 0;
    c.shown = "content = \"" + re.source + "\"";
    c.cls = FailureClass::content;
    parse_rule_tail(rule);
    add_local_rule(index, std::move(rule));
    return true;
  }

  // ---- comparisons of a measured number
  std::string name = w;
  std::string metric;
  bool percent_ok = false, size_ok = false, time_ok = false, plain_ok = false;
  std::string percent_metric, size_metric;
  c.cls = FailureClass::resource;
  if (w == "cpu" || w == "totalcpu") {
    only_for({ServiceKind::process, ServiceKind::system}, w);
    std::string part;
    if (accept("usage")) {
      name += " usage";
    } else if (kind == ServiceKind::system && (at("user") || at("system") || at("wait"))) {
      part = str::lower(next().text);
      name += " " + part;
    }
    bool total = w == "totalcpu";
    percent_metric =
        part.empty() ? (total ? "total_cpu_percent" : "cpu_percent") : "cpu_" + part + "_percent";
    percent_ok = true;
  } else if (w == "memory" || w == "mem" || w == "totalmem" || w == "swap") {
    only_for(w == "swap"
                 ? std::initializer_list<ServiceKind>{ServiceKind::system}
                 : std::initializer_list<ServiceKind>{ServiceKind::process, ServiceKind::system},
             w);
    if (accept("usage")) name += " usage";
    std::string base = w == "swap" ? "swap" : w == "totalmem" ? "total_memory" : "memory";
    percent_metric = base + "_percent";
    size_metric = base + "_kb";
    percent_ok = size_ok = true;
  } else if (w == "children" || w == "threads") {
    only_for({ServiceKind::process}, w);
    metric = w;
    plain_ok = true;
  } else if (w == "uptime") {
    only_for({ServiceKind::process, ServiceKind::system}, w);
    metric = "uptime_s";
    time_ok = true;
    c.cls = FailureClass::uptime;
  } else if (w == "loadavg") {
    only_for({ServiceKind::system, ServiceKind::process}, w);
    std::string period = "1";
    if (peek().kind == Token::Kind::word) {
      std::string p = str::lower(peek().text);
      p.erase(std::remove(p.begin(), p.end(), '('), p.end());
      p.erase(std::remove(p.begin(), p.end(), ')'), p.end());
      if (p == "1min" || p == "5min" || p == "15min") {
        period = p.substr(0, p.size() - 3);
        name += " (" + p + ")";
        next();
      }
    }
    metric = "loadavg_" + period;
    if (at("per") && is_kw(peek(1), "core")) {
      next();
      next();
      metric += "_per_core";
      name += " per core";
    }
    plain_ok = true;
    if (kind == ServiceKind::process)
      d_.warning(at_kw,
                 "loadavg is measured by 'check system'; in a process check it is the "
                 "machine's load as well");
  } else if (w == "timestamp") {
    only_for({ServiceKind::file, ServiceKind::directory, ServiceKind::fifo}, w);
    metric = "timestamp_age_s";
    time_ok = true;
    c.cls = FailureClass::timestamp;
  } else if (w == "size") {
    only_for({ServiceKind::file}, w);
    size_metric = "size_bytes";
    size_ok = true;
    c.cls = FailureClass::size;
  } else if (w == "space" || w == "inode" || w == "inodes") {
    only_for({ServiceKind::filesystem}, w);
    std::string base = w == "space" ? "space" : "inode";
    bool free = accept("free");
    if (free) name += " free";
    if (!free && accept("usage")) name += " usage";
    percent_metric = base + (free ? "_free_percent" : "_percent");
    if (base == "space") {
      size_metric = free ? "space_free_kb" : "space_used_kb";
      size_ok = true;
    } else {
      metric = free ? "inode_free" : "inode_used";
      plain_ok = true;
    }
    percent_ok = true;
  } else if (w == "status") {
    only_for({ServiceKind::program}, w);
    metric = "status";
    plain_ok = true;
    c.cls = FailureClass::status;
  } else {
    fail(at_kw, "unknown test '" + t.text + "'");
  }
  c.op = parse_operator("'" + name + "'");
  Quantity q = parse_quantity("a limit after '" + name + " " + op_text(c.op) + "'");
  std::string limit_text = q.unit == "%"    ? format_value_text(q.value) + "%"
                           : q.unit.empty() ? format_value_text(q.value)
                                            : format_value_text(q.value) + " " + q.unit;
  if (q.unit == "%") {
    if (!percent_ok) fail(q.where, "'" + name + "' is not measured in percent");
    if (q.value > 100) fail(q.where, "a percentage is at most 100");
    c.metric = percent_metric;
    c.threshold = q.value;
    c.unit = "%";
  } else if (size_unit_kb(q.unit) > 0) {
    if (!size_ok) fail(q.where, "'" + name + "' is not a size");
    c.metric = size_metric;
    bool bytes = size_metric == "size_bytes";
    c.threshold = q.value * size_unit_kb(q.unit) * (bytes ? 1024.0 : 1.0);
    c.unit = bytes ? " B" : " kB";
  } else if (time_unit_s(q.unit) > 0) {
    if (!time_ok) fail(q.where, "'" + name + "' is not a time");
    c.metric = metric;
    c.threshold = q.value * time_unit_s(q.unit);
    c.unit = " s";
  } else {
    // A bare number: a count, a load, an exit status; a time in seconds; a size in bytes.
    if (time_ok) {
      c.metric = metric;
      c.unit = " s";
    } else if (plain_ok) {
      c.metric = metric;
    } else if (size_metric == "size_bytes") {
      c.metric = size_metric;
      c.unit = " B";
    } else {
      fail(q.where, "the limit of '" + name + "' needs a unit (" +
                        std::string(percent_ok ? "%" : "") + (percent_ok && size_ok ? ", " : "") +
                        (size_ok ? "MB, GB, ..." : "") + ")");
    }
    c.threshold = q.value;
  }
  c.shown = name + " " + op_text(c.op) + " " + limit_text;
  parse_rule_tail(rule);
  add_local_rule(index, std::move(rule));
  return true;
}

// ---- after the whole file ------------------------------------------------------------------

void Parser::finish_local_services() {
  for (size_t index : local_services_) {
    Service& svc = cfg_.services[index];
    if (svc.checks.empty()) continue;
    Rule& exists = svc.checks[0].rules[0];
    // monit starts a process that is not running (when it knows how); the written rule decides
    // otherwise.
    if (!explicit_existence_.count(index) && svc.kind == ServiceKind::process && svc.start_program)
      exists.fail_actions.push_back(Action{ActionKind::start, {}, {}});
  }
  // Actions that need a program the service does not have: warned about, as monit accepts them.
  for (const auto& svc : cfg_.services) {
    auto check_actions = [&](const std::vector<Action>& actions, const Location& where) {
      for (const auto& a : actions) {
        bool needs_start = a.kind == ActionKind::start || a.kind == ActionKind::restart;
        if (needs_start && !svc.start_program && !svc.restart_program)
          d_.warning(where, std::string("'") + (a.kind == ActionKind::start ? "start" : "restart") +
                                "' needs a start program, and '" + svc.name +
                                "' has none: the action only logs");
        if (a.kind == ActionKind::stop && !svc.stop_program)
          d_.warning(where, "'stop' needs a stop program, and '" + svc.name +
                                "' has none: the action only logs");
      }
    };
    for (const auto& chk : svc.checks)
      for (const auto& rule : chk.rules) {
        check_actions(rule.fail_actions, rule.where);
        check_actions(rule.ok_actions, rule.where);
      }
    for (const auto& limit : svc.restart_limits) check_actions(limit.actions, limit.where);
  }
}

}  // namespace mw::config::parsing
