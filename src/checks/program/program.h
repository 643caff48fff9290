// check program NAME with path "CMD [ARGS]" [with timeout N seconds]: runs the command through
// /bin/sh -c in a child process on the loop (output bounded, a timeout that stops its whole
// process group), and measures its exit status ("status") and content matches ("content_N").
// Its output (at most 4 KB) is kept in the state and shown by status. A program that cannot
// run, is killed by a signal, or outlives its timeout fails the run (classes exec, timeout).
#pragma once

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::program {

Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows.
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

}  // namespace mw::checks::program
