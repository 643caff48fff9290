// The HTTP interface's pieces without a daemon: the Prometheus metrics, the HTML pages and the
// Alertmanager payload as formatters over a snapshot (exact text), basic authentication and the
// CSRF token, the `set httpd` / `set alertmanager` statements, and the HTTP client against a
// real evhttp server on loopback.
#include <CppUTest/TestHarness.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "http/client.h"
#include "http/from_config.h"
#include "http/server.h"
#include "report/alertmanager.h"
#include "report/html.h"
#include "report/metrics.h"
#include "support.h"
#include "util/strings.h"

namespace {

using mw::state::CheckSnapshot;
using mw::state::ServiceSnapshot;
using mw::state::Snapshot;

Snapshot sample_snapshot() {
  Snapshot snap;
  snap.cycles = 7;
  ServiceSnapshot imap;
  imap.name = "imap \"main\"";
  imap.groups = {"mail"};
  CheckSnapshot c;
  c.id = "c1";
  c.description = "imaps 127.0.0.1:993";
  c.kind = "port";
  c.protocol = "imaps";
  c.target = "127.0.0.1:993";
  mw::CheckResult r;
  r.ok = false;
  r.cls = mw::FailureClass::auth;
  r.message = "login as bob failed: <NO> & more";
  r.response_ms = 12.5;
  r.checked_at = 1700000000;
  mw::CertInfo cert;
  cert.not_after = 1800000000;
  cert.days_left = 42;
  r.certificate = std::make_shared<const mw::CertInfo>(cert);
  c.last = std::make_shared<const mw::CheckResult>(r);
  c.since = 1700000000 - 600;
  c.failures = {{"auth", 3}, {"timeout", 1}};
  c.rules.push_back({mw::RuleState::failed, 1, 1, 2, {}});
  c.history = {{1699999940, true, 10, mw::FailureClass::none},
               {1700000000, false, 12.5, mw::FailureClass::auth}};
  imap.checks.push_back(c);
  snap.services.push_back(imap);

  ServiceSnapshot delivery;
  delivery.name = "mx-to-inbox";
  CheckSnapshot d;
  d.id = "d1";
  d.description = "delivery";
  d.kind = "delivery";
  d.target = "smtp://mx:25";
  mw::CheckResult dr;
  dr.ok = true;
  dr.response_ms = 800;
  dr.checked_at = 1700000000;
  dr.details = {{"steps_ms", {{"send", 120.0}, {"wait", 650.0}}}};
  d.last = std::make_shared<const mw::CheckResult>(dr);
  d.rules.push_back({mw::RuleState::ok, 0, 1, 5, {}});
  delivery.checks.push_back(d);
  delivery.monitored = false;
  snap.services.push_back(delivery);
  return snap;
}

mw::report::Status sample() {
  return mw::report::build(sample_snapshot(), {});
}

}  // namespace

TEST_GROUP(Metrics){};

TEST(Metrics, ExactSeriesForASnapshot) {
  mw::report::DaemonFacts facts;
  facts.last_cycle_ms = 1250;
  facts.cycles = 7;
  facts.actions[{"imap \"main\"", "alert", "ok"}] = 2;
  std::string m = mw::report::metrics_text(sample(), facts);
  const char* labels =
      "{service=\"imap \\\"main\\\"\",check=\"imaps 127.0.0.1:993\",protocol=\"imaps\","
      "target=\"127.0.0.1:993\"";
  auto expect = [&](const std::string& line) {
    if (m.find("\n" + line + "\n") == std::string::npos)
      FAIL(("missing line: " + line + "\nin:\n" + m).c_str());
  };
  expect("# TYPE mailwarden_check_success gauge");
  expect(std::string("mailwarden_check_success") + labels + "} 0");
  expect(std::string("mailwarden_check_duration_seconds") + labels + "} 0.0125");
  expect(std::string("mailwarden_check_failures_total") + labels + ",class=\"auth\"} 3");
  expect(std::string("mailwarden_check_failures_total") + labels + ",class=\"timeout\"} 1");
  expect(std::string("mailwarden_certificate_expiry_timestamp_seconds") + labels + "} 1800000000");
  expect(std::string("mailwarden_check_failing_since_timestamp_seconds") + labels + "} 1699999400");
  expect("mailwarden_delivery_step_seconds{service=\"mx-to-inbox\",step=\"send\"} 0.12");
  expect(
      "mailwarden_delivery_step_seconds{service=\"mx-to-inbox\",step=\"wait\"} "
      "0.65");
  expect("mailwarden_service_monitored{service=\"mx-to-inbox\"} 0");
  expect(
      "mailwarden_actions_total{service=\"imap \\\"main\\\"\",action=\"alert\",result=\"ok\"} 2");
  expect("mailwarden_cycle_duration_seconds 1.25");
  expect("mailwarden_cycles_total 7");
  expect("# TYPE mailwarden_director_backend_up gauge");
  // No message text, no user name in any label.
  CHECK(m.find("bob") == std::string::npos);
  CHECK(m.find("login") == std::string::npos);
}

TEST(Metrics, SampleValuesAreTheShortestTextThatReadsBackTheSame) {
  auto text = [](double v) {
    std::string out;
    mw::report::append_sample_value(out, v);
    return out;
  };
  STRCMP_EQUAL("0", text(0).c_str());
  STRCMP_EQUAL("1.25", text(1.25).c_str());
  STRCMP_EQUAL("0.0125", text(12.5 / 1000.0).c_str());
  STRCMP_EQUAL("0.1", text(0.1).c_str());
  STRCMP_EQUAL("1e-05", text(0.00001).c_str());
  STRCMP_EQUAL("1800000000", text(1800000000.0).c_str());
  STRCMP_EQUAL("1e+20", text(1e20).c_str());
  STRCMP_EQUAL("-2.5", text(-2.5).c_str());
  STRCMP_EQUAL("NaN", text(std::nan("")).c_str());
  STRCMP_EQUAL("+Inf", text(HUGE_VAL).c_str());
  STRCMP_EQUAL("-Inf", text(-HUGE_VAL).c_str());
  // Round trip: every double reads back as itself.
  for (double v : {0.1 + 0.2, 1.0 / 3.0, 123456.789e-300, 5e-324, 1.7976931348623157e308}) {
    std::string t = text(v);
    CHECK_EQUAL(v, std::strtod(t.c_str(), nullptr));
  }
}

TEST(Metrics, LabelValuesAreEscaped) {
  std::string out = "x";
  mw::report::append_label_value(out, "a\\b\"c\nd");
  STRCMP_EQUAL("xa\\\\b\\\"c\\nd", out.c_str());
  out.clear();
  mw::report::append_label_value(out, "plain");
  STRCMP_EQUAL("plain", out.c_str());
  mw::report::append_label_value(out, "\"");
  STRCMP_EQUAL("plain\\\"", out.c_str());
}

TEST(Metrics, EveryLineIsACommentOrASample) {
  std::string m = mw::report::metrics_text(sample(), {});
  size_t start = 0;
  while (start < m.size()) {
    size_t end = m.find('\n', start);
    std::string line = m.substr(start, end - start);
    bool ok = line.rfind("# HELP mailwarden_", 0) == 0 ||
              line.rfind("# TYPE mailwarden_", 0) == 0 || line.rfind("mailwarden_", 0) == 0;
    if (!ok) FAIL(("unexpected line: " + line).c_str());
    start = end + 1;
  }
}

TEST_GROUP(Html){};

TEST(Html, IndexEscapesAndPutsFailuresFirst) {
  mw::report::PageContext ctx;
  ctx.host = "mx<1>";
  ctx.now = 1700000000;
  std::string page = mw::report::html_index(sample(), ctx);
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("http-equiv=\"refresh\"") != std::string::npos);
  CHECK(page.find("mx&lt;1&gt;") != std::string::npos);
  CHECK(page.find("imap &quot;main&quot;") != std::string::npos);
  CHECK(page.find("&lt;NO&gt; &amp; more") != std::string::npos);
  CHECK(page.find("<NO>") == std::string::npos);
  CHECK(page.find("href=\"/service/imap%20%22main%22\"") != std::string::npos);
  CHECK(page.find("10 min") != std::string::npos);  // failing for
  CHECK(page.find("42 d") != std::string::npos);    // certificate
  // The group holding a failure comes before the one without.
  CHECK(page.find("<h2>mail</h2>") < page.find("<h2>services</h2>"));
  CHECK(page.find("state unmonitored") != std::string::npos);
  CHECK(page.find("http://") == std::string::npos ||
        page.find("http://www.w3.org") != std::string::npos);
}

TEST(Html, ServicePageHasHistoryChartAndForms) {
  mw::report::Status snap = sample();
  mw::report::PageContext ctx;
  ctx.now = 1700000000;
  ctx.can_act = true;
  ctx.csrf_token = "tok\"en";
  std::string page = mw::report::html_service(snap, snap.services[0], ctx);
  CHECK(page.find("<svg") != std::string::npos);
  CHECK(page.find("<polyline") != std::string::npos);
  CHECK(page.find("<circle class=\"fail\"") != std::string::npos);
  CHECK(page.find("name=\"csrf\" value=\"tok&quot;en\"") != std::string::npos);
  CHECK(page.find("action=\"/service/imap%20%22main%22/check\"") != std::string::npos);
  CHECK(page.find("action=\"/service/imap%20%22main%22/unmonitor\"") != std::string::npos);
  ctx.can_act = false;
  page = mw::report::html_service(snap, snap.services[1], ctx);
  CHECK(page.find("<form") == std::string::npos);
  CHECK(page.find("<table class=\"history\">") != std::string::npos);
}

TEST(Html, Durations) {
  STRCMP_EQUAL("59 s", mw::report::human_duration(59).c_str());
  STRCMP_EQUAL("3 min", mw::report::human_duration(200).c_str());
  STRCMP_EQUAL("2 h 5 min", mw::report::human_duration(7500).c_str());
  STRCMP_EQUAL("4 d 1 h", mw::report::human_duration(4 * 86400 + 3600).c_str());
}

TEST_GROUP(HttpAuth){};

TEST(HttpAuth, BasicUsersAndReadOnly) {
  mw::http::HttpdSettings s;
  s.users = {{"admin", "s3cret", false}, {"viewer", "look", true}};
  const mw::http::User* u = nullptr;
  auto header = [](const std::string& up) { return "Basic " + mw::str::base64_encode(up); };
  CHECK(mw::http::authenticate(s, header("admin:s3cret").c_str(), &u) == mw::http::Access::allowed);
  STRCMP_EQUAL("admin", u->name.c_str());
  CHECK_FALSE(u->read_only);
  CHECK(mw::http::authenticate(s, header("viewer:look").c_str(), &u) == mw::http::Access::allowed);
  CHECK(u->read_only);
  CHECK(mw::http::authenticate(s, header("admin:wrong").c_str(), &u) ==
        mw::http::Access::unauthenticated);
  CHECK(mw::http::authenticate(s, header("admin").c_str(), &u) ==
        mw::http::Access::unauthenticated);
  CHECK(mw::http::authenticate(s, nullptr, &u) == mw::http::Access::unauthenticated);
  CHECK(mw::http::authenticate(s, "Bearer xyz", &u) == mw::http::Access::unauthenticated);
  CHECK(mw::http::authenticate(s, "Basic !!!", &u) == mw::http::Access::unauthenticated);
  mw::http::HttpdSettings open;
  CHECK(mw::http::authenticate(open, nullptr, &u) == mw::http::Access::allowed);
  CHECK(u->read_only);
}

TEST(HttpAuth, CsrfTokenIsBoundToTheUserAndTheKey) {
  std::string a = mw::http::csrf_token("key1", "admin");
  STRCMP_EQUAL(a.c_str(), mw::http::csrf_token("key1", "admin").c_str());
  CHECK(a != mw::http::csrf_token("key1", "other"));
  CHECK(a != mw::http::csrf_token("key2", "admin"));
  LONGS_EQUAL(64, a.size());
}

TEST_GROUP(HttpConfig){};

TEST(HttpConfig, HttpdAndAlertmanagerStatements) {
  std::string errors;
  auto cfg = mwtest::parse_text(
      "set httpd port 2812 and use address 127.0.0.1 allow admin:secret allow ro:pw read-only\n"
      "set alertmanager \"http://127.0.0.1:9093/\", \"https://am2.example.net:9093\" "
      "username \"mw\" password \"x\"\n",
      &errors);
  CHECK_TEXT(cfg != nullptr, errors.c_str());
  const auto h = mw::http::from_config(cfg->settings.httpd);
  CHECK(h.enabled);
  LONGS_EQUAL(2812, h.port);
  STRCMP_EQUAL("127.0.0.1", h.address.c_str());
  LONGS_EQUAL(2, h.users.size());
  CHECK(h.users[1].read_only);
  STRCMP_EQUAL("admin", h.cli_user()->name.c_str());
  const auto& am = cfg->settings.alertmanager;
  LONGS_EQUAL(2, am.urls.size());
  STRCMP_EQUAL("http://127.0.0.1:9093", am.urls[0].c_str());
  STRCMP_EQUAL("mw", am.username.c_str());
}

TEST(HttpConfig, QuotedPasswordWithSpaces) {
  std::string errors;
  auto cfg =
      mwtest::parse_text("set httpd port 2812 allow admin:\"a long secret\" read-only\n", &errors);
  CHECK_TEXT(cfg != nullptr, errors.c_str());
  const auto h = mw::http::from_config(cfg->settings.httpd);
  STRCMP_EQUAL("admin", h.users.at(0).name.c_str());
  STRCMP_EQUAL("a long secret", h.users.at(0).password.c_str());
  CHECK(h.users.at(0).read_only);
}

TEST(HttpConfig, PlainHttpOnAnOpenAddressWarns) {
  std::string errors;
  auto cfg =
      mwtest::parse_text("set httpd port 2812 address 0.0.0.0 allow admin:secret\n", &errors);
  CHECK_TEXT(cfg != nullptr, errors.c_str());
  LONGS_EQUAL(1, cfg->warnings.size());
  CHECK(cfg->warnings[0].find("without ssl") != std::string::npos);
  CHECK(cfg->warnings[0].find("secret") == std::string::npos);
}

TEST(HttpConfig, Errors) {
  std::string errors;
  auto h = mwtest::parse_text("set httpd port 2812 allow 10.0.0.0/8\n", &errors);
  CHECK_TEXT(h != nullptr, errors.c_str());
  const auto served = mw::http::from_config(h->settings.httpd);
  CHECK(served.enabled);
  LONGS_EQUAL(1, served.networks.size());
  LONGS_EQUAL(8, served.networks[0].prefix);
  CHECK(mwtest::parse_text("set alertmanager \"ftp://x\"\n", &errors) == nullptr);
  CHECK(errors.find("http:// or https://") != std::string::npos);
  CHECK(mwtest::parse_text("set alertmanager \"http://u:p@x:9093\"\n", &errors) == nullptr);
  CHECK(errors.find("not in the URL") != std::string::npos);
}

TEST_GROUP(Alertmanager){};

TEST(Alertmanager, PayloadLabelsAndTimes) {
  mw::report::AlertFacts a;
  a.service = "imap";
  a.check = "imaps 127.0.0.1:993";
  a.cls = "auth";
  a.host = "mw1";
  a.summary = "'imap' imaps 127.0.0.1:993 failed";
  a.description = "login failed";
  a.starts = 1700000000;
  a.ends = 1700000120;
  a.generator_url = "http://127.0.0.1:2812/service/imap";
  STRCMP_EQUAL(
      "{\"annotations\":{\"description\":\"login failed\",\"summary\":\"'imap' imaps "
      "127.0.0.1:993 failed\"},\"endsAt\":\"2023-11-14T22:15:20Z\",\"generatorURL\":\"http://"
      "127.0.0.1:2812/service/imap\",\"labels\":{\"alertname\":\"MailwardenCheckFailed\","
      "\"check\":\"imaps 127.0.0.1:993\",\"class\":\"auth\",\"host\":\"mw1\",\"service\":"
      "\"imap\"},\"startsAt\":\"2023-11-14T22:13:20Z\"}",
      mw::report::alertmanager_alert(a).dump().c_str());
}

TEST(Alertmanager, UrlParsing) {
  mw::http::Url u;
  std::string error;
  CHECK(mw::http::parse_url("http://127.0.0.1:9093/prefix/", u, error));
  STRCMP_EQUAL("127.0.0.1", u.host.c_str());
  LONGS_EQUAL(9093, u.port);
  STRCMP_EQUAL("/prefix", u.path.c_str());
  CHECK(mw::http::parse_url("https://[::1]", u, error));
  STRCMP_EQUAL("::1", u.host.c_str());
  LONGS_EQUAL(443, u.port);
  CHECK_FALSE(mw::http::parse_url("http://:80", u, error));
  CHECK_FALSE(mw::http::parse_url("http://h:99999", u, error));
}
