// check file|directory|fifo NAME with path PATH: existence and type, size, mode, owner, group,
// modification time, a checksum (read in bounded chunks across turns of the loop, so a big file
// never blocks it; a file replaced or changed while it is read is hashed again next run), and
// for `content` rules the lines added since the last run (as monit reads a log: at most 1 MiB
// per run, from the end of the file on the first run, from the start after a rotation).
#pragma once

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::file {

Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows.
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

}  // namespace mw::checks::file
