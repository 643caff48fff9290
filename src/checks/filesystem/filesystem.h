// check filesystem|device NAME with path PATH: space and inode usage from statvfs, and the
// mount's flags (ro/rw, nosuid, ...) as a text a `changed fsflags` rule compares. A path that
// is a block device is looked up in the mount table. A path that vanished fails with nonexist.
#pragma once

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::filesystem {

Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows.
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

}  // namespace mw::checks::filesystem
