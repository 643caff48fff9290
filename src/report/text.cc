// The CLI's text faces of the status model: status, summary, validate.
#include "config.h"

#include <cstdio>

#include "report/status.h"
#include "util/clock.h"

namespace mw::report {
namespace {

std::string header(const Status& s) {
  std::string out = "mailwarden " PACKAGE_VERSION;
  if (s.daemon.running) {
    out += " daemon running (pid " + std::to_string(s.daemon.pid) + ")";
  } else {
    out += " daemon not running";
  }
  if (s.written) out += ", state written " + clock::format_local(s.written);
  out += ", " + std::to_string(s.cycles) + " cycles\n";
  return out;
}

// "    label          value", the label padded to 15 columns.
std::string row(const std::string& label, const std::string& value) {
  char pad[32];
  snprintf(pad, sizeof pad, "    %-14s ", label.c_str());
  return pad + value + "\n";
}

}  // namespace

std::string status_text(const Status& s) {
  std::string out = header(s);
  for (const auto& svc : s.services) {
    char line[512];
    snprintf(line, sizeof line, "\nService '%s'  %s\n", svc.name.c_str(), svc.state.c_str());
    out += line;
    for (const auto& c : svc.checks) {
      out += "  " + c.description + "\n";
      out += row("state", c.state);
      if (!c.last) {
        out += row("last result", "not checked yet");
        continue;
      }
      const CheckResult& r = *c.last;
      out += row("last result", r.ok ? std::string("ok") : r.reason());
      snprintf(line, sizeof line, "%.1f ms", r.response_ms);
      out += row("response time", line);
      if (r.certificate) {
        std::string cert = "valid " + std::to_string(r.certificate->days_left) + " days (until " +
                           clock::format_utc(r.certificate->not_after) + ")";
        if (!r.certificate->verify_error.empty())
          cert += ", not verified: " + r.certificate->verify_error;
        out += row("certificate", cert);
      }
      for (const auto& [label, value] : c.rows) out += row(label, value);
      out += row("checked", clock::format_local(r.checked_at));
      if (c.since && c.state == "failed") out += row("failing since", clock::format_local(c.since));
    }
  }
  return out;
}

std::string summary_text(const Status& s) {
  std::string out = header(s);
  char line[512];
  snprintf(line, sizeof line, "%-32s %-10s %s\n", "Service", "Status", "Checks (ok/failed)");
  out += line;
  for (const auto& svc : s.services) {
    int ok = 0, failed = 0;
    for (const auto& c : svc.checks) {
      if (c.last && c.last->ok) ++ok;
      if (c.last && !c.last->ok) ++failed;
    }
    snprintf(line, sizeof line, "%-32s %-10s %d/%d\n", svc.name.c_str(), svc.state.c_str(), ok,
             failed);
    out += line;
  }
  return out;
}

std::string validate_text(const Status& s) {
  std::string out;
  for (const auto& svc : s.services) {
    if (svc.checks.empty()) continue;
    std::vector<std::string> reasons;
    for (const auto& c : svc.checks)
      if (!c.last || !c.last->ok)
        reasons.push_back(c.description + ": " +
                          (c.last ? c.last->reason() : std::string("internal: no result")));
    out += svc.name;
    if (reasons.empty()) {
      out += " ok\n";
      continue;
    }
    out += " failed: ";
    for (size_t i = 0; i < reasons.size(); ++i) out += (i ? "; " : "") + reasons[i];
    out += "\n";
  }
  return out;
}

}  // namespace mw::report
