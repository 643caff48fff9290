// The JSON faces of the status model: `status --json` (= /api/v1/status) and `validate --json`.
#include "report/status.h"
#include "state/snapshot.h"
#include "util/clock.h"

namespace mw::report {
namespace {

using nlohmann::json;

json history_json(const std::vector<state::HistoryPoint>& history) {
  json out = json::array();
  for (const auto& h : history)
    out.push_back({{"at", clock::format_utc(h.at)},
                   {"status", h.ok ? "ok" : "failed"},
                   {"class", failure_class_name(h.cls)},
                   {"response_ms", h.response_ms}});
  return out;
}

json check_json(const CheckStatus& c, bool with_history) {
  json t = {{"name", c.description}, {"state", c.state}, {"runs", c.runs}};
  if (!c.kind.empty()) t["kind"] = c.kind;
  if (!c.protocol.empty()) t["protocol"] = c.protocol;
  if (!c.target.empty()) t["target"] = c.target;
  if (c.since) t["since"] = clock::format_utc(c.since);
  if (c.last) {
    json r = state::result_to_json(*c.last);
    r.erase("checked_at_unix");
    // A composite check's details (replication: checked, statuses, invalid_users) sit at the
    // top of the test object, where jq users of the old plugins look for them.
    json details = r.contains("details") ? r["details"] : json();
    r.erase("details");
    for (auto& [k, v] : r.items()) t[k] = v;
    if (details.is_object())
      for (auto& [k, v] : details.items()) t[k] = v;
  } else {
    t["status"] = "init";
  }
  if (with_history) t["history"] = history_json(c.history);
  return t;
}

}  // namespace

std::string dump(const json& j) {
  // A byte sequence that is not UTF-8 (a server's line) must not make the output fail.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

json service_json(const ServiceStatus& s, bool with_history) {
  json tests = json::array();
  for (const auto& c : s.checks) tests.push_back(check_json(c, with_history));
  json out = {{"name", s.name}, {"status", s.state}, {"type", s.type}, {"tests", tests}};
  out["monitored"] = s.monitored;
  if (!s.groups.empty()) out["groups"] = s.groups;
  return out;
}

json status_json(const Status& s, bool with_history) {
  json services = json::array();
  for (const auto& svc : s.services) services.push_back(service_json(svc, with_history));
  return {{"daemon",
           {{"running", s.daemon.running},
            {"pid", s.daemon.pid},
            {"cycles", s.cycles},
            {"state_written", s.written ? clock::format_utc(s.written) : ""}}},
          {"services", services}};
}

std::string validate_json(const Status& s) {
  json services = json::array();
  for (const auto& svc : s.services) {
    if (svc.checks.empty()) continue;
    json tests = json::array();
    bool failed = false;
    for (const auto& c : svc.checks) {
      json test = {{"name", c.description}};
      if (c.last) {
        const CheckResult& last = *c.last;
        test["status"] = last.ok ? "ok" : "failed";
        test["class"] = failure_class_name(last.cls);
        test["message"] = last.message;
        if (!last.server_line.empty()) test["server_line"] = last.server_line;
        test["response_ms"] = last.response_ms;
        if (last.certificate)
          test["certificate"] = {{"days_left", last.certificate->days_left},
                                 {"not_after", clock::format_utc(last.certificate->not_after)}};
        if (!last.metrics.empty()) test["metrics"] = last.metrics;
        if (last.details.is_object())
          for (auto& [k, v] : last.details.items()) test[k] = v;
      } else {
        test["status"] = "failed";
        test["class"] = "internal";
        test["message"] = "no result";
        test["response_ms"] = 0;
      }
      if (test["status"] == "failed") failed = true;
      tests.push_back(std::move(test));
    }
    services.push_back(
        {{"name", svc.name}, {"status", failed ? "failed" : "ok"}, {"tests", tests}});
  }
  return dump(json{{"services", services}});
}

}  // namespace mw::report
