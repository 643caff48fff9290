// The check-kind registry and the status model every face formats: kinds, labels, history,
// since-when, maintenance (unmonitor) and their round trip through the state file.
#include <CppUTest/TestHarness.h>

#include <string>

#include "checks/registry.h"
#include "engine/engine.h"
#include "report/status.h"
#include "scenarios.h"
#include "state/snapshot.h"
#include "support.h"
#include "util/clock.h"

namespace {

std::string closed_port_config() {
  uint16_t port = mwtest::free_port();  // nothing listens there
  return "check host closed with address 127.0.0.1\n"
         "  if failed port " +
         std::to_string(port) + " protocol imap with timeout 2 seconds then alert\n";
}

// Runs one cycle of `engine` to its end.
void one_cycle(mwtest::Loop& loop, mw::Engine& engine) {
  engine.on_cycle_done(
      [&](const mw::CycleStats&) { event_base_loopexit(loop.base.get(), nullptr); });
  engine.run_cycle();
  if (engine.busy()) event_base_dispatch(loop.base.get());
}

}  // namespace

TEST_GROUP(CheckRegistry){};

TEST(CheckRegistry, EveryServiceTypeHasAParserAndEveryRunnableKindARunner) {
  int types = 0;
  for (const auto& k : mw::checks::all()) {
    CHECK_FALSE(k.name.empty());
    if (!k.keyword.empty()) {
      CHECK(k.parse != nullptr);
      ++types;
      POINTERS_EQUAL(&k, mw::checks::by_keyword(k.keyword));
    }
    CHECK(k.run != nullptr || k.parse != nullptr);
  }
  CHECK(types >= 3);
  STRCMP_EQUAL("port", std::string(mw::checks::get("port").name).c_str());
  POINTERS_EQUAL(nullptr, mw::checks::by_keyword("nonsense"));
}

TEST(CheckRegistry, ParsedChecksCarryTheirKindAndSpec) {
  auto cfg = mwtest::parse_text(closed_port_config());
  CHECK(cfg != nullptr);
  const auto& chk = cfg->services.at(0).checks.at(0);
  STRCMP_EQUAL("port", std::string(chk.kind->name).c_str());
  CHECK(chk.as<mw::config::PortCheck>() != nullptr);
  POINTERS_EQUAL(nullptr, chk.as<mw::config::DeliveryCheck>());
  STRCMP_EQUAL("host", cfg->services.at(0).type.c_str());
}

TEST_GROUP(StatusModel){};

TEST(StatusModel, LabelsHistoryAndSinceComeFromTheEngine) {
  mwtest::Loop loop;
  mw::Engine engine(loop.io, nullptr);
  engine.load(mwtest::parse_text(closed_port_config()));
  one_cycle(loop, engine);
  one_cycle(loop, engine);
  auto status = mw::report::build(engine.snapshot(), {});
  const auto& svc = status.services.at(0);
  STRCMP_EQUAL("closed", svc.name.c_str());
  STRCMP_EQUAL("host", svc.type.c_str());
  STRCMP_EQUAL("failed", svc.state.c_str());
  const auto& c = svc.checks.at(0);
  STRCMP_EQUAL("port", c.kind.c_str());
  STRCMP_EQUAL("imap", c.protocol.c_str());
  CHECK(c.target.rfind("127.0.0.1:", 0) == 0);
  LONGS_EQUAL(2, c.history.size());
  CHECK_FALSE(c.history[0].ok);
  CHECK(c.history[1].cls == mw::FailureClass::connect);
  CHECK(c.since != 0);
  LONGS_EQUAL(c.history[0].at, c.since);  // failed from the first run on
  auto j = mw::report::status_json(status, true);
  STRCMP_EQUAL("port", j["services"][0]["tests"][0]["kind"].get<std::string>().c_str());
  LONGS_EQUAL(2, j["services"][0]["tests"][0]["history"].size());
  CHECK(mw::report::status_text(status).find("failing since") != std::string::npos);
}

TEST(StatusModel, UnmonitoredServiceIsNotCheckedAndSurvivesTheStateFile) {
  mwtest::Loop loop;
  auto cfg = mwtest::parse_text(closed_port_config());
  mw::Engine engine(loop.io, nullptr);
  engine.load(cfg);
  CHECK_FALSE(engine.set_monitored("no such service", false));
  CHECK(engine.set_monitored("closed", false));
  one_cycle(loop, engine);
  auto snap = engine.snapshot();
  LONGS_EQUAL(0, snap.services.at(0).checks.at(0).runs);
  CHECK_FALSE(snap.services.at(0).monitored);
  STRCMP_EQUAL("unmonitored", mw::report::build(snap, {}).services.at(0).state.c_str());

  mw::state::Snapshot back;
  std::string error;
  CHECK_TRUE(mw::state::from_text(mw::state::to_text(snap), back, error));
  CHECK_FALSE(back.services.at(0).monitored);

  mw::Engine restarted(loop.io, nullptr);
  restarted.load(cfg);
  restarted.restore(back);
  CHECK_FALSE(restarted.monitored("closed"));
  CHECK(restarted.set_monitored("closed", true));
  one_cycle(loop, restarted);
  LONGS_EQUAL(1, restarted.snapshot().services.at(0).checks.at(0).runs);
}

TEST(StatusModel, HistoryIsBoundedAndSurvivesTheStateFile) {
  mw::state::Snapshot snap;
  mw::state::ServiceSnapshot svc;
  svc.name = "s";
  mw::state::CheckSnapshot c;
  c.id = "c";
  for (int i = 0; i < 100; ++i)
    c.history.push_back(
        {static_cast<time_t>(1000 + i), i % 2 == 0, 1.5, mw::FailureClass::timeout});
  svc.checks.push_back(c);
  snap.services.push_back(svc);
  mw::state::Snapshot back;
  std::string error;
  CHECK_TRUE(mw::state::from_text(mw::state::to_text(snap), back, error));
  const auto& h = back.services.at(0).checks.at(0).history;
  LONGS_EQUAL(mw::state::kHistoryLength, h.size());
  CHECK(h[0].cls == mw::FailureClass::timeout);
  // A history of the wrong shape is skipped, not fatal.
  CHECK_TRUE(mw::state::from_text(
      R"({"format":1,"services":[{"name":"s","checks":[{"id":"c","history":[1,"x",[1]]}]}]})", back,
      error));
  LONGS_EQUAL(0, back.services.at(0).checks.at(0).history.size());
}

namespace {

// The state file as one document made whole and dumped: what to_text wrote before it streamed
// the document check by check. The file on disk must not change.
std::string whole_document(const mw::state::Snapshot& s) {
  using nlohmann::json;
  json j;
  j["format"] = 1;
  j["pid"] = s.pid;
  j["started_unix"] = static_cast<int64_t>(s.started);
  j["written_unix"] = static_cast<int64_t>(s.written);
  j["written"] = mw::clock::format_utc(s.written);
  j["cycles"] = s.cycles;
  if (!s.boot_id.empty()) j["boot_id"] = s.boot_id;
  json services = json::array();
  for (const auto& svc : s.services) {
    json checks = json::array();
    for (const auto& c : svc.checks) {
      json rules = json::array();
      for (const auto& r : c.rules) {
        json jr = {{"state", mw::rule_state_name(r.state)},
                   {"history", r.history},
                   {"recorded", r.recorded},
                   {"cycles_in_state", r.cycles_in_state}};
        if (!r.previous.is_null()) jr["previous"] = r.previous;
        rules.push_back(std::move(jr));
      }
      json jc = {{"id", c.id}, {"description", c.description}, {"runs", c.runs}, {"rules", rules}};
      if (!c.kind.empty()) jc["kind"] = c.kind;
      if (!c.protocol.empty()) jc["protocol"] = c.protocol;
      if (!c.target.empty()) jc["target"] = c.target;
      if (c.since) jc["since_unix"] = static_cast<int64_t>(c.since);
      json history = json::array();
      for (const auto& h : c.history)
        history.push_back(json::array({static_cast<int64_t>(h.at), h.ok ? 1 : 0, h.response_ms,
                                       mw::failure_class_name(h.cls)}));
      if (!history.empty()) jc["history"] = std::move(history);
      if (c.last) jc["last"] = mw::state::result_to_json(*c.last);
      if (!c.memory.is_null()) jc["memory"] = c.memory;
      checks.push_back(std::move(jc));
    }
    json js = {{"name", svc.name}, {"checks", checks}};
    if (!svc.type.empty()) js["type"] = svc.type;
    if (!svc.groups.empty()) js["groups"] = svc.groups;
    if (!svc.monitored) js["monitored"] = false;
    services.push_back(std::move(js));
  }
  j["services"] = std::move(services);
  j["actions"] = s.actions;
  return j.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

TEST(StatusModel, TheStateFileIsTheSameTextAsTheWholeDocumentDumped) {
  mw::state::Snapshot snap;
  CHECK_EQUAL(whole_document(snap), mw::state::to_text(snap));
  snap.pid = 4242;
  snap.started = 1700000000;
  snap.written = 1700000600;
  snap.cycles = 12;
  snap.boot_id = "0b7c\"d";
  snap.actions = {{"rules",
                   {{"a\x1f"
                     "b",
                     {{"since", 1}, {"posted", true}}}}},
                  {"rate_limits", nlohmann::json::object()}};
  mw::state::ServiceSnapshot empty;
  empty.name = "no checks";
  empty.monitored = false;
  snap.services.push_back(empty);
  mw::state::ServiceSnapshot svc;
  svc.name = "imap \"main\" \xc3\xa9\xff";  // a quote, UTF-8 and a byte that is not UTF-8
  svc.type = "host";
  svc.groups = {"mail", "eu"};
  mw::state::CheckSnapshot c;
  c.id = "c1";
  c.description = "imaps 127.0.0.1:993\n";
  c.kind = "port";
  c.protocol = "imaps";
  c.target = "127.0.0.1:993";
  c.since = 1700000000;
  c.runs = 3;
  c.history = {{1699999940, true, 10.25, mw::FailureClass::none},
               {1700000000, false, 0.1, mw::FailureClass::auth}};
  c.rules.push_back({mw::RuleState::failed, 5, 3, 2, nlohmann::json{{"v", 1.5}}});
  c.rules.push_back({mw::RuleState::ok, 0, 1, 7, {}});
  c.memory = {{"progress", {1, 2, {{"x", nlohmann::json::array()}}}}, {"empty", {}}};
  mw::CheckResult r;
  r.cls = mw::FailureClass::auth;
  r.message = "login failed: \t<NO>";
  r.server_line = "a NO [AUTHENTICATIONFAILED]";
  r.response_ms = 12.5;
  r.checked_at = 1700000000;
  r.metrics = {{"latency_ms", 3.25}};
  r.details = {{"steps_ms", {{"send", 120.0}}}, {"list", nlohmann::json::array({1, "two"})}};
  mw::CertInfo cert;
  cert.not_after = 1800000000;
  cert.subject = "CN=mx";
  r.certificate = std::make_shared<const mw::CertInfo>(cert);
  c.last = std::make_shared<const mw::CheckResult>(r);
  svc.checks.push_back(c);
  mw::state::CheckSnapshot bare;  // never ran
  bare.id = "c2";
  svc.checks.push_back(bare);
  snap.services.push_back(svc);
  CHECK_EQUAL(whole_document(snap), mw::state::to_text(snap));
  snap.actions = nlohmann::json::object();
  snap.boot_id.clear();
  CHECK_EQUAL(whole_document(snap), mw::state::to_text(snap));
}
