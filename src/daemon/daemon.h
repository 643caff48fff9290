// The running daemon: one libevent loop, the engine on a cycle timer, signals (HUP reload,
// TERM/INT stop, USR1 cycle now), the pid file and the state file.
#pragma once

#include <memory>
#include <string>

#include "config/model.h"

namespace mw::daemon {

// Runs until SIGTERM/SIGINT; returns the process exit code. `foreground` is -I.
[[nodiscard]] int run(const std::string& control_file, std::shared_ptr<const config::Config> config,
                      bool foreground);

// The pid of a running daemon from `pidfile`, or 0.
[[nodiscard]] int running_pid(const std::string& pidfile);

// Sets up the process-wide pieces every mode needs (SIGPIPE ignored, file limit raised).
void prepare_process(int connections);

}  // namespace mw::daemon
