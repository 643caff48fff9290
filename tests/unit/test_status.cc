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
