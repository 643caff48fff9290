// Turns state changes into actions: alerts and exec commands, with the event described the same
// way for both (service, event, description, date, host, action).
#pragma once

#include <event2/event.h>

#include <string>

#include "actions/exec.h"
#include "config/model.h"
#include "engine/event_state.h"
#include "engine/result.h"

namespace mw::actions {

// One event as actions see it.
struct Event {
  std::string service;
  std::string check;        // the check's description
  std::string name;         // "failed" / "succeeded"
  std::string description;  // what happened, e.g. the failure reason
  time_t when = 0;
  std::string host;  // the host mailwarden runs on
};

class Dispatcher {
 public:
  explicit Dispatcher(event_base* base);

  // A rule changed state: run the actions the rule names for that change.
  void on_transition(const config::Service& service, const config::Check& check,
                     const config::Rule& rule, Transition t, const CheckResult& result);

  [[nodiscard]] ExecRunner& exec() { return exec_; }

 private:
  void run(const config::Action& action, const Event& event);

  ExecRunner exec_;
  std::string hostname_;
};

[[nodiscard]] Environment event_environment(const Event& e, const std::string& action);

}  // namespace mw::actions
