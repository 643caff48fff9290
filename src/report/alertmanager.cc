#include "report/alertmanager.h"

#include "util/clock.h"

namespace mw::report {

nlohmann::json alertmanager_alert(const AlertFacts& a) {
  nlohmann::json j = {
      {"labels",
       {{"alertname", "MailwardenCheckFailed"},
        {"service", a.service},
        {"check", a.check},
        {"class", a.cls},
        {"host", a.host}}},
      {"annotations", {{"summary", a.summary}, {"description", a.description}}},
      {"startsAt", clock::format_utc(a.starts)},
      {"endsAt", clock::format_utc(a.ends)},
  };
  if (!a.generator_url.empty()) j["generatorURL"] = a.generator_url;
  return j;
}

}  // namespace mw::report
