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

// One past result, for the history every face can show (the HTML chart, the API).
struct HistoryPoint {
  time_t at = 0;
  bool ok = false;
  double response_ms = 0;
  FailureClass cls = FailureClass::none;
};

// The newest results kept per check (the state file, the API and the HTML page show them).
constexpr size_t kHistoryLength = 60;

struct CheckSnapshot {
  std::string id;
  std::string description;
  std::string kind;                   // the registry row: port, replication, delivery, ...
  std::string protocol;               // for status and metric labels: imaps, smtp, ...
  std::string target;                 // host:port, a socket, a path
  time_t since = 0;                   // when the check entered its current state (0: not yet known)
  std::vector<HistoryPoint> history;  // oldest first, at most kHistoryLength
  // Failed runs by failure class since the daemon started (a Prometheus counter; not kept in
  // the state file).
  std::map<std::string, int64_t> failures;
  std::optional<CheckResult> last;
  std::vector<RuleSnapshot> rules;
  int64_t runs = 0;
  nlohmann::json memory;  // a composite check's carry-over (replication progress, ...)
};

struct ServiceSnapshot {
  std::string name;
  std::string type;  // host, replication, delivery, ... (the word after "check")
  std::vector<std::string> groups;
  bool monitored = true;  // false: unmonitored by an administrator (no checks, no alerts)
  std::vector<CheckSnapshot> checks;
};

struct Snapshot {
  int pid = 0;
  time_t started = 0;
  time_t written = 0;
  int64_t cycles = 0;
  // The kernel's boot id when the file was written: a different one means the host rebooted
  // (what "onreboot" acts on).
  std::string boot_id;
  std::vector<ServiceSnapshot> services;
  nlohmann::json actions = nlohmann::json::object();  // action bookkeeping (rate limits, ...)
};

[[nodiscard]] nlohmann::json result_to_json(const CheckResult& r);
[[nodiscard]] std::string to_text(const Snapshot& s);
// Parses a state file; false with `error` when it is not one.
[[nodiscard]] bool from_text(const std::string& text, Snapshot& out, std::string& error);

// A state file is JSON of about 1 KB per check; a larger file is not one of ours.
constexpr size_t kMaxStateFileBytes = 128 * 1024 * 1024;

[[nodiscard]] bool save(const std::string& path, const Snapshot& s, std::string& error);
// A missing file gives an empty snapshot and true.
[[nodiscard]] bool load(const std::string& path, Snapshot& out, std::string& error);

}  // namespace mw::state
