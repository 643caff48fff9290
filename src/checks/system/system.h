// check system NAME: the machine's load averages (also per core), cpu usage (user, system,
// wait) since the last run, memory and swap usage, and uptime, from /proc.
#pragma once

#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::system {

Task<void> run(RunContext& ctx);

}  // namespace mw::checks::system
