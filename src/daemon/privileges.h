// Who the daemon runs as. Started as root, it either keeps root because the control file asks
// for something only root may do (needs_root() lists what), drops to the user of `set user`
// once the control file is read, or refuses to start. It says which.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "config/model.h"

namespace mw::daemon {

// What in the control file needs root, one line each ("FILE:LINE:COL: exec as uid 1000: ...").
// Today the list has one entry:
//   - exec ... as uid U / gid G, unless U and G are those of `set user` (changing to another
//     user needs root).
// Checks that arrive later declare themselves here:
//   - ping over raw ICMP sockets (CAP_NET_RAW is enough: systemd's AmbientCapabilities);
//   - check process start/stop/restart programs (they run as root unless given `as uid`);
//   - a listening port below 1024 (CAP_NET_BIND_SERVICE is enough).
[[nodiscard]] std::vector<std::string> root_reasons(const config::Config& config);
[[nodiscard]] inline bool needs_root(const config::Config& config) {
  return !root_reasons(config).empty();
}

struct PrivilegePlan {
  enum class Kind { as_is, keep_root, drop, refuse } kind = Kind::as_is;
  std::string explanation;  // logged (keep_root, drop) or printed as the error (refuse)
};

// The decision for a daemon whose effective uid is `euid`. `allow_root` is the environment's
// MAILWARDEN_ALLOW_ROOT=1: an explicit "stay root" for test rigs and containers.
[[nodiscard]] PrivilegePlan plan_privileges(const config::Config& config, uid_t euid,
                                            bool allow_root);

// Becomes `user` for good: supplementary groups, gid, then uid; false with `error` when any step
// fails or root could be regained.
[[nodiscard]] bool drop_to(const config::RunAs& user, std::string& error);

}  // namespace mw::daemon
