#include "report/metrics.h"
#include "config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>
#include <vector>

namespace mw::report {
namespace {

constexpr size_t kSampleValueChars = 32;  // "-2.2250738585072014e-308" and more

// Writes a sample's value at `buf` (kSampleValueChars long); returns where it ends.
char* sample_value_chars(char* buf, double v) {
  // The format's words for what is not a finite number (Go's ParseFloat reads them).
  if (std::isnan(v)) return std::copy_n("NaN", 3, buf);
  if (std::isinf(v)) return std::copy_n(v > 0 ? "+Inf" : "-Inf", 4, buf);
  // A whole number as such ("1800000000", not "1.8e+09"); any other value as the shortest text
  // that reads back as the same double, as Prometheus' own clients write it.
  auto [end, ec] = std::abs(v) < 1e15 && v == std::trunc(v)
                       ? std::to_chars(buf, buf + kSampleValueChars, static_cast<int64_t>(v))
                       : std::to_chars(buf, buf + kSampleValueChars, v);
  return end;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// "} VALUE\n": what ends a series after its labels, made without touching the output.
class ValueText {
 public:
  explicit ValueText(double v) {
    buf_[0] = '}';
    buf_[1] = ' ';
    char* end = sample_value_chars(buf_ + 2, v);
    *end++ = '\n';
    len_ = static_cast<size_t>(end - buf_);
  }
  explicit ValueText(int64_t v) {
    buf_[0] = '}';
    buf_[1] = ' ';
    auto [end, ec] = std::to_chars(buf_ + 2, buf_ + sizeof buf_ - 1, v);
    *end++ = '\n';
    len_ = static_cast<size_t>(end - buf_);
  }
  [[nodiscard]] std::string_view view() const { return {buf_, len_}; }

 private:
  char buf_[kSampleValueChars + 4];
  size_t len_ = 0;
};

// NAME{LABELS} VALUE\n with the labels of a check (without their closing brace).
void series(std::string& out, std::string_view name, std::string_view labels,
            std::string_view end) {
  out += name;
  out += labels;
  out += end;
}

// " VALUE\n" after a series' name or labels.
void number(std::string& out, double v) {
  out += ' ';
  append_sample_value(out, v);
  out += '\n';
}

void integer(std::string& out, int64_t v) {
  out += ValueText(v).view().substr(1);
}

// {service="..",check="..",protocol="..",target=".."} without the closing brace.
void append_check_labels(std::string& out, const ServiceStatus& s, const CheckStatus& c) {
  out += "{service=\"";
  append_label_value(out, s.name);
  out += "\",check=\"";
  append_label_value(out, c.description);
  out += "\",protocol=\"";
  append_label_value(out, c.protocol.empty() ? c.kind : c.protocol);
  out += "\",target=\"";
  append_label_value(out, c.target);
  out += '"';
}

time_t failing_since(const CheckStatus& c) {
  return c.state == "failed" ? c.since : 0;
}

template <typename Fn>
void for_each_check(const Status& snap, Fn fn) {
  for (const auto& s : snap.services)
    for (const auto& c : s.checks) fn(s, c);
}

}  // namespace

void append_sample_value(std::string& out, double v) {
  char buf[kSampleValueChars];
  out.append(buf, sample_value_chars(buf, v));
}

void append_label_value(std::string& out, const std::string& value) {
  // Runs without a character to escape are appended whole: most values have none.
  size_t start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char* escaped = nullptr;
    switch (value[i]) {
      case '\\':
        escaped = "\\\\";
        break;
      case '"':
        escaped = "\\\"";
        break;
      case '\n':
        escaped = "\\n";
        break;
      default:
        continue;
    }
    out.append(value, start, i - start);
    out += escaped;
    start = i + 1;
  }
  out.append(value, start, std::string::npos);
}

void append_metrics_text(std::string& out, const Status& snap, const DaemonFacts& facts) {
  size_t checks = 0;
  for (const auto& s : snap.services) checks += s.checks.size();
  // The labels are built once per check, into one string, and reused by every series of it.
  std::string label_text;
  label_text.reserve(checks * 128);
  std::vector<size_t> label_end;  // where each check's labels end in label_text
  label_end.reserve(checks);
  for_each_check(snap, [&](const auto& s, const auto& c) {
    append_check_labels(label_text, s, c);
    label_end.push_back(label_text.size());
  });
  auto labels_of = [&](size_t i) {
    size_t begin = i ? label_end[i - 1] : 0;
    return std::string_view(label_text).substr(begin, label_end[i] - begin);
  };

  // About seven series of ~60 bytes per check, each with its labels.
  out.reserve(out.size() + checks * (7 * 60 + 7 * label_text.size() / std::max<size_t>(checks, 1)) +
              4096);

  header(out, "mailwarden_build_info", "gauge", "The mailwarden version running.");
  out += "mailwarden_build_info{version=\"" PACKAGE_VERSION "\"} 1\n";
  header(out, "mailwarden_cycle_duration_seconds", "gauge",
         "How long the last complete cycle took, from its start to its last check's end.");
  out += "mailwarden_cycle_duration_seconds";
  number(out, static_cast<double>(facts.last_cycle_ms) / 1000.0);
  header(out, "mailwarden_cycles_total", "counter", "Cycles started.");
  out += "mailwarden_cycles_total";
  integer(out, facts.cycles);

  header(out, "mailwarden_service_monitored", "gauge",
         "1 when the service is monitored, 0 in maintenance (unmonitored).");
  for (const auto& s : snap.services) {
    out += "mailwarden_service_monitored{service=\"";
    append_label_value(out, s.name);
    out += s.monitored ? "\"} 1\n" : "\"} 0\n";
  }

  // The facts of every check the series below show, gathered in one pass: each family's pass
  // then reads one small array instead of following every check's pointers again.
  struct Facts {
    std::string_view labels;
    const CheckResult* last;
    time_t failing_since;
    time_t certificate_expiry;
    const std::map<std::string, int64_t>* failures;
  };
  std::vector<Facts> facts_of;
  facts_of.reserve(checks);
  for_each_check(snap, [&](const auto&, const auto& c) {
    const CheckResult* last = c.last.get();
    facts_of.push_back({labels_of(facts_of.size()), last, failing_since(c),
                        last && last->certificate ? last->certificate->not_after : 0, &c.failures});
  });

  header(out, "mailwarden_check_success", "gauge",
         "1 when the check's last run succeeded, else 0.");
  for (const auto& f : facts_of)
    if (f.last) series(out, "mailwarden_check_success", f.labels, f.last->ok ? "} 1\n" : "} 0\n");
  header(out, "mailwarden_check_duration_seconds", "gauge",
         "How long the check's last run took (connect to the end of the dialogue).");
  for (const auto& f : facts_of)
    if (f.last)
      series(out, "mailwarden_check_duration_seconds", f.labels,
             ValueText(f.last->response_ms / 1000.0).view());
  header(out, "mailwarden_check_last_run_timestamp_seconds", "gauge",
         "When the check last ran (Unix time).");
  for (const auto& f : facts_of)
    if (f.last)
      series(out, "mailwarden_check_last_run_timestamp_seconds", f.labels,
             ValueText(static_cast<int64_t>(f.last->checked_at)).view());
  header(out, "mailwarden_check_failing_since_timestamp_seconds", "gauge",
         "When the failure going on began (Unix time); absent while the check succeeds.");
  for (const auto& f : facts_of)
    if (f.failing_since)
      series(out, "mailwarden_check_failing_since_timestamp_seconds", f.labels,
             ValueText(static_cast<int64_t>(f.failing_since)).view());
  header(out, "mailwarden_check_failures_total", "counter",
         "Failed runs of the check since the daemon started, by failure class.");
  for (const auto& f : facts_of) {
    for (const auto& [cls, n] : *f.failures) {
      out += "mailwarden_check_failures_total";
      out += f.labels;
      out += ",class=\"";
      append_label_value(out, cls);
      out += '"';
      out += ValueText(n).view();
    }
  }
  header(out, "mailwarden_certificate_expiry_timestamp_seconds", "gauge",
         "When the certificate the server last presented expires (Unix time).");
  for (const auto& f : facts_of)
    if (f.certificate_expiry)
      series(out, "mailwarden_certificate_expiry_timestamp_seconds", f.labels,
             ValueText(static_cast<int64_t>(f.certificate_expiry)).view());

  header(out, "mailwarden_delivery_step_seconds", "gauge",
         "How long each step of the last delivery probe took.");
  for_each_check(snap, [&](const auto& s, const auto& c) {
    if (!c.last || !c.last->details.is_object() || !c.last->details.contains("steps_ms")) return;
    const auto& steps = c.last->details["steps_ms"];
    if (!steps.is_object()) return;
    for (const auto& [step, ms] : steps.items()) {
      if (!ms.is_number()) continue;
      out += "mailwarden_delivery_step_seconds{service=\"";
      append_label_value(out, s.name);
      out += "\",step=\"";
      append_label_value(out, step);
      out += "\"}";
      number(out, ms.template get<double>() / 1000.0);
    }
  });
  header(out, "mailwarden_replication_out_of_sync_mailboxes", "gauge",
         "Mailboxes found out of sync between the reference server and a replica.");
  for_each_check(snap, [&](const auto& s, const auto& c) {
    if (c.kind != "replication" || !c.last) return;
    auto it = c.last->metrics.find("out_of_sync");
    if (it == c.last->metrics.end()) return;
    out += "mailwarden_replication_out_of_sync_mailboxes{service=\"";
    append_label_value(out, s.name);
    out += "\"}";
    number(out, it->second);
  });
  // A check that watches a director's backends lists them in its details as
  // "backends": [{"name": "...", "tag": "...", "up": true}, ...].
  header(out, "mailwarden_director_backend_up", "gauge",
         "1 when the director lists the backend as up, else 0.");
  for_each_check(snap, [&](const auto& s, const auto& c) {
    if (!c.last || !c.last->details.is_object() || !c.last->details.contains("backends")) return;
    const auto& backends = c.last->details["backends"];
    if (!backends.is_array()) return;
    for (const auto& b : backends) {
      if (!b.is_object()) continue;
      out += "mailwarden_director_backend_up{service=\"";
      append_label_value(out, s.name);
      out += "\",backend=\"";
      append_label_value(out, b.value("name", ""));
      out += "\",tag=\"";
      append_label_value(out, b.value("tag", ""));
      out += b.value("up", false) ? "\"} 1\n" : "\"} 0\n";
    }
  });

  header(out, "mailwarden_actions_total", "counter",
         "Actions taken on events since the daemon started, by action and result.");
  for (const auto& [key, n] : facts.actions) {
    out += "mailwarden_actions_total{service=\"";
    append_label_value(out, std::get<0>(key));
    out += "\",action=\"";
    append_label_value(out, std::get<1>(key));
    out += "\",result=\"";
    append_label_value(out, std::get<2>(key));
    out += "\"}";
    integer(out, n);
  }
}

std::string metrics_text(const Status& snap, const DaemonFacts& facts) {
  std::string out;
  append_metrics_text(out, snap, facts);
  return out;
}

}  // namespace mw::report
