// The status model: what mailwarden knows of every service and check, built in one place from
// the engine's snapshot (live, or as the state file kept it). Every face of the daemon -- the
// CLI's text and JSON, the HTML page, /metrics, the plugin output, Alertmanager posts -- is a
// formatter over this model, so a new fact appears everywhere by being added here once.
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checks/registry.h"
#include "engine/result.h"
#include "state/snapshot.h"

namespace mw::report {

struct DaemonInfo {
  int pid = 0;
  bool running = false;
};

struct CheckStatus {
  std::string id;
  std::string description;  // "imaps 127.0.0.1:993 as probe@example.net"
  std::string kind;         // port, replication, delivery, ...
  std::string protocol;     // imaps, smtp, ...
  std::string target;       // host:port, socket, path
  std::string state;        // "ok", "failed", "init" (from the event state of its rules)
  std::shared_ptr<const CheckResult> last;
  int64_t runs = 0;
  time_t since = 0;  // when it entered its state
  std::vector<state::HistoryPoint> history;
  std::map<std::string, int64_t> failures;  // failed runs by class since the daemon started
  checks::DetailRows rows;  // what its kind adds to text and HTML ("out of sync  3 mailboxes")
};

struct ServiceStatus {
  std::string name;
  std::string type;   // host, replication, delivery, ...
  std::string state;  // "ok", "failed", "init", "unmonitored"
  bool monitored = true;
  std::vector<std::string> groups;
  std::vector<CheckStatus> checks;
};

struct Status {
  DaemonInfo daemon;
  time_t written = 0;
  int64_t cycles = 0;
  std::vector<ServiceStatus> services;
};

[[nodiscard]] Status build(const state::Snapshot& snap, const DaemonInfo& daemon);
// The same from a snapshot made for it: its strings, histories and counters are moved, not
// copied (what a live HTTP request does).
[[nodiscard]] Status build(state::Snapshot&& snap, const DaemonInfo& daemon);

// ---- faces (text.cc, json.cc) --------------------------------------------------------------
// `mailwarden status`
[[nodiscard]] std::string status_text(const Status& s);
// `mailwarden summary`
[[nodiscard]] std::string summary_text(const Status& s);
// `mailwarden status --json` and /api/v1/status; with_history adds each check's recent results.
[[nodiscard]] nlohmann::json status_json(const Status& s, bool with_history = false);
[[nodiscard]] nlohmann::json service_json(const ServiceStatus& s, bool with_history);
[[nodiscard]] std::string dump(const nlohmann::json& j);
// `mailwarden validate [--json]`: "NAME ok" / "NAME failed: <reasons>" per service.
[[nodiscard]] std::string validate_text(const Status& s);
[[nodiscard]] std::string validate_json(const Status& s);
[[nodiscard]] bool all_ok(const Status& s);

}  // namespace mw::report
