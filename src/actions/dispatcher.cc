#include "actions/dispatcher.h"

#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"

namespace mw::actions {

Dispatcher::Dispatcher(event_base* base) : exec_(base) {
  char name[256] = {0};
  if (gethostname(name, sizeof name - 1) == 0) hostname_ = name;
}

Environment event_environment(const Event& e, const std::string& action) {
  std::string date = clock::format_local(e.when);
  Environment env = {{"MAILWARDEN_SERVICE", e.service},
                     {"MAILWARDEN_EVENT", e.name},
                     {"MAILWARDEN_DESCRIPTION", e.description},
                     {"MAILWARDEN_DATE", date},
                     {"MAILWARDEN_HOST", e.host},
                     {"MAILWARDEN_ACTION", action},
                     {"MAILWARDEN_CHECK", e.check}};
  // monit's names, so that existing notification scripts work unchanged.
  env.push_back({"MONIT_SERVICE", e.service});
  env.push_back({"MONIT_EVENT", e.name});
  env.push_back({"MONIT_DESCRIPTION", e.description});
  env.push_back({"MONIT_DATE", date});
  env.push_back({"MONIT_HOST", e.host});
  env.push_back({"MONIT_ACTION", action});
  return env;
}

void Dispatcher::on_transition(const config::Service& service, const config::Check& check,
                               const config::Rule& rule, Transition t, const CheckResult& result) {
  if (t == Transition::none) return;
  Event e;
  e.service = service.name;
  e.check = check.description;
  e.name = t == Transition::failed ? "failed" : "succeeded";
  e.description = t == Transition::failed ? check.description + " failed: " + result.reason()
                                          : check.description + " succeeded";
  e.when = result.checked_at ? result.checked_at : clock::wall();
  e.host = hostname_;
  const auto& list = t == Transition::failed ? rule.fail_actions : rule.ok_actions;
  for (const auto& action : list) run(action, e);
}

void Dispatcher::run(const config::Action& action, const Event& e) {
  switch (action.kind) {
    case config::ActionKind::alert:
      if (e.name == "failed") {
        log::error("alert: '%s' %s", e.service.c_str(), e.description.c_str());
      } else {
        log::info("alert: '%s' %s", e.service.c_str(), e.description.c_str());
      }
      break;
    case config::ActionKind::exec: {
      std::string label = "'" + e.service + "' \"" + action.exec.command + "\"";
      (void)exec_.run(action.exec, event_environment(e, "exec"), label);
      break;
    }
  }
}

}  // namespace mw::actions
