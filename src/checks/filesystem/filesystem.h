// check filesystem|device NAME with path PATH: space and inode usage from statvfs, and the
// mount's flags (ro/rw, nosuid, ...) as a text a `changed fsflags` rule compares. A path that
// is a block device is looked up in the mount table. A path that vanished fails with nonexist.
#pragma once

#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::filesystem {

Task<void> run(RunContext& ctx);

}  // namespace mw::checks::filesystem
