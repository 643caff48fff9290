#include "cli/report.h"
#include "config.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "util/clock.h"
#include "util/strings.h"

namespace mw::cli {
namespace {

using nlohmann::json;

struct ServiceLine {
  std::string name;
  bool failed = false;
  std::vector<std::string> reasons;
};

std::vector<ServiceLine> group_by_service(const Engine& engine) {
  std::vector<ServiceLine> out;
  std::map<const config::Service*, size_t> index;
  for (const auto& v : engine.checks()) {
    auto [it, fresh] = index.emplace(v.service, out.size());
    if (fresh) out.push_back(ServiceLine{v.service->name, false, {}});
    ServiceLine& line = out[it->second];
    const auto& last = *v.last;
    if (!last || !last->ok) {
      line.failed = true;
      line.reasons.push_back(v.check->description + ": " +
                             (last ? last->reason() : std::string("internal: no result")));
    }
  }
  return out;
}

// The state of a check from its rules: failed when any rule is in the failed state.
std::string check_state(const state::CheckSnapshot& c) {
  bool any_ok = false;
  for (const auto& r : c.rules) {
    if (r.state == RuleState::failed) return "failed";
    if (r.state == RuleState::ok) any_ok = true;
  }
  return any_ok ? "ok" : "init";
}

std::string service_state(const state::ServiceSnapshot& s) {
  bool any_ok = false;
  for (const auto& c : s.checks) {
    std::string st = check_state(c);
    if (st == "failed") return "failed";
    if (st == "ok") any_ok = true;
  }
  return any_ok ? "ok" : "init";
}

std::string header(const state::Snapshot& snap, const DaemonInfo& d) {
  std::string out = "mailwarden " PACKAGE_VERSION;
  if (d.running) {
    out += " daemon running (pid " + std::to_string(d.pid) + ")";
  } else {
    out += " daemon not running";
  }
  if (snap.written) out += ", state written " + clock::format_local(snap.written);
  out += ", " + std::to_string(snap.cycles) + " cycles\n";
  return out;
}

}  // namespace

bool all_ok(const Engine& engine) {
  for (const auto& line : group_by_service(engine))
    if (line.failed) return false;
  return true;
}

std::string validate_text(const Engine& engine) {
  std::string out;
  for (const auto& line : group_by_service(engine)) {
    out += line.name;
    if (!line.failed) {
      out += " ok\n";
      continue;
    }
    out += " failed: ";
    for (size_t i = 0; i < line.reasons.size(); ++i) out += (i ? "; " : "") + line.reasons[i];
    out += "\n";
  }
  return out;
}

std::string validate_json(const Engine& engine) {
  json services = json::array();
  std::map<const config::Service*, size_t> index;
  for (const auto& v : engine.checks()) {
    auto [it, fresh] = index.emplace(v.service, services.size());
    if (fresh)
      services.push_back({{"name", v.service->name}, {"status", "ok"}, {"tests", json::array()}});
    json& svc = services[it->second];
    const auto& last = *v.last;
    json test = {{"name", v.check->description}};
    if (last) {
      test["status"] = last->ok ? "ok" : "failed";
      test["class"] = failure_class_name(last->cls);
      test["message"] = last->message;
      if (!last->server_line.empty()) test["server_line"] = last->server_line;
      test["response_ms"] = last->response_ms;
      if (last->certificate) {
        test["certificate"] = {{"days_left", last->certificate->days_left},
                               {"not_after", clock::format_utc(last->certificate->not_after)}};
      }
      if (!last->metrics.empty()) test["metrics"] = last->metrics;
      if (last->details.is_object())
        for (auto& [k, v] : last->details.items()) test[k] = v;
    } else {
      test["status"] = "failed";
      test["class"] = "internal";
      test["message"] = "no result";
      test["response_ms"] = 0;
    }
    if (test["status"] == "failed") svc["status"] = "failed";
    svc["tests"].push_back(std::move(test));
  }
  return json{{"services", services}}.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string status_text(const state::Snapshot& snap, const DaemonInfo& d) {
  std::string out = header(snap, d);
  for (const auto& s : snap.services) {
    char line[512];
    bool off = std::find(snap.unmonitored.begin(), snap.unmonitored.end(), s.name) !=
               snap.unmonitored.end();
    snprintf(line, sizeof line, "\nService '%s'  %s%s\n", s.name.c_str(), service_state(s).c_str(),
             off ? "  (unmonitored)" : "");
    out += line;
    for (const auto& c : s.checks) {
      out += "  " + c.description + "\n";
      out += "    state          " + check_state(c) + "\n";
      if (!c.last) {
        out += "    last result    not checked yet\n";
        continue;
      }
      const CheckResult& r = *c.last;
      out += "    last result    " + (r.ok ? std::string("ok") : r.reason()) + "\n";
      snprintf(line, sizeof line, "    response time  %.1f ms\n", r.response_ms);
      out += line;
      if (r.certificate) {
        out += "    certificate    valid " + std::to_string(r.certificate->days_left) +
               " days (until " + clock::format_utc(r.certificate->not_after) + ")";
        if (!r.certificate->verify_error.empty())
          out += ", not verified: " + r.certificate->verify_error;
        out += "\n";
      }
      if (r.details.is_object() && r.details.contains("output") && r.details["output"].is_string())
        out += "    output         " + str::printable(r.details["output"].get<std::string>(), 200) +
               "\n";
      out += "    checked        " + clock::format_local(r.checked_at) + "\n";
    }
  }
  return out;
}

std::string status_json(const state::Snapshot& snap, const DaemonInfo& d) {
  json services = json::array();
  for (const auto& s : snap.services) {
    json tests = json::array();
    for (const auto& c : s.checks) {
      json t = {{"name", c.description}, {"state", check_state(c)}, {"runs", c.runs}};
      if (c.last) {
        json r = state::result_to_json(*c.last);
        r.erase("checked_at_unix");
        // A composite check's details (replication: checked, statuses, invalid_users) sit at
        // the top of the test object, where jq users of the old plugins look for them.
        json details = r.contains("details") ? r["details"] : json();
        r.erase("details");
        for (auto& [k, v] : r.items()) t[k] = v;
        if (details.is_object())
          for (auto& [k, v] : details.items()) t[k] = v;
      } else {
        t["status"] = "init";
      }
      tests.push_back(std::move(t));
    }
    bool off = std::find(snap.unmonitored.begin(), snap.unmonitored.end(), s.name) !=
               snap.unmonitored.end();
    services.push_back({{"name", s.name},
                        {"status", service_state(s)},
                        {"monitoring", off ? "unmonitored" : "monitored"},
                        {"tests", tests}});
  }
  json j = {{"daemon",
             {{"running", d.running},
              {"pid", d.pid},
              {"cycles", snap.cycles},
              {"state_written", snap.written ? clock::format_utc(snap.written) : ""}}},
            {"services", services}};
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string summary_text(const state::Snapshot& snap, const DaemonInfo& d) {
  std::string out = header(snap, d);
  char line[512];
  snprintf(line, sizeof line, "%-32s %-10s %s\n", "Service", "Status", "Checks (ok/failed)");
  out += line;
  for (const auto& s : snap.services) {
    int ok = 0, failed = 0;
    for (const auto& c : s.checks) {
      if (c.last && c.last->ok) ++ok;
      if (c.last && !c.last->ok) ++failed;
    }
    bool off = std::find(snap.unmonitored.begin(), snap.unmonitored.end(), s.name) !=
               snap.unmonitored.end();
    snprintf(line, sizeof line, "%-32s %-10s %d/%d\n", s.name.c_str(),
             off ? "unmonitored" : service_state(s).c_str(), ok, failed);
    out += line;
  }
  return out;
}

}  // namespace mw::cli
