// check system NAME: the machine's load averages (also per core), cpu usage (user, system,
// wait) since the last run, memory and swap usage, and uptime, from /proc.
#pragma once

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::system {

Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows.
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

}  // namespace mw::checks::system
