// What the CLI prints: validate results, and the daemon's last view from the state file.
#pragma once

#include <string>

#include "engine/engine.h"
#include "state/snapshot.h"

namespace mw::cli {

// "NAME ok" / "NAME failed: <reasons>" per service, or the JSON form.
[[nodiscard]] std::string validate_text(const Engine& engine);
[[nodiscard]] std::string validate_json(const Engine& engine);
[[nodiscard]] bool all_ok(const Engine& engine);

struct DaemonInfo {
  int pid = 0;
  bool running = false;
};

// "ok", "failed" or "init" (not decided yet), from the rules' event states.
[[nodiscard]] std::string check_state(const state::CheckSnapshot& c);
[[nodiscard]] std::string service_state(const state::ServiceSnapshot& s);

[[nodiscard]] std::string status_text(const state::Snapshot& snap, const DaemonInfo& d);
[[nodiscard]] std::string status_json(const state::Snapshot& snap, const DaemonInfo& d);
[[nodiscard]] std::string summary_text(const state::Snapshot& snap, const DaemonInfo& d);

}  // namespace mw::cli
