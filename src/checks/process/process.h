// check process NAME with pidfile PATH | matching "REGEX": finds the process (its pidfile, or
// the oldest process whose command line matches), and measures it from /proc: pid, ppid, cpu
// (a share of the whole machine since the last run), memory, threads, uptime, and the totals of
// its descendants. A process that is not there fails the run with class nonexist and a message
// that says why (no pidfile, empty, garbage, a dead pid, no match).
#pragma once

#include <string>

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::process {

Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows.
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

// The pid a pidfile names, or a ProbeError(nonexist) saying why there is none. Exposed for tests.
[[nodiscard]] int pid_from_file(const std::string& path);

}  // namespace mw::checks::process
