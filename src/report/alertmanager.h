// An alert event as Alertmanager's API v2 takes it (POST /api/v2/alerts, a JSON array). The
// labels identify the alert, so that the same failure seen by several mailwarden instances is
// one alert to Alertmanager: alertname, service, check, class, host.
#pragma once

#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

namespace mw::report {

struct AlertFacts {
  std::string service;
  std::string check;        // the check's description
  std::string cls;          // the failure class
  std::string host;         // the host mailwarden runs on
  std::string summary;      // one line
  std::string description;  // what failed and why
  time_t starts = 0;
  time_t ends = 0;  // in the future while firing (4 cycles ahead); now when resolved
  std::string generator_url;
};

[[nodiscard]] nlohmann::json alertmanager_alert(const AlertFacts& a);

}  // namespace mw::report
