// The HTML pages of the HTTP interface: the status page (services grouped, failing ones first)
// and a page per service (its checks, their recent history and a response-time chart). Plain
// server-rendered HTML and CSS: no script, nothing fetched from elsewhere; they refresh
// themselves. Every value is escaped; nothing secret is in the model they read.
#pragma once

#include <ctime>
#include <string>

#include "report/status.h"

namespace mw::report {

struct PageContext {
  std::string host;        // the host mailwarden runs on (page title)
  time_t now = 0;          // for "failing for 3 min"
  int refresh_s = 30;      // the page reloads itself
  bool can_act = false;    // show the action buttons (a read-write user)
  std::string csrf_token;  // put in every action form
};

[[nodiscard]] std::string html_escape(const std::string& text);
// A path segment percent-encoded (a service name in a link).
[[nodiscard]] std::string url_path_escape(const std::string& segment);
// "42 s", "3 min", "2 h 5 min", "4 d 1 h"
[[nodiscard]] std::string human_duration(int64_t seconds);

[[nodiscard]] std::string html_index(const Status& snap, const PageContext& ctx);
[[nodiscard]] std::string html_service(const Status& snap, const ServiceStatus& service,
                                       const PageContext& ctx);
// A small page for errors and action results ("404 no such service").
[[nodiscard]] std::string html_message(const std::string& title, const std::string& text,
                                       const std::string& back);
// An inline SVG polyline of response times (ms), oldest first; failed runs are red dots.
[[nodiscard]] std::string svg_chart(const std::vector<state::HistoryPoint>& history);

}  // namespace mw::report
