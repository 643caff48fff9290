// Nagios plugin output (ranges, perfdata, the state of a check from its rules) and what the
// drop-in plugins read (INI files with interpolation, getopt-style options).
#include <CppUTest/TestHarness.h>

#include <unistd.h>

#include <clocale>
#include <cstdio>
#include <fstream>
#include <string>

#include "checks/registry.h"
#include "plugin/ini.h"
#include "plugin/options.h"
#include "report/nagios.h"

using mw::report::nagios::Perf;
using mw::report::nagios::Range;
using mw::report::nagios::State;
using mw::report::nagios::Thresholds;

namespace {

Range range(const char* text) {
  std::string error;
  auto r = Range::parse(text, error);
  if (!r) FAIL(error.c_str());
  return *r;
}

mw::config::Check port_check(bool warning, std::vector<mw::FailureClass> only = {}) {
  mw::config::Check c;
  c.id = c.description = "imaps 127.0.0.1:993";
  c.deadline_ms = 15000;
  c.kind = &mw::checks::get("port");
  c.spec = std::make_shared<mw::config::PortCheck>();
  mw::config::Rule r;
  r.severity.warning = warning;
  r.severity.only = std::move(only);
  c.rules.push_back(r);
  return c;
}

mw::CheckResult failed(mw::FailureClass cls) {
  mw::CheckResult r;
  r.ok = false;
  r.cls = cls;
  r.message = "it broke";
  r.response_ms = 12.5;
  return r;
}

}  // namespace

TEST_GROUP(NagiosRanges){};

// The guidelines' table: which values alert for each form.
TEST(NagiosRanges, EveryForm) {
  CHECK(!range("10").alerts(0));
  CHECK(!range("10").alerts(10));
  CHECK(range("10").alerts(10.5));
  CHECK(range("10").alerts(-1));
  CHECK(range("10:").alerts(9.9));
  CHECK(!range("10:").alerts(1e9));
  CHECK(range("~:10").alerts(11));
  CHECK(!range("~:10").alerts(-1e9));
  CHECK(range("10:20").alerts(9));
  CHECK(!range("10:20").alerts(15));
  CHECK(range("10:20").alerts(21));
  CHECK(range("@10:20").alerts(10));
  CHECK(range("@10:20").alerts(20));
  CHECK(!range("@10:20").alerts(21));
  CHECK(!range("0.5").alerts(0.25));
  CHECK(range("0.5").alerts(0.75));
}

TEST(NagiosRanges, RefusesWhatIsNotARange) {
  std::string error;
  CHECK(!Range::parse("", error));
  CHECK(!Range::parse("abc", error));
  CHECK(!Range::parse("20:10", error));
  STRCMP_EQUAL("range '20:10': the start is greater than the end", error.c_str());
  CHECK(!Range::parse("1,5", error));
  STRCMP_EQUAL("'1,5' is not a range (10, 10:, ~:10, 10:20, @10:20)", error.c_str());
}

TEST_GROUP(NagiosPerfdata){};

TEST(NagiosPerfdata, LabelsQuotedAndDotDecimalsWhateverTheLocale) {
  // A locale with a decimal comma, if the machine has one; to_chars ignores it either way.
  const char* had = setlocale(LC_NUMERIC, "de_DE.UTF-8");
  Perf p{"imaps 127.0.0.1:993 time", 0.0123456, "s", 6, "1", "5", 0.0, 15.0};
  STRCMP_EQUAL("'imaps 127.0.0.1:993 time'=0.012346s;1;5;0.000000;15.000000",
               mw::report::nagios::format(p).c_str());
  if (had) setlocale(LC_NUMERIC, "C");
  Perf q{"it's", 3, "", 0, "", "", 0.0, std::nullopt};
  STRCMP_EQUAL("'it''s'=3;;;0", mw::report::nagios::format(q).c_str());
  Perf r{"a=b", 1, "c", 0, "", "", std::nullopt, std::nullopt};
  STRCMP_EQUAL("a_b=1c", mw::report::nagios::format(r).c_str());
}

TEST_GROUP(NagiosStates){};

TEST(NagiosStates, FailureIsCriticalUnlessTheRuleSaysWarning) {
  Thresholds none;
  auto critical = port_check(false);
  auto warning = port_check(true);
  auto cert_only = port_check(true, {mw::FailureClass::certificate});
  CHECK(State::critical ==
        mw::report::nagios::check_state(critical, failed(mw::FailureClass::timeout), none));
  CHECK(State::critical ==
        mw::report::nagios::check_state(critical, failed(mw::FailureClass::connect), none));
  CHECK(State::warning ==
        mw::report::nagios::check_state(warning, failed(mw::FailureClass::connect), none));
  CHECK(State::warning ==
        mw::report::nagios::check_state(cert_only, failed(mw::FailureClass::certificate), none));
  CHECK(State::critical ==
        mw::report::nagios::check_state(cert_only, failed(mw::FailureClass::connect), none));
  CHECK(State::unknown ==
        mw::report::nagios::check_state(critical, failed(mw::FailureClass::internal), none));
}

TEST(NagiosStates, ResponseTimeRangesInSeconds) {
  Thresholds t;
  std::string error;
  t.warning = Range::parse("0.01", error);
  t.critical = Range::parse("0.02", error);
  auto c = port_check(false);
  mw::CheckResult r;
  r.ok = true;
  r.response_ms = 5;
  CHECK(State::ok == mw::report::nagios::check_state(c, r, t));
  r.response_ms = 15;
  CHECK(State::warning == mw::report::nagios::check_state(c, r, t));
  r.response_ms = 25;
  CHECK(State::critical == mw::report::nagios::check_state(c, r, t));
}

TEST(NagiosStates, ServiceLineAndOneLinePerCheck) {
  mw::config::Service svc;
  svc.name = "imap";
  auto c = port_check(false);
  mw::CheckResult r;
  r.ok = true;
  r.response_ms = 12.5;
  auto rep = mw::report::nagios::service_report(svc, {{&c, r}}, Thresholds{});
  CHECK(State::ok == rep.state);
  STRCMP_EQUAL(
      "imap OK - imaps 127.0.0.1:993 ok | 'imaps 127.0.0.1:993 time'=0.012500s;;;0.000000;"
      "15.000000\n"
      "OK imaps 127.0.0.1:993: ok (12.5 ms)\n",
      rep.text.c_str());
  auto bad = failed(mw::FailureClass::timeout);
  bad.message = "no greeting | within 5 s";
  rep = mw::report::nagios::service_report(svc, {{&c, bad}}, Thresholds{});
  CHECK(State::critical == rep.state);
  STRCMP_EQUAL(
      "imap CRITICAL - imaps 127.0.0.1:993: timeout: no greeting / within 5 s | 'imaps "
      "127.0.0.1:993 time'=0.012500s;;;0.000000;15.000000\n"
      "CRITICAL imaps 127.0.0.1:993: timeout: no greeting / within 5 s (12.5 ms)\n",
      rep.text.c_str());
}

// ---- the drop-ins' INI files and options ----------------------------------------------------

namespace {

std::string write_temp(const std::string& text) {
  char path[] = "/tmp/mw-unit-ini-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_GROUP(PluginIni){};

// check_delivery's scenarios: ExtendedInterpolation across sections, continuation lines.
TEST(PluginIni, ExtendedInterpolationAndContinuationLines) {
  std::string path = write_temp(
      "[creds]\nuser1 = u%40example.net:pw\n; a comment\n\n"
      "[senders]\nlocal = smtp://${creds:user1}@127.0.0.1:25\n\n"
      "[scenarios]\nloop.send = ${senders:local}\nloop.recv = imap://${creds:user1}@h/${box}\n"
      "box = INBOX\nusers = a@x\n  b@x\n");
  mw::plugin::Ini ini;
  std::string error;
  CHECK(ini.load(path, error));
  STRCMP_EQUAL("smtp://u%40example.net:pw@127.0.0.1:25",
               ini.get("scenarios", "loop.send", error).value_or("?").c_str());
  STRCMP_EQUAL("imap://u%40example.net:pw@h/INBOX",
               ini.get("scenarios", "LOOP.RECV", error).value_or("?").c_str());
  STRCMP_EQUAL("a@x\nb@x", ini.get("scenarios", "users", error).value_or("?").c_str());
  CHECK(!ini.get("scenarios", "nosuch", error));
  remove(path.c_str());
}

TEST(PluginIni, BrokenReferencesAndLoopsAreErrorsNotCrashes) {
  std::string path = write_temp("[a]\nx = ${y}\ny = ${x}\nz = ${nope:k}\nw = ${open\n");
  mw::plugin::Ini ini;
  std::string error;
  CHECK(ini.load(path, error));
  CHECK(!ini.get("a", "x", error));
  CHECK(error.find("nest more than 10 deep") != std::string::npos);
  CHECK(!ini.get("a", "z", error));
  CHECK(error.find("${nope:k} names no key") != std::string::npos);
  CHECK(!ini.get("a", "w", error));
  CHECK(error.find("unterminated") != std::string::npos);
  remove(path.c_str());
  path = write_temp("key = before any section\n");
  CHECK(!ini.load(path, error));
  CHECK(error.find(":1: a key before any [section]") != std::string::npos);
  remove(path.c_str());
}

TEST_GROUP(PluginOptions){};

TEST(PluginOptions, GetoptForms) {
  std::vector<mw::plugin::OptionSpec> specs = {
      {'H', "hostname", true, 1}, {'S', "ssl", false, 2}, {0, "login", true, 3}};
  std::vector<mw::plugin::GivenOption> out;
  std::string error;
  CHECK(mw::plugin::parse_options(
      {"-H", "a", "-Hb", "--hostname=c", "--hostname", "d", "-S", "--login", "u"}, specs, out,
      error));
  LONGS_EQUAL(6, out.size());
  STRCMP_EQUAL("b", out[1].value.c_str());
  STRCMP_EQUAL("c", out[2].value.c_str());
  STRCMP_EQUAL("u", out[5].value.c_str());
  out.clear();
  CHECK(!mw::plugin::parse_options({"-X"}, specs, out, error));
  STRCMP_EQUAL("unknown option -X", error.c_str());
  CHECK(!mw::plugin::parse_options({"-H"}, specs, out, error));
  STRCMP_EQUAL("option -H needs a value", error.c_str());
  CHECK(!mw::plugin::parse_options({"--ssl=1"}, specs, out, error));
  STRCMP_EQUAL("option --ssl takes no value", error.c_str());
}
