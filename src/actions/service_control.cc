#include "actions/service_control.h"

#include <sys/wait.h>

#include "util/log.h"

namespace mw::actions {

const char* control_verb_name(ControlVerb v) {
  switch (v) {
    case ControlVerb::start:
      return "start";
    case ControlVerb::stop:
      return "stop";
    case ControlVerb::restart:
      return "restart";
  }
  return "?";
}

void ServiceControl::run_program(const std::string& service, const std::string& which,
                                 const config::ExecSpec& spec, const Environment& env,
                                 std::function<void(bool, const std::string&)> next) {
  std::string label = "'" + service + "' " + which + " program \"" + spec.command + "\"";
  int timeout = spec.timeout_s;
  (void)exec_.run(
      spec, env, label, [next = std::move(next), which, timeout](int status, bool timed_out) {
        std::string what = which + " program";
        if (status == -1) return next(false, what + " could not be started");
        if (timed_out)
          return next(false, what + " did not finish within " + std::to_string(timeout) +
                                 " s; it was stopped");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
          return next(true, what + " exited with status 0");
        if (WIFEXITED(status))
          return next(false, what + " exited with status " + std::to_string(WEXITSTATUS(status)));
        return next(false, what + " was killed by signal " + std::to_string(WTERMSIG(status)));
      });
}

bool ServiceControl::run(const config::Service& service, ControlVerb verb, const Environment& env,
                         Done done, std::string& why) {
  const std::string name = service.name;
  if (auto it = running_.find(name); it != running_.end()) {
    why = std::string("a ") + control_verb_name(it->second) + " of '" + name + "' is running";
    return false;
  }
  // Copies: a reload may replace the model while the programs run.
  Boxed<config::ExecSpec> start = service.start_program;
  Boxed<config::ExecSpec> stop = service.stop_program;
  Boxed<config::ExecSpec> restart = service.restart_program;
  auto finish = [this, name, done = std::move(done)](bool ok, const std::string& message) {
    running_.erase(name);
    if (ok) {
      log::info("'%s': %s", name.c_str(), message.c_str());
    } else {
      log::error("'%s': %s", name.c_str(), message.c_str());
    }
    if (done) done(ok, message);
  };
  switch (verb) {
    case ControlVerb::start:
      if (!start) {
        why = "'" + name + "' has no start program";
        return false;
      }
      running_[name] = verb;
      run_program(name, "start", *start, env, finish);
      return true;
    case ControlVerb::stop:
      if (!stop) {
        why = "'" + name + "' has no stop program";
        return false;
      }
      running_[name] = verb;
      run_program(name, "stop", *stop, env, finish);
      return true;
    case ControlVerb::restart:
      if (restart) {
        running_[name] = verb;
        run_program(name, "restart", *restart, env, finish);
        return true;
      }
      if (!start) {
        why = "'" + name + "' has neither a restart nor a start program";
        return false;
      }
      running_[name] = verb;
      if (!stop) {
        run_program(name, "start", *start, env, finish);
        return true;
      }
      // Stop, then start whatever the stop program said: a server that is already dead makes
      // many stop scripts fail.
      run_program(name, "stop", *stop, env,
                  [this, name, start = *start, env, finish](bool ok, const std::string& message) {
                    if (!ok)
                      log::warning("'%s': %s; starting anyway", name.c_str(), message.c_str());
                    run_program(name, "start", start, env, finish);
                  });
      return true;
  }
  return false;
}

}  // namespace mw::actions
