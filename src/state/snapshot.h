// What the daemon knows, as kept in the state file: the last result and the event state of every
// check, so that a restart keeps counting "for N cycles" where it was, and so that
// "mailwarden status" can show what the running daemon last saw.
#pragma once

#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/event_state.h"
#include "engine/result.h"

namespace mw::state {

struct RuleSnapshot {
  RuleState state = RuleState::init;
  uint64_t history = 0;
  int recorded = 0;
  int64_t cycles_in_state = 0;
  nlohmann::json previous;  // the value a `changed` rule last saw (null: none yet)
};

struct CheckSnapshot {
  std::string id;
  std::string description;
  std::optional<CheckResult> last;
  std::vector<RuleSnapshot> rules;
  int64_t runs = 0;
  nlohmann::json memory;  // a composite check's carry-over (replication progress, ...)
};

struct ServiceSnapshot {
  std::string name;
  std::vector<CheckSnapshot> checks;
};

struct Snapshot {
  int pid = 0;
  time_t started = 0;
  time_t written = 0;
  int64_t cycles = 0;
  std::vector<ServiceSnapshot> services;
  // Services switched off by `unmonitor` (a verb or an action): no checks, no alerts, until
  // `monitor` or `start`; kept across restarts.
  std::vector<std::string> unmonitored;
  nlohmann::json actions = nlohmann::json::object();  // action bookkeeping (rate limits, ...)
};

[[nodiscard]] nlohmann::json result_to_json(const CheckResult& r);
[[nodiscard]] std::string to_text(const Snapshot& s);
// Parses a state file; false with `error` when it is not one.
[[nodiscard]] bool from_text(const std::string& text, Snapshot& out, std::string& error);

[[nodiscard]] bool save(const std::string& path, const Snapshot& s, std::string& error);
// A missing file gives an empty snapshot and true.
[[nodiscard]] bool load(const std::string& path, Snapshot& out, std::string& error);

}  // namespace mw::state
