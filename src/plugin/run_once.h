// Runs some checks of a model once, now, concurrently, on a private event loop, and returns their
// results: what `mailwarden plugin` and every drop-in plugin do between parsing and printing.
// The checks go through the engine's base (run_check), so a drop-in speaks each protocol with
// the same code as the daemon.
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/model.h"
#include "engine/result.h"

namespace mw::plugin {

// `memory[i]` (if given) is what check i's last run left (composite checks resume from it).
[[nodiscard]] std::vector<CheckResult> run_once(const std::shared_ptr<const config::Config>& config,
                                                const config::Service& service,
                                                const std::vector<const config::Check*>& checks,
                                                const std::vector<nlohmann::json>& memory = {});

// The in-memory control file of a drop-in: one service named `service` holding one check of the
// registry kind `kind` with `spec`, one default rule, `description` as its name and id, a 30 s
// timeout and the deadline `deadline_ms`.
[[nodiscard]] std::shared_ptr<config::Config> one_check_model(
    const std::string& service, config::ServiceKind service_kind, const std::string& kind,
    const std::string& description, std::shared_ptr<config::Spec> spec, int64_t deadline_ms);

// `mailwarden [-c FILE] plugin SERVICE [CHECK] [-w RANGE] [-c RANGE]`; `parse_error` is what
// the control file's parser said (empty when it parsed). Returns the exit code.
[[nodiscard]] int plugin_command(const std::shared_ptr<const config::Config>& config,
                                 const std::string& parse_error,
                                 const std::vector<std::string>& args);

}  // namespace mw::plugin
