#include "engine/event_state.h"

#include <algorithm>
#include <bit>

namespace mw {

const char* rule_state_name(RuleState s) {
  switch (s) {
    case RuleState::init:
      return "init";
    case RuleState::ok:
      return "ok";
    case RuleState::failed:
      return "failed";
  }
  return "?";
}

int EventState::count_in_window(bool failed, int cycles) const {
  int window = std::min(cycles, recorded_);
  uint64_t mask = window >= 64 ? ~uint64_t{0} : ((uint64_t{1} << window) - 1);
  uint64_t bits = failed ? history_ : ~history_;
  return std::popcount(bits & mask);
}

Transition EventState::record(bool failed, const config::EventRule& fail_rule,
                              const config::EventRule& ok_rule) {
  history_ = (history_ << 1) | (failed ? 1u : 0u);
  recorded_ = std::min(recorded_ + 1, 64);
  ++cycles_in_state_;
  if (failed) {
    if (state_ != RuleState::failed && count_in_window(true, fail_rule.cycles) >= fail_rule.times) {
      state_ = RuleState::failed;
      cycles_in_state_ = 0;
      return Transition::failed;
    }
    return Transition::none;
  }
  if (state_ == RuleState::failed) {
    if (count_in_window(false, ok_rule.cycles) >= ok_rule.times) {
      state_ = RuleState::ok;
      cycles_in_state_ = 0;
      return Transition::recovered;
    }
    return Transition::none;
  }
  if (state_ == RuleState::init) {
    state_ = RuleState::ok;  // the first success is not an event
    cycles_in_state_ = 0;
  }
  return Transition::none;
}

void EventState::restore(RuleState state, uint64_t history, int recorded, int64_t cycles_in_state) {
  state_ = state;
  history_ = history;
  recorded_ = std::clamp(recorded, 0, 64);
  cycles_in_state_ = cycles_in_state;
}

}  // namespace mw
