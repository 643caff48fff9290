// The local service types: rules on measured values (one evaluator for every kind), and each
// kind's run against real /proc, files, filesystems and programs, including the bad inputs
// (pidfiles that are missing, empty, garbage or dead; programs that never exit, print 100 MB or
// fork and exit; a file that vanishes; a path that is not there).
#include <CppUTest/TestHarness.h>
#include <event2/event.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "checks/process/process.h"
#include "engine/compare.h"
#include "support.h"

using mw::CheckResult;
using mw::config::CompareOp;
using mw::config::Comparison;

namespace {

Comparison number_rule(const char* metric, CompareOp op, double threshold) {
  Comparison c;
  c.metric = metric;
  c.op = op;
  c.threshold = threshold;
  c.shown = std::string(metric) + " limit";
  return c;
}

CheckResult with_metric(const char* name, double v) {
  CheckResult r;
  r.ok = true;
  r.metrics[name] = v;
  return r;
}

std::shared_ptr<const mw::config::Config> parse_ok(const std::string& text) {
  std::string errors;
  auto config = mwtest::parse_text(text, &errors);
  if (!config) FAIL(("unexpected errors: " + errors).c_str());
  return config;
}

std::string parse_error(const std::string& text) {
  std::string errors;
  auto config = mwtest::parse_text(text, &errors);
  if (config) FAIL("expected a parse error");
  return errors;
}

CheckResult run_first(const std::string& text, nlohmann::json memory = nullptr) {
  mwtest::Loop loop;
  auto config = parse_ok(text);
  return mwtest::run_check(loop, config, 0, std::move(memory));
}

}  // namespace

TEST_GROUP(Compare){};

TEST(Compare, OperatorsOnNumbers) {
  nlohmann::json prev;
  CheckResult r = with_metric("cpu_percent", 80);
  CHECK_FALSE(mw::comparison_failed(number_rule("cpu_percent", CompareOp::gt, 80), r, prev));
  CHECK_TRUE(mw::comparison_failed(number_rule("cpu_percent", CompareOp::ge, 80), r, prev));
  CHECK_TRUE(mw::comparison_failed(number_rule("cpu_percent", CompareOp::lt, 81), r, prev));
  CHECK_TRUE(mw::comparison_failed(number_rule("cpu_percent", CompareOp::le, 80), r, prev));
  CHECK_TRUE(mw::comparison_failed(number_rule("cpu_percent", CompareOp::eq, 80), r, prev));
  CHECK_TRUE(mw::comparison_failed(number_rule("cpu_percent", CompareOp::ne, 0), r, prev));
}

TEST(Compare, AValueNotMeasuredFailsNoRule) {
  nlohmann::json prev;
  CheckResult r;
  r.ok = false;
  CHECK_FALSE(mw::comparison_failed(number_rule("cpu_percent", CompareOp::ge, 0), r, prev));
  CHECK_FALSE(mw::comparison_failed(number_rule("cpu_percent", CompareOp::changed, 0), r, prev));
  CHECK_TRUE(prev.is_null());
}

TEST(Compare, ChangedFiresOnceAndNotOnTheFirstValue) {
  nlohmann::json prev;
  auto rule = number_rule("pid", CompareOp::changed, 0);
  CHECK_FALSE(mw::comparison_failed(rule, with_metric("pid", 100), prev));
  CHECK_FALSE(mw::comparison_failed(rule, with_metric("pid", 100), prev));
  CHECK_TRUE(mw::comparison_failed(rule, with_metric("pid", 200), prev));
  CHECK_FALSE(mw::comparison_failed(rule, with_metric("pid", 200), prev));
  DOUBLES_EQUAL(200, prev.get<double>(), 0);
}

TEST(Compare, TextValues) {
  Comparison c;
  c.metric = "mode";
  c.is_text = true;
  c.op = CompareOp::ne;
  c.text = "0644";
  c.shown = "failed permission 0644";
  CheckResult r;
  r.ok = true;
  r.details = {{"mode", "0600"}};
  nlohmann::json prev;
  CHECK_TRUE(mw::comparison_failed(c, r, prev));
  STRCMP_EQUAL("mode is 0600 (rule: failed permission 0644)", mw::comparison_reason(c, r).c_str());
  r.details["mode"] = "0644";
  CHECK_FALSE(mw::comparison_failed(c, r, prev));
}

TEST(Compare, ReasonsSayTheValueAndTheRule) {
  auto config = parse_ok(
      "check process p with pidfile /run/p.pid\n"
      "  if totalmem > 200 MB then alert\n"
      "  if cpu usage > 80% for 3 cycles then alert\n"
      "  if changed pid then alert\n");
  const auto& rules = config->services[0].checks[0].rules;
  LONGS_EQUAL(4, rules.size());  // the implicit "does not exist" first
  CHECK(rules[0].condition == mw::config::Condition::failed);
  STRCMP_EQUAL("total_memory_kb", rules[1].compare->metric.c_str());
  DOUBLES_EQUAL(204800, rules[1].compare->threshold, 0);
  STRCMP_EQUAL("totalmem > 200 mb", rules[1].compare->shown.c_str());
  STRCMP_EQUAL(
      "totalmem is 250.0 MB (rule: totalmem > 200 mb)",
      mw::comparison_reason(*rules[1].compare, with_metric("total_memory_kb", 256000)).c_str());
  STRCMP_EQUAL("cpu_percent", rules[2].compare->metric.c_str());
  LONGS_EQUAL(3, rules[2].fail_rule.times);
  STRCMP_EQUAL("pid changed to 42",
               mw::comparison_reason(*rules[3].compare, with_metric("pid", 42)).c_str());
}

TEST_GROUP(LocalParse){};

TEST(LocalParse, ProcessBlockWithProgramsPortTestAndRestartLimit) {
  auto config = parse_ok(
      "check process dovecot with pidfile /run/dovecot/master.pid\n"
      "  start program = \"/usr/sbin/dovecot\" with timeout 60 seconds\n"
      "  stop program = \"/usr/bin/doveadm stop\"\n"
      "  if failed port 143 protocol imap for 2 cycles then restart\n"
      "  if 3 restarts within 5 cycles then timeout\n");
  const auto& svc = config->services[0];
  CHECK(svc.kind == mw::config::ServiceKind::process);
  CHECK(svc.start_program.has_value());
  LONGS_EQUAL(60, svc.start_program->timeout_s);
  LONGS_EQUAL(2, svc.checks.size());
  STRCMP_EQUAL("imap localhost:143", svc.checks[1].description.c_str());
  CHECK(svc.checks[1].rules[0].fail_actions[0].kind == mw::config::ActionKind::restart);
  // Not written: "if does not exist then alert", and start, as monit does.
  const auto& implicit = svc.checks[0].rules[0].fail_actions;
  LONGS_EQUAL(2, implicit.size());
  CHECK(implicit[1].kind == mw::config::ActionKind::start);
  LONGS_EQUAL(1, svc.restart_limits.size());
  LONGS_EQUAL(3, svc.restart_limits[0].restarts);
  CHECK(svc.restart_limits[0].actions[0].kind == mw::config::ActionKind::unmonitor);
}

TEST(LocalParse, EveryKindParses) {
  auto config = parse_ok(
      "check file postdrop with path /usr/sbin/postdrop\n"
      "  if failed checksum then unmonitor\n"
      "  if failed permission 2555 then unmonitor\n"
      "  if failed uid root then unmonitor\n"
      "  if timestamp > 15 minutes then alert\n"
      "  if content = \"fatal\" then alert\n"
      "check directory spool with path /var/spool/postfix\n"
      "  if changed timestamp then alert\n"
      "check filesystem spoolfs with path /var/spool\n"
      "  if space usage > 90% then alert\n"
      "  if space free < 500 MB then alert\n"
      "  if inode usage > 80% then alert\n"
      "  if changed fsflags then alert\n"
      "  if read rate > 1 MB/s for 5 cycles then alert\n"
      "check system mx\n"
      "  if loadavg (5min) per core > 2 then alert\n"
      "  if cpu usage > 95% for 5 cycles then alert\n"
      "  if memory usage > 90% then alert\n"
      "  if swap usage > 50% then alert\n"
      "check program mailq with path \"/usr/lib/nagios/plugins/check_mailq -w 100 -c 500\"\n"
      "    with timeout 20 seconds\n"
      "  if status != 0 then alert\n");
  LONGS_EQUAL(5, config->services.size());
  const auto& file = config->services[0].checks[0];
  STRCMP_EQUAL("sha256", file.as<mw::config::FileCheck>()->hash.c_str());
  STRCMP_EQUAL("0", std::to_string(file.rules[3].compare->threshold).substr(0, 1).c_str());
  STRCMP_EQUAL("2555", file.rules[2].compare->text.substr(0).c_str());
  DOUBLES_EQUAL(900, file.rules[4].compare->threshold, 0);
  const auto& fs = config->services[2].checks[0].rules;
  STRCMP_EQUAL("space_free_kb", fs[2].compare->metric.c_str());
  DOUBLES_EQUAL(512000, fs[2].compare->threshold, 0);
  LONGS_EQUAL(5, fs.size());  // the read rate rule is accepted with a warning, not kept
  STRCMP_EQUAL("loadavg_5_per_core",
               config->services[3].checks[0].rules[1].compare->metric.c_str());
  LONGS_EQUAL(20000, config->services[4].checks[0].timeout_ms);
  LONGS_EQUAL(1, config->warnings.size());
}

TEST(LocalParse, ErrorsNameTheTestAndTheKind) {
  STRCMP_CONTAINS(
      "'cpu' is a test of 'check process' and 'check system', not of 'check file'",
      parse_error("check file f with path /etc/hosts\n  if cpu > 5% then alert\n").c_str());
  STRCMP_CONTAINS("'space' is not a time",
                  parse_error("check filesystem f with path /\n  if space > 5 minutes then "
                              "alert\n")
                      .c_str());
  STRCMP_CONTAINS("'9999' is not a file mode in octal",
                  parse_error("check file f with path /etc/hosts\n  if failed permission 9999 "
                              "then alert\n")
                      .c_str());
  STRCMP_CONTAINS("5 restarts within 3 cycles can never happen",
                  parse_error("check process p with pidfile /run/p.pid\n"
                              "  if 5 restarts within 3 cycles then unmonitor\n")
                      .c_str());
  STRCMP_CONTAINS("'pidfile PATH' or 'matching \"REGEX\"'",
                  parse_error("check process p with path /run/p.pid\n").c_str());
}

TEST_GROUP(LocalRun){};

TEST(LocalRun, PidfileProblemsEachSayWhat) {
  std::string dir = mwtest::tmpdir();
  std::string missing = dir + "/no-such.pid";
  auto expect = [](const std::string& path, const std::string& text) {
    try {
      (void)mw::checks::process::pid_from_file(path);
      FAIL("expected a failure");
    } catch (const mw::ProbeError& e) {
      CHECK(e.cls() == mw::FailureClass::nonexist);
      STRCMP_EQUAL(text.c_str(), e.what());
    }
  };
  expect(missing, "pidfile " + missing + " does not exist");
  std::string empty = mwtest::write_file("empty.pid", "");
  expect(empty, "pidfile " + empty + " is empty");
  std::string garbage = mwtest::write_file("garbage.pid", "hello\n");
  expect(garbage, "pidfile " + garbage + " does not hold a pid (\"hello\")");
  // A pid that no process has: the highest pid the kernel allows is never in use here.
  std::string dead = mwtest::write_file("dead.pid", "4194303\n");
  CheckResult r = run_first("check process p with pidfile " + dead + "\n");
  CHECK_FALSE(r.ok);
  STRCMP_EQUAL(("nonexist: process 4194303 of pidfile " + dead + " is not running").c_str(),
               r.reason().c_str());
}

TEST(LocalRun, ProcessOfThisTestIsMeasured) {
  std::string pidfile = mwtest::write_file("self.pid", std::to_string(getpid()) + "\n");
  CheckResult first = run_first("check process self with pidfile " + pidfile + "\n");
  CHECK_TRUE(first.ok);
  DOUBLES_EQUAL(getpid(), first.metrics["pid"], 0);
  CHECK(first.metrics["memory_kb"] > 0);
  CHECK(first.metrics["threads"] >= 1);
  CHECK_FALSE(first.metrics.count("cpu_percent"));  // nothing to compare with yet
  usleep(100000);
  CheckResult second = run_first("check process self with pidfile " + pidfile + "\n", first.memory);
  CHECK(second.metrics.count("cpu_percent"));
}

TEST(LocalRun, MatchingFindsNoProcess) {
  CheckResult r = run_first("check process p matching \"^no-such-program-[0-9]{9}$\"\n");
  STRCMP_EQUAL("nonexist: no process matches \"^no-such-program-[0-9]{9}$\"", r.reason().c_str());
}

TEST(LocalRun, ProgramStatusAndOutput) {
  CheckResult r = run_first("check program p with path \"echo one; echo two; exit 3\"\n");
  CHECK_TRUE(r.ok);
  DOUBLES_EQUAL(3, r.metrics["status"], 0);
  STRCMP_EQUAL("one\ntwo", r.details["output"].get<std::string>().c_str());
}

TEST(LocalRun, ProgramThatNeverExitsIsStopped) {
  CheckResult r =
      run_first("check program p with path \"echo started; sleep 60\" with timeout 1 second\n");
  CHECK_FALSE(r.ok);
  CHECK(r.cls == mw::FailureClass::timeout);
  STRCMP_EQUAL("program did not exit within 1 s; stopped (TERM, then KILL to its process group)",
               r.message.c_str());
  STRCMP_EQUAL("started", r.server_line.c_str());
}

TEST(LocalRun, ProgramPrintingHundredMegabytesStaysBounded) {
  CheckResult r = run_first(
      "check program p with path \"head -c 104857600 /dev/zero | tr '\\\\0' x\" "
      "with timeout 60 seconds\n");
  CHECK_TRUE(r.ok);
  DOUBLES_EQUAL(104857600, r.details["output_bytes"].get<double>(), 0);
  CHECK_TRUE(r.details["output_truncated"].get<bool>());
  LONGS_EQUAL(4096, r.details["output"].get<std::string>().size());
}

TEST(LocalRun, ProgramThatForksAndExitsIsDone) {
  CheckResult r = run_first("check program p with path \"(sleep 30 &) ; echo parent\"\n");
  CHECK_TRUE(r.ok);
  DOUBLES_EQUAL(0, r.metrics["status"], 0);
  STRCMP_EQUAL("parent", r.details["output"].get<std::string>().c_str());
}

TEST(LocalRun, ProgramNotFound) {
  CheckResult r = run_first("check program p with path \"/no/such/plugin -w 1\"\n");
  CHECK(r.cls == mw::FailureClass::exec);
  STRCMP_EQUAL("program could not be run (not found, exit status 127)", r.message.c_str());
}

TEST(LocalRun, Sha1ChecksumIsSha1) {
  // sha1 of "abc\n"
  std::string path = mwtest::write_file("sha1.txt", "abc\n", 0644);
  CheckResult r = run_first("check file f with path " + path +
                            "\n  if failed sha1 checksum expect "
                            "03cfd743661f07975fa2f1220c5194cbaff48451 then alert\n");
  CHECK_TRUE(r.ok);
  STRCMP_EQUAL("03cfd743661f07975fa2f1220c5194cbaff48451",
               r.details["checksum"].get<std::string>().c_str());
}

TEST(LocalRun, FileChecksumModeAndVanishing) {
  std::string path = mwtest::write_file("watched.cf", "myhostname = mx.example.net\n", 0644);
  std::string rc = "check file f with path " + path +
                   "\n  if failed checksum expect "
                   "0000000000000000000000000000000000000000000000000000000000000000 then alert\n";
  CheckResult r = run_first(rc);
  CHECK_TRUE(r.ok);
  STRCMP_EQUAL("0644", r.details["mode"].get<std::string>().c_str());
  LONGS_EQUAL(64, r.details["checksum"].get<std::string>().size());
  DOUBLES_EQUAL(28, r.metrics["size_bytes"], 0);
  unlink(path.c_str());
  CheckResult gone = run_first(rc);
  STRCMP_EQUAL(("nonexist: " + path + " does not exist").c_str(), gone.reason().c_str());
}

TEST(LocalRun, FileContentReadsOnlyNewLines) {
  std::string path = mwtest::write_file("mail.log", "old: fatal error before\n", 0644);
  std::string rc = "check file log with path " + path + "\n  if content = \"fatal\" then alert\n";
  CheckResult first = run_first(rc);
  DOUBLES_EQUAL(0, first.metrics["content_1"], 0);  // the first run starts at the end
  {
    std::ofstream out(path, std::ios::app);
    out << "postfix/smtpd: warning: x\npostfix/master: fatal: no space\npartial";
  }
  CheckResult second = run_first(rc, first.memory);
  DOUBLES_EQUAL(1, second.metrics["content_1"], 0);
  STRCMP_EQUAL("postfix/master: fatal: no space",
               second.details["content_1"].get<std::string>().c_str());
}

TEST(LocalRun, FilesystemVanishedPath) {
  CheckResult r = run_first("check filesystem f with path /no/such/mount\n");
  STRCMP_EQUAL(
      "nonexist: filesystem path /no/such/mount does not exist (No such file or directory)",
      r.reason().c_str());
  CheckResult root = run_first("check filesystem root with path /\n");
  CHECK_TRUE(root.ok);
  CHECK(root.metrics.count("space_percent"));
}

TEST(LocalRun, SystemMeasures) {
  CheckResult first = run_first("check system s\n");
  CHECK_TRUE(first.ok);
  CHECK(first.metrics.count("loadavg_1"));
  CHECK(first.metrics.count("memory_percent"));
  usleep(50000);
  CheckResult second = run_first("check system s\n", first.memory);
  CHECK(second.metrics.count("cpu_percent"));
}

namespace {
void replace_file(evutil_socket_t, short, void* arg) {
  const std::string& path = *static_cast<std::string*>(arg);
  std::string fresh = path + ".new";
  std::ofstream(fresh) << "replaced\n";
  rename(fresh.c_str(), path.c_str());
}
}  // namespace

TEST(LocalRun, FileReplacedWhileHashedIsHashedAgainNextRun) {
  std::string path = mwtest::write_file("big.db", std::string(4 * 1024 * 1024, 'x'), 0644);
  mwtest::Loop loop;
  auto config = parse_ok("check file f with path " + path + "\n  if changed checksum then alert\n");
  // The first megabyte is read before the loop runs this: the file is replaced mid-hash.
  timeval now{0, 0};
  event_base_once(loop.base.get(), -1, EV_TIMEOUT, replace_file, &path, &now);
  CheckResult r = mwtest::run_check(loop, config);
  CHECK_TRUE(r.ok);
  CHECK_FALSE(r.details.contains("checksum"));
  STRCMP_EQUAL((path + " was replaced or changed while its checksum was computed; it is "
                       "computed again next run")
                   .c_str(),
               r.details["checksum_note"].get<std::string>().c_str());
  CheckResult again = mwtest::run_check(loop, config);
  LONGS_EQUAL(64, again.details["checksum"].get<std::string>().size());
}
