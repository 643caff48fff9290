// monit's event semantics, as a table: a sequence of cycle outcomes and the transitions expected.
#include <CppUTest/TestHarness.h>

#include <string>
#include <vector>

#include "engine/event_state.h"

namespace {

struct Case {
  const char* name;
  mw::config::EventRule fail_rule;
  mw::config::EventRule ok_rule;
  const char* outcomes;     // F = failed cycle, S = succeeded cycle
  const char* transitions;  // per cycle: . none, F entered failed, R recovered
  const char* final_state;
};

const Case kCases[] = {
    {"one failure fails at once", {1, 1}, {1, 1}, "SFS", ".FR", "ok"},
    {"first success is not an event", {1, 1}, {1, 1}, "SS", "..", "ok"},
    {"first failure is an event", {1, 1}, {1, 1}, "F", "F", "failed"},
    {"for 3 cycles needs three in a row", {3, 3}, {1, 1}, "FFSFFF", ".....F", "failed"},
    {"2 times within 4 cycles", {2, 4}, {1, 1}, "FSSSFSF", "......F", "failed"},
    {"2 times within 4 cycles: too far apart", {2, 4}, {1, 1}, "FSSSFSSSF", ".........", "ok"},
    {"no repeated event while failing", {1, 1}, {1, 1}, "FFFF", "F...", "failed"},
    {"recovery needs the else rule", {1, 1}, {2, 2}, "FSFSS", "F...R", "ok"},
    {"recovery 2 times within 3", {1, 1}, {2, 3}, "FSFS", "F..R", "ok"},
    {"flapping with for 2 cycles", {2, 2}, {2, 2}, "FSFSFS", "......", "ok"},
    {"fail, recover, fail again", {1, 1}, {1, 1}, "FSF", "FRF", "failed"},
    {"64-cycle window",
     {64, 64},
     {1, 1},
     "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
     "...............................................................F",
     "failed"},
};

}  // namespace

TEST_GROUP(EventState){};

TEST(EventState, Table) {
  for (const auto& c : kCases) {
    mw::EventState st;
    std::string got;
    for (const char* p = c.outcomes; *p; ++p) {
      mw::Transition t = st.record(*p == 'F', c.fail_rule, c.ok_rule);
      got += t == mw::Transition::none ? '.' : t == mw::Transition::failed ? 'F' : 'R';
    }
    std::string label = std::string(c.name) + ": ";
    STRCMP_EQUAL((label + c.transitions).c_str(), (label + got).c_str());
    STRCMP_EQUAL((label + c.final_state).c_str(),
                 (label + mw::rule_state_name(st.state())).c_str());
  }
}

TEST(EventState, CyclesInStateCountFromTheChange) {
  mw::EventState st;
  (void)st.record(true, {1, 1}, {1, 1});
  (void)st.record(true, {1, 1}, {1, 1});
  (void)st.record(true, {1, 1}, {1, 1});
  LONGS_EQUAL(2, st.cycles_in_state());
}

TEST(EventState, RestoreKeepsCounting) {
  mw::EventState a;
  (void)a.record(true, {3, 3}, {1, 1});
  (void)a.record(true, {3, 3}, {1, 1});
  mw::EventState b;
  b.restore(a.state(), a.history(), a.recorded(), a.cycles_in_state());
  CHECK(b.record(true, {3, 3}, {1, 1}) == mw::Transition::failed);
}
