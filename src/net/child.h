// A child process run from a coroutine without blocking the loop: /bin/sh -c COMMAND in its own
// process group, stdout and stderr read through one pipe and bounded (the first bytes kept, the
// rest read and counted), a timeout that sends TERM to the group and KILL after a grace period,
// and the scope's deadline or cancellation that kills the group at once. Used by `check program`
// and by the start, stop and restart programs of a service.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/scope.h"
#include "net/task.h"

namespace mw {

struct ChildSpec {
  std::string command;  // run by /bin/sh -c
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  int64_t timeout_ms = 30000;
  size_t max_output = 64 * 1024;                         // bytes kept of its output
  std::vector<std::pair<std::string, std::string>> env;  // added to mailwarden's environment
};

struct ChildOutcome {
  pid_t pid = -1;
  bool exited = false;  // exited normally (exit_code is valid)
  int exit_code = -1;
  int signal = 0;           // killed by this signal
  bool timed_out = false;   // mailwarden stopped it after its timeout
  std::string output;       // at most max_output bytes
  size_t output_bytes = 0;  // all it wrote
  [[nodiscard]] bool truncated() const { return output_bytes > output.size(); }
  // "exited with status 3", "killed by signal 9", "did not exit within 5 s; killed"
  [[nodiscard]] std::string describe() const;
};

// Runs the command to its end. Throws ProbeError(exec) when it cannot be started; a timeout is
// not an exception (see ChildOutcome::timed_out). When the scope's deadline ends the wait first,
// the process group is killed and the scope's error is thrown.
Task<ChildOutcome> run_child(Scope& scope, ChildSpec spec);

namespace children {
// A child reaped by another waitpid(-1) loop (the exec runner's) is handed over here, so that
// its status is not lost to run_child.
void reaped_elsewhere(pid_t pid, int status);
}  // namespace children

}  // namespace mw
