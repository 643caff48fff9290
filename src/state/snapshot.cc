#include "state/snapshot.h"

#include <sys/stat.h>

#include <cerrno>

#include "util/clock.h"
#include "util/files.h"

namespace mw::state {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;

RuleState state_from(const std::string& s) {
  if (s == "ok") return RuleState::ok;
  if (s == "failed") return RuleState::failed;
  return RuleState::init;
}

CheckResult result_from(const json& j) {
  CheckResult r;
  r.ok = j.value("status", "failed") == "ok";
  r.cls = failure_class_from_name(j.value("class", "none"), FailureClass::internal);
  r.message = j.value("message", "");
  r.server_line = j.value("server_line", "");
  r.response_ms = j.value("response_ms", 0.0);
  r.attempts = j.value("attempts", 1);
  r.checked_at = static_cast<time_t>(j.value("checked_at_unix", int64_t{0}));
  if (j.contains("metrics") && j["metrics"].is_object())
    for (auto& [k, v] : j["metrics"].items())
      if (v.is_number()) r.metrics[k] = v.get<double>();
  if (j.contains("details")) r.details = j["details"];
  if (j.contains("certificate") && j["certificate"].is_object()) {
    const json& c = j["certificate"];
    CertInfo info;
    info.days_left = c.value("days_left", 0);
    info.not_after = static_cast<time_t>(c.value("not_after_unix", int64_t{0}));
    info.subject = c.value("subject", "");
    info.issuer = c.value("issuer", "");
    info.sha256 = c.value("sha256", "");
    info.verify_error = c.value("verify_error", "");
    info.tls_version = c.value("tls_version", "");
    r.certificate = info;
  }
  return r;
}

}  // namespace

json result_to_json(const CheckResult& r) {
  json j;
  j["status"] = r.ok ? "ok" : "failed";
  j["class"] = failure_class_name(r.cls);
  j["message"] = r.message;
  if (!r.server_line.empty()) j["server_line"] = r.server_line;
  j["response_ms"] = r.response_ms;
  j["attempts"] = r.attempts;
  j["checked_at"] = clock::format_utc(r.checked_at);
  j["checked_at_unix"] = static_cast<int64_t>(r.checked_at);
  if (!r.metrics.empty()) j["metrics"] = r.metrics;
  if (!r.details.is_null()) j["details"] = r.details;
  if (r.certificate) {
    const CertInfo& c = *r.certificate;
    j["certificate"] = {{"days_left", c.days_left},
                        {"not_after", clock::format_utc(c.not_after)},
                        {"not_after_unix", static_cast<int64_t>(c.not_after)},
                        {"subject", c.subject},
                        {"issuer", c.issuer},
                        {"sha256", c.sha256},
                        {"verify_error", c.verify_error},
                        {"tls_version", c.tls_version}};
  }
  return j;
}

std::string to_text(const Snapshot& s) {
  json j;
  j["format"] = kFormatVersion;
  j["pid"] = s.pid;
  j["started_unix"] = static_cast<int64_t>(s.started);
  j["written_unix"] = static_cast<int64_t>(s.written);
  j["written"] = clock::format_utc(s.written);
  j["cycles"] = s.cycles;
  json services = json::array();
  for (const auto& svc : s.services) {
    json checks = json::array();
    for (const auto& c : svc.checks) {
      json rules = json::array();
      for (const auto& r : c.rules)
        rules.push_back({{"state", rule_state_name(r.state)},
                         {"history", r.history},
                         {"recorded", r.recorded},
                         {"cycles_in_state", r.cycles_in_state}});
      json jc = {{"id", c.id}, {"description", c.description}, {"runs", c.runs}, {"rules", rules}};
      if (!c.kind.empty()) jc["kind"] = c.kind;
      if (!c.protocol.empty()) jc["protocol"] = c.protocol;
      if (!c.target.empty()) jc["target"] = c.target;
      if (c.since) jc["since_unix"] = static_cast<int64_t>(c.since);
      json history = json::array();
      for (const auto& h : c.history)
        history.push_back(json::array(
            {static_cast<int64_t>(h.at), h.ok ? 1 : 0, h.response_ms, failure_class_name(h.cls)}));
      if (!history.empty()) jc["history"] = std::move(history);
      if (c.last) jc["last"] = result_to_json(*c.last);
      if (!c.memory.is_null()) jc["memory"] = c.memory;
      checks.push_back(std::move(jc));
    }
    json js = {{"name", svc.name}, {"checks", checks}};
    if (!svc.type.empty()) js["type"] = svc.type;
    if (!svc.groups.empty()) js["groups"] = svc.groups;
    if (!svc.monitored) js["monitored"] = false;
    services.push_back(std::move(js));
  }
  j["services"] = std::move(services);
  j["actions"] = s.actions;
  // A byte sequence that is not UTF-8 must not make the state unwritable.
  return j.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

bool from_text(const std::string& text, Snapshot& out, std::string& error) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = "not a mailwarden state file (invalid JSON)";
    return false;
  }
  if (j.value("format", 0) != kFormatVersion) {
    error = "unknown state file format " + std::to_string(j.value("format", 0));
    return false;
  }
  try {
    out = Snapshot{};
    out.pid = j.value("pid", 0);
    out.started = static_cast<time_t>(j.value("started_unix", int64_t{0}));
    out.written = static_cast<time_t>(j.value("written_unix", int64_t{0}));
    out.cycles = j.value("cycles", int64_t{0});
    for (const auto& js : j.value("services", json::array())) {
      ServiceSnapshot svc;
      svc.name = js.value("name", "");
      svc.type = js.value("type", "");
      svc.monitored = js.value("monitored", true);
      for (const auto& g : js.value("groups", json::array()))
        if (g.is_string()) svc.groups.push_back(g.get<std::string>());
      for (const auto& jc : js.value("checks", json::array())) {
        CheckSnapshot c;
        c.id = jc.value("id", "");
        c.description = jc.value("description", c.id);
        c.runs = jc.value("runs", int64_t{0});
        c.kind = jc.value("kind", "");
        c.protocol = jc.value("protocol", "");
        c.target = jc.value("target", "");
        c.since = static_cast<time_t>(jc.value("since_unix", int64_t{0}));
        for (const auto& jh : jc.value("history", json::array())) {
          if (!jh.is_array() || jh.size() < 4 || c.history.size() >= kHistoryLength) continue;
          HistoryPoint h;
          h.at = static_cast<time_t>(jh[0].is_number() ? jh[0].get<int64_t>() : 0);
          h.ok = jh[1].is_number() && jh[1].get<int>() == 1;
          h.response_ms = jh[2].is_number() ? jh[2].get<double>() : 0.0;
          h.cls = failure_class_from_name(jh[3].is_string() ? jh[3].get<std::string>() : "",
                                          FailureClass::internal);
          c.history.push_back(h);
        }
        for (const auto& jr : jc.value("rules", json::array()))
          c.rules.push_back(RuleSnapshot{state_from(jr.value("state", "init")),
                                         jr.value("history", uint64_t{0}), jr.value("recorded", 0),
                                         jr.value("cycles_in_state", int64_t{0})});
        if (jc.contains("last")) c.last = result_from(jc["last"]);
        if (jc.contains("memory")) c.memory = jc["memory"];
        svc.checks.push_back(std::move(c));
      }
      out.services.push_back(std::move(svc));
    }
    if (j.contains("actions") && j["actions"].is_object()) out.actions = j["actions"];
  } catch (const json::exception& e) {
    error = std::string("state file has an unexpected shape: ") + e.what();
    return false;
  }
  return true;
}

bool save(const std::string& path, const Snapshot& s, std::string& error) {
  return files::write_atomic(path, to_text(s), 0600, error);
}

bool load(const std::string& path, Snapshot& out, std::string& error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    out = Snapshot{};
    return true;
  }
  auto text = files::read(path, error);
  if (!text) return false;
  if (!from_text(*text, out, error)) {
    error = path + ": " + error;
    return false;
  }
  return true;
}

}  // namespace mw::state
