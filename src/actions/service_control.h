// The programs that start, stop and restart a service (start/stop/restart program = ...): run
// through the exec runner (never blocking the loop, bounded by their timeouts, output and exit
// status logged). A restart is the restart program, or else stop then start. One operation per
// service at a time: while it runs the engine does not check the service, and a second request
// is refused (logged), so a failing port test and a missing process never start two restarts.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "actions/exec.h"
#include "config/model.h"

namespace mw::actions {

enum class ControlVerb { start, stop, restart };

[[nodiscard]] const char* control_verb_name(ControlVerb v);

class ServiceControl {
 public:
  explicit ServiceControl(ExecRunner& exec) : exec_(exec) {}

  // How an operation ended: ok (every program exited with status 0), and what happened
  // ("start program exited with status 1").
  using Done = std::function<void(bool ok, const std::string& message)>;
  // Starts the operation; false (with `why`) when the service has no program for it or an
  // operation of it is running.
  bool run(const config::Service& service, ControlVerb verb, const Environment& env, Done done,
           std::string& why);
  [[nodiscard]] bool busy(const std::string& service) const { return running_.count(service) > 0; }

 private:
  void run_program(const std::string& service, const std::string& which,
                   const config::ExecSpec& spec, const Environment& env,
                   std::function<void(bool ok, const std::string& message)> next);

  ExecRunner& exec_;
  std::map<std::string, ControlVerb> running_;
};

}  // namespace mw::actions
