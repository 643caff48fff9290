// monit compatibility: cron specifications, the scheduling decision, and the corpus of monit
// control files under tests/unit/config/monit (each with its expected -t output, and a dump of
// what the monit statements became: set httpd, schedules, dependencies, mail servers).
#include <CppUTest/TestHarness.h>

#include <arpa/inet.h>

#include <map>
#include <string>

#include "config/parser.h"
#include "config_cases.h"
#include "engine/schedule.h"
#include "support.h"
#include "util/cron.h"
#include "util/strings.h"

namespace {

std::tm at(int wday, int mday, int month, int hour, int minute) {
  std::tm t{};
  t.tm_wday = wday;
  t.tm_mday = mday;
  t.tm_mon = month - 1;
  t.tm_hour = hour;
  t.tm_min = minute;
  return t;
}

mw::CronSpec cron(const std::string& text) {
  std::string error;
  auto spec = mw::parse_cron(text, error);
  if (!spec) FAIL(("cron '" + text + "': " + error).c_str());
  return *spec;
}

std::string cron_error(const std::string& text) {
  std::string error;
  auto spec = mw::parse_cron(text, error);
  return spec ? "accepted" : error;
}

std::string base(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

const char* tls_mode(mw::config::TlsMode m) {
  switch (m) {
    case mw::config::TlsMode::none:
      return "none";
    case mw::config::TlsMode::implicit:
      return "implicit";
    case mw::config::TlsMode::starttls:
      return "starttls";
  }
  return "?";
}

// What the monit statements became, after the common dump of the model.
std::string describe_monit(const mw::config::Config& c) {
  std::string out = mwtest::describe(c);
  const auto& s = c.settings;
  for (const auto& ms : s.mailservers)
    out += "mailserver " + ms.describe() + " tls " + tls_mode(ms.tls_mode) +
           (ms.username.empty() ? "" : " user " + ms.username) + " timeout " +
           std::to_string(ms.timeout_ms) + " ms verify " + (ms.tls.verify ? "yes" : "no") +
           (ms.tls.min_version == mw::TlsVersion::tls13 ? " min tls13" : "") + "\n";
  const auto& h = s.httpd;
  if (h.enabled) {
    out += "httpd port " + std::to_string(h.port) + " address " + h.address +
           (h.unix_socket.empty() ? "" : " unixsocket " + base(h.unix_socket)) + " ssl " +
           (h.ssl ? "yes" : "no") + " signature " + (h.signature ? "yes" : "no") +
           (h.read_only ? " read-only" : "") + "\n";
    if (!h.unix_socket.empty()) {
      char perm[8];
      snprintf(perm, sizeof perm, "%04o", h.socket_permission);
      out += "  socket permission " + std::string(perm) + "\n";
    }
    if (!h.pemfile.empty()) out += "  pemfile " + base(h.pemfile) + "\n";
    if (h.allow_selfsigned_clients) out += "  selfsigned clients allowed\n";
    for (const auto& a : h.allow) {
      out += "  allow ";
      switch (a.kind) {
        case mw::config::HttpdAllow::Kind::user:
          out += "user " + a.user + " password " + std::string(a.password.size(), '*');
          break;
        case mw::config::HttpdAllow::Kind::network:
          if (a.network.family == 0) {
            out += "host " + a.network.host;
          } else {
            char text[INET6_ADDRSTRLEN];
            inet_ntop(a.network.family, a.network.addr, text, sizeof text);
            out += "network " + std::string(text) + "/" + std::to_string(a.network.prefix);
          }
          break;
        case mw::config::HttpdAllow::Kind::group:
          out += "group " + a.group;
          break;
        case mw::config::HttpdAllow::Kind::htpasswd: {
          const char* hash[] = {"cleartext", "crypt", "md5"};
          out += std::string("htpasswd ") + hash[static_cast<int>(a.htpasswd.hash)] + " " +
                 base(a.htpasswd.path);
          if (!a.htpasswd.users.empty()) out += " users " + mw::str::join(a.htpasswd.users, ",");
          break;
        }
      }
      out += a.read_only ? " read-only\n" : "\n";
    }
  }
  for (const auto& svc : c.services) {
    std::string line;
    using K = mw::config::ServiceSchedule::Kind;
    if (svc.when().kind == K::cycles)
      line += " every " + std::to_string(svc.when().cycles) + " cycles";
    if (svc.when().kind == K::cron) line += " every \"" + svc.when().source + "\"";
    if (svc.when().kind == K::not_cron) line += " not every \"" + svc.when().source + "\"";
    if (!svc.depends.empty()) line += " depends " + mw::str::join(svc.depends, ",");
    if (svc.mode != mw::config::ServiceMode::active)
      line += svc.mode == mw::config::ServiceMode::passive ? " mode passive" : " mode manual";
    if (svc.onreboot != mw::config::OnReboot::start)
      line += svc.onreboot == mw::config::OnReboot::nostart ? " onreboot nostart"
                                                            : " onreboot laststate";
    if (!line.empty()) out += "schedule " + mw::str::quote(svc.name) + line + "\n";
  }
  return out;
}

}  // namespace

TEST_GROUP(Cron){};

TEST(Cron, FieldsRangesStepsListsAndNames) {
  auto office = cron("* 8-19 * * 1-5");
  CHECK(mw::cron_matches(office, at(1, 3, 3, 8, 0)));    // Monday 08:00
  CHECK(mw::cron_matches(office, at(5, 7, 3, 19, 59)));  // Friday 19:59
  CHECK_FALSE(mw::cron_matches(office, at(5, 7, 3, 20, 0)));
  CHECK_FALSE(mw::cron_matches(office, at(0, 9, 3, 12, 0)));  // Sunday
  auto steps = cron("*/15 0 1,15 jan-mar sun");
  CHECK(mw::cron_matches(steps, at(3, 15, 2, 0, 45)));  // the 15th (day list), any weekday
  CHECK(mw::cron_matches(steps, at(0, 9, 3, 0, 30)));   // a Sunday (weekday list)
  CHECK_FALSE(mw::cron_matches(steps, at(3, 16, 2, 0, 45)));
  CHECK_FALSE(mw::cron_matches(steps, at(3, 15, 4, 0, 45)));  // April
  CHECK_FALSE(mw::cron_matches(steps, at(3, 15, 2, 0, 50)));
  auto sunday7 = cron("0 3 * * 7");
  CHECK(mw::cron_matches(sunday7, at(0, 2, 1, 3, 0)));
  auto from5 = cron("5/20 * * * *");
  CHECK(mw::cron_matches(from5, at(1, 1, 1, 1, 45)));
  CHECK_FALSE(mw::cron_matches(from5, at(1, 1, 1, 1, 40)));
}

TEST(Cron, BadSpecificationsSayWhatIsWrong) {
  STRCMP_EQUAL("a cron specification has 5 fields (minute hour day month weekday), got 4",
               cron_error("* * * *").c_str());
  STRCMP_EQUAL("'60' is outside the minute field (0-59)", cron_error("60 * * * *").c_str());
  STRCMP_EQUAL("'0' is outside the day-of-month field (1-31)", cron_error("* * 0 * *").c_str());
  STRCMP_EQUAL("'funday' is not a value of the day-of-week field",
               cron_error("* * * * funday").c_str());
  STRCMP_EQUAL("bad step '0' in the hour field", cron_error("* */0 * * *").c_str());
  STRCMP_EQUAL("'5-2' is outside the minute field (0-59)", cron_error("5-2 * * * *").c_str());
  STRCMP_EQUAL("empty item in the month field", cron_error("* * * 1,,2 *").c_str());
}

TEST_GROUP(Schedule){};

TEST(Schedule, EveryNCyclesDependenciesAndCron) {
  mw::config::Service gateway, imap, webmail, office;
  gateway.name = "gateway";
  imap.name = "imap";
  imap.depends = {"gateway"};
  webmail.name = "webmail";
  webmail.depends = {"imap", "not-run-yet"};
  webmail.schedule.ensure().kind = mw::config::ServiceSchedule::Kind::cycles;
  webmail.schedule->cycles = 2;
  office.name = "office";
  office.schedule.ensure().kind = mw::config::ServiceSchedule::Kind::cron;
  office.schedule->source = "* 8-19 * * 1-5";
  office.schedule->cron = cron(office.schedule->source);
  std::map<std::string, const mw::config::Service*> all = {
      {"gateway", &gateway}, {"imap", &imap}, {"webmail", &webmail}, {"office", &office}};
  std::map<std::string, bool> failing;
  mw::ScheduleContext ctx;
  ctx.now = at(1, 3, 3, 9, 0);
  ctx.service = [&](const std::string& n) -> const mw::config::Service* {
    auto it = all.find(n);
    return it == all.end() ? nullptr : it->second;
  };
  ctx.failing = [&](const std::string& n) { return failing[n]; };
  auto reason = [&](const mw::config::Service& s, int64_t cycle) {
    ctx.cycle = cycle;
    auto r = mw::skip_reason(s, ctx);
    return r ? *r : std::string("runs");
  };
  STRCMP_EQUAL("runs", reason(webmail, 1).c_str());
  STRCMP_EQUAL("checked every 2 cycles", reason(webmail, 2).c_str());
  STRCMP_EQUAL("runs", reason(webmail, 3).c_str());
  failing["gateway"] = true;  // through imap: webmail waits too
  STRCMP_EQUAL("depends on 'gateway', which is failing", reason(imap, 1).c_str());
  STRCMP_EQUAL("depends on 'gateway', which is failing", reason(webmail, 1).c_str());
  STRCMP_EQUAL("runs", reason(gateway, 1).c_str());
  failing["gateway"] = false;
  STRCMP_EQUAL("runs", reason(imap, 1).c_str());
  STRCMP_EQUAL("runs", reason(office, 1).c_str());
  ctx.now = at(6, 8, 3, 9, 0);  // Saturday
  STRCMP_EQUAL("outside its schedule every \"* 8-19 * * 1-5\"", reason(office, 1).c_str());
  office.schedule->kind = mw::config::ServiceSchedule::Kind::not_cron;
  STRCMP_EQUAL("runs", reason(office, 1).c_str());
}

TEST_GROUP(MonitCorpus){};

// At least 30 control files in the styles monit users write; each must be accepted (monit 5.33
// accepts each too: tests/integration/test_monit_compat.py runs monit -t over them).
TEST(MonitCorpus, EveryFileMatchesItsExpectedOutput) {
  size_t cases = 0;
  std::string failures = mwtest::check_config_cases("monit", &describe_monit, cases);
  CHECK_TEXT(cases >= 30, "the monit corpus is missing or has fewer than 30 files");
  if (!failures.empty()) FAIL(failures.c_str());
}

// The idioms one by one, good and bad, with their exact messages.
TEST(MonitCorpus, IdiomCasesMatchTheirExpectedOutput) {
  size_t cases = 0;
  std::string failures = mwtest::check_config_cases("monit-idioms", &describe_monit, cases);
  CHECK_TEXT(cases >= 10, "the monit idiom cases are missing");
  if (!failures.empty()) FAIL(failures.c_str());
}
