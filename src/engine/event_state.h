// monit's event semantics for one rule: a bit history of the last 64 cycles, "N times within M
// cycles" to enter the failed state, the else-rule to leave it, and actions only on a change.
#pragma once

#include <cstdint>

#include "config/model.h"

namespace mw {

enum class RuleState { init, ok, failed };

enum class Transition { none, failed, recovered };

[[nodiscard]] const char* rule_state_name(RuleState s);

class EventState {
 public:
  // Records one cycle's outcome and says whether the state changed.
  Transition record(bool failed, const config::EventRule& fail_rule,
                    const config::EventRule& ok_rule);

  [[nodiscard]] RuleState state() const { return state_; }
  [[nodiscard]] uint64_t history() const { return history_; }
  [[nodiscard]] int recorded() const { return recorded_; }
  // Cycles since the last state change (for reminders and "repeat every").
  [[nodiscard]] int64_t cycles_in_state() const { return cycles_in_state_; }

  void restore(RuleState state, uint64_t history, int recorded, int64_t cycles_in_state);

 private:
  [[nodiscard]] int count_in_window(bool failed, int cycles) const;

  RuleState state_ = RuleState::init;
  uint64_t history_ = 0;  // bit 0 = the latest cycle; 1 = failed
  int recorded_ = 0;
  int64_t cycles_in_state_ = 0;
};

}  // namespace mw
