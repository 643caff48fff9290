#include "report/html.h"
#include "config.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "util/clock.h"

namespace mw::report {
namespace {

const char* const kStyle =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}"
    "header{background:#1d2b3a;color:#fff;padding:10px 18px}header a{color:#fff}"
    "header h1{font-size:18px;margin:0;display:inline}header span{opacity:.75;margin-left:12px}"
    "main{padding:12px 18px;max-width:1200px}"
    "h2{font-size:15px;margin:18px 0 6px;color:#445}"
    "table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}"
    "th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}"
    "th{background:#eef0f3;font-weight:600}"
    ".state{font-weight:600;border-radius:3px;padding:1px 6px;white-space:nowrap}"
    ".ok{background:#d8f3dc;color:#1b5e20}.failed{background:#fde0e0;color:#b71c1c}"
    ".init{background:#eceff1;color:#455a64}.unmonitored{background:#fff3cd;color:#7a5a00}"
    ".msg{font-family:ui-monospace,monospace;font-size:12px;word-break:break-word}"
    ".num{text-align:right;white-space:nowrap}"
    "form{display:inline;margin-right:6px}button{font:inherit;padding:2px 10px}"
    ".summary{margin:8px 0;color:#445}svg{background:#fff;border:1px solid #e3e6ea}";

std::string state_badge(const std::string& state) {
  return "<span class=\"state " + state + "\">" + state + "</span>";
}

std::string fmt_ms(double ms) {
  char buf[32];
  snprintf(buf, sizeof buf, ms < 10 ? "%.2f ms" : "%.0f ms", ms);
  return buf;
}

std::string page_head(const std::string& title, const PageContext& ctx) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\">";
  out += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(ctx.refresh_s) + "\">";
  out += "<title>" + html_escape(title) + "</title><style>" + kStyle + "</style></head><body>";
  out += "<header><h1><a href=\"/\">mailwarden</a></h1><span>" + html_escape(ctx.host) +
         "</span><span>" PACKAGE_VERSION "</span></header><main>";
  return out;
}

const char* const kFoot = "</main></body></html>\n";

// The newest failing check's message of a service, or its first check's.
const CheckStatus* headline_check(const ServiceStatus& s) {
  for (const auto& c : s.checks)
    if (c.last && !c.last->ok) return &c;
  return s.checks.empty() ? nullptr : &s.checks.front();
}

time_t failing_since(const CheckStatus& c) {
  return c.state == "failed" ? c.since : 0;
}

std::string failing_for(const CheckStatus& c, time_t now) {
  if (!failing_since(c)) return "";
  return human_duration(std::max<int64_t>(0, now - failing_since(c)));
}

std::string cert_days(const CheckStatus& c) {
  if (!c.last || !c.last->certificate) return "";
  return std::to_string(c.last->certificate->days_left) + " d";
}

std::string action_form(const std::string& service, const char* action, const char* label,
                        const PageContext& ctx) {
  return "<form method=\"post\" action=\"/service/" + url_path_escape(service) + "/" + action +
         "\"><input type=\"hidden\" name=\"csrf\" value=\"" + html_escape(ctx.csrf_token) +
         "\"><button type=\"submit\" name=\"do\" value=\"" + action + "\">" + label +
         "</button></form>";
}

std::string check_row(const CheckStatus& c, const PageContext& ctx) {
  std::string st = c.state;
  std::string out = "<tr class=\"check\"><td>" + html_escape(c.description) + "</td><td>" +
                    state_badge(st) + "</td><td class=\"msg\">";
  if (!c.last) {
    out += "not checked yet";
  } else {
    out += html_escape(c.last->ok ? std::string("ok") : c.last->reason());
  }
  out += "</td><td class=\"num\">" + (c.last ? fmt_ms(c.last->response_ms) : "") + "</td>";
  out += "<td class=\"num\">" + cert_days(c) + "</td>";
  out += "<td class=\"num\">" + failing_for(c, ctx.now) + "</td></tr>";
  return out;
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string url_path_escape(const std::string& segment) {
  static const char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string human_duration(int64_t s) {
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min";
  if (s < 86400) {
    int64_t m = (s % 3600) / 60;
    return std::to_string(s / 3600) + " h" + (m ? " " + std::to_string(m) + " min" : "");
  }
  int64_t h = (s % 86400) / 3600;
  return std::to_string(s / 86400) + " d" + (h ? " " + std::to_string(h) + " h" : "");
}

std::string svg_chart(const std::vector<state::HistoryPoint>& history) {
  const int w = 600, h = 120, pad = 4;
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" +
                    std::to_string(w) + "\" height=\"" + std::to_string(h) + "\" viewBox=\"0 0 " +
                    std::to_string(w) + " " + std::to_string(h) +
                    "\" role=\"img\" aria-label=\"response times\">";
  if (history.empty()) return out + "</svg>";
  double max_ms = 1;
  for (const auto& e : history) max_ms = std::max(max_ms, e.response_ms);
  size_t n = history.size();
  auto x = [&](size_t i) {
    return n == 1 ? w / 2.0 : pad + (w - 2.0 * pad) * static_cast<double>(i) / (n - 1);
  };
  auto y = [&](double ms) { return h - pad - (h - 2.0 * pad) * ms / max_ms; };
  char buf[96];
  out += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
  for (size_t i = 0; i < n; ++i) {
    snprintf(buf, sizeof buf, "%s%.1f,%.1f", i ? " " : "", x(i), y(history[i].response_ms));
    out += buf;
  }
  out += "\"/>";
  for (size_t i = 0; i < n; ++i) {
    if (history[i].ok) continue;
    snprintf(buf, sizeof buf,
             "<circle class=\"fail\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#c62828\"/>", x(i),
             y(history[i].response_ms));
    out += buf;
  }
  snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"14\" font-size=\"11\" fill=\"#667\">max %s</text>",
           pad + 2, fmt_ms(max_ms).c_str());
  out += buf;
  return out + "</svg>";
}

std::string html_index(const Status& snap, const PageContext& ctx) {
  std::string out = page_head("mailwarden on " + ctx.host, ctx);
  int failed = 0, ok = 0, other = 0;
  // Groups in order of first appearance; a service without a group is under "services".
  std::vector<std::string> group_order;
  std::map<std::string, std::vector<const ServiceStatus*>> groups;
  for (const auto& s : snap.services) {
    std::string st = s.state;
    (st == "failed" ? failed : st == "ok" ? ok : other)++;
    std::string g = s.groups.empty() ? "services" : s.groups.front();
    if (!groups.count(g)) group_order.push_back(g);
    groups[g].push_back(&s);
  }
  out += "<p class=\"summary\" id=\"summary\">" + std::to_string(snap.services.size()) +
         " services: " + std::to_string(failed) + " failed, " + std::to_string(ok) + " ok, " +
         std::to_string(other) + " other &middot; " + std::to_string(snap.cycles) + " cycles";
  if (snap.written) out += " &middot; as of " + html_escape(clock::format_local(ctx.now));
  out += "</p>";
  // Groups with a failure come first, and inside a group the failing services.
  auto group_failed = [&](const std::string& g) {
    return std::any_of(groups[g].begin(), groups[g].end(),
                       [](const ServiceStatus* s) { return s->state == "failed"; });
  };
  std::stable_sort(group_order.begin(), group_order.end(),
                   [&](const std::string& a, const std::string& b) {
                     return group_failed(a) && !group_failed(b);
                   });
  for (const auto& g : group_order) {
    auto& list = groups[g];
    std::stable_sort(list.begin(), list.end(), [](const ServiceStatus* a, const ServiceStatus* b) {
      return a->state == "failed" && b->state != "failed";
    });
    out +=
        "<h2>" + html_escape(g) +
        "</h2><table class=\"services\"><thead><tr><th>Service</th>"
        "<th>State</th><th>Last message</th><th class=\"num\">Response</th>"
        "<th class=\"num\">Certificate</th><th class=\"num\">Failing for</th></tr></thead><tbody>";
    for (const auto* s : list) {
      std::string st = s->state;
      const CheckStatus* c = headline_check(*s);
      out += "<tr class=\"service " + st + "\" data-service=\"" + html_escape(s->name) +
             "\"><td><a href=\"/service/" + url_path_escape(s->name) + "\">" +
             html_escape(s->name) + "</a></td><td>" + state_badge(st) + "</td><td class=\"msg\">";
      if (c && c->last) {
        out += html_escape(c->last->ok ? std::string("ok")
                                       : c->description + ": " + c->last->reason());
      } else {
        out += "not checked yet";
      }
      out += "</td><td class=\"num\">" + (c && c->last ? fmt_ms(c->last->response_ms) : "") +
             "</td><td class=\"num\">";
      // The certificate closest to expiry, and the longest failure.
      int days = INT32_MAX;
      time_t since = 0;
      for (const auto& ck : s->checks) {
        if (ck.last && ck.last->certificate) days = std::min(days, ck.last->certificate->days_left);
        time_t f = failing_since(ck);
        if (f && (!since || f < since)) since = f;
      }
      if (days != INT32_MAX) out += std::to_string(days) + " d";
      out += "</td><td class=\"num\">";
      if (since) out += human_duration(std::max<int64_t>(0, ctx.now - since));
      out += "</td></tr>";
    }
    out += "</tbody></table>";
  }
  return out + kFoot;
}

std::string html_service(const Status&, const ServiceStatus& s, const PageContext& ctx) {
  std::string out = page_head(s.name + " - mailwarden", ctx);
  std::string st = s.state;
  out += "<h2 id=\"service\">Service " + html_escape(s.name) + " " + state_badge(st) + "</h2>";
  if (ctx.can_act) {
    out += "<p class=\"actions\">";
    if (s.monitored) {
      out += action_form(s.name, "check", "Check now", ctx);
      out += action_form(s.name, "unmonitor", "Unmonitor", ctx);
    } else {
      out += action_form(s.name, "monitor", "Monitor", ctx);
    }
    // A process has programs to run (the control verbs; a missing one is logged as such).
    if (s.type == "process") {
      if (s.monitored) {
        out += action_form(s.name, "restart", "Restart", ctx);
        out += action_form(s.name, "stop", "Stop", ctx);
      } else {
        out += action_form(s.name, "start", "Start", ctx);
      }
    }
    out += "</p>";
  }
  out +=
      "<table class=\"checks\"><thead><tr><th>Check</th><th>State</th><th>Last message</th>"
      "<th class=\"num\">Response</th><th class=\"num\">Certificate</th>"
      "<th class=\"num\">Failing for</th></tr></thead><tbody>";
  for (const auto& c : s.checks) out += check_row(c, ctx);
  out += "</tbody></table>";
  for (const auto& c : s.checks) {
    out += "<h2>" + html_escape(c.description) + "</h2>";
    // What the check's kind adds (delivery steps, replication's out-of-sync mailboxes, ...).
    if (!c.rows.empty()) {
      out += "<table class=\"details\"><tbody>";
      for (const auto& [name, value] : c.rows)
        out += "<tr><th>" + html_escape(name) + "</th><td class=\"msg\">" + html_escape(value) +
               "</td></tr>";
      out += "</tbody></table>";
    }
    if (c.last && c.last->details.is_object() && c.last->details.contains("out_of_sync") &&
        c.last->details["out_of_sync"].is_array() && !c.last->details["out_of_sync"].empty()) {
      out +=
          "<table class=\"out-of-sync\"><thead><tr><th>User</th><th>Mailbox out of sync</th>"
          "</tr></thead><tbody>";
      for (const auto& m : c.last->details["out_of_sync"])
        if (m.is_object())
          out += "<tr><td>" + html_escape(m.value("user", "")) + "</td><td>" +
                 html_escape(m.value("mailbox", "")) + "</td></tr>";
      out += "</tbody></table>";
    }
    if (c.last && c.last->details.is_object() && c.last->details.contains("backends") &&
        c.last->details["backends"].is_array()) {
      out +=
          "<table class=\"backends\"><thead><tr><th>Backend</th><th>Tag</th><th>State</th>"
          "</tr></thead><tbody>";
      for (const auto& be : c.last->details["backends"])
        if (be.is_object())
          out += "<tr><td>" + html_escape(be.value("name", "")) + "</td><td>" +
                 html_escape(be.value("tag", "")) + "</td><td>" +
                 state_badge(be.value("up", false) ? "ok" : "failed") + "</td></tr>";
      out += "</tbody></table>";
    }
    out += svg_chart(c.history);
    out +=
        "<table class=\"history\"><thead><tr><th>Checked</th><th>Result</th>"
        "<th class=\"num\">Response</th></tr></thead><tbody>";
    for (auto it = c.history.rbegin(); it != c.history.rend(); ++it)
      out += "<tr><td>" + html_escape(clock::format_local(it->at)) + "</td><td>" +
             state_badge(it->ok ? "ok" : "failed") +
             (it->ok ? "" : " " + html_escape(failure_class_name(it->cls))) +
             "</td><td class=\"num\">" + fmt_ms(it->response_ms) + "</td></tr>";
    out += "</tbody></table>";
  }
  return out + kFoot;
}

std::string html_message(const std::string& title, const std::string& text,
                         const std::string& back) {
  PageContext ctx;
  ctx.refresh_s = 3600;
  std::string out = page_head(title, ctx);
  out += "<h2>" + html_escape(title) + "</h2><p id=\"message\">" + html_escape(text) + "</p>";
  if (!back.empty()) out += "<p><a href=\"" + html_escape(back) + "\">back</a></p>";
  return out + kFoot;
}

}  // namespace mw::report
