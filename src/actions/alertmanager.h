// Alert events posted to the Alertmanagers of `set alertmanager`. Alerts made in the same moment
// go out together, one POST /api/v2/alerts per Alertmanager. A post that fails waits, like an
// alert mail, in the event queue (DIR/alertmanager, when `set eventqueue` is set, else in
// memory) and is tried again at the start of every cycle, in the order the posts were made:
// nothing is lost across an Alertmanager outage or a kill -9 of mailwarden. A post refused for
// good (HTTP 4xx but 429) is dropped and logged.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "actions/event_queue.h"
#include "config/model.h"
#include "net/io_context.h"
#include "net/task.h"
#include "util/handles.h"

namespace mw::actions {

class AlertmanagerPoster {
 public:
  explicit AlertmanagerPoster(IoContext& io);
  ~AlertmanagerPoster();
  AlertmanagerPoster(const AlertmanagerPoster&) = delete;
  AlertmanagerPoster& operator=(const AlertmanagerPoster&) = delete;

  void configure(const config::Config& config);
  [[nodiscard]] bool enabled() const { return settings_.enabled(); }
  // One alert (report::alertmanager_alert) for every configured Alertmanager.
  void add(nlohmann::json alert);
  // A cycle starts: posts that wait are tried again.
  void retry();
  // Makes the posts made so far durable (before the state file records their changes).
  void persist();
  // Posts that wait, and the results so far (for tests and /metrics).
  [[nodiscard]] size_t waiting() const { return waiting_.size(); }
  void on_result(std::function<void(bool ok)> cb) { result_cb_ = std::move(cb); }

 private:
  static void on_soon(evutil_socket_t, short, void* arg);
  void make_posts();
  void flush();
  Task<void> post_all();

  IoContext& io_;
  http::AlertmanagerSettings settings_;
  EventQueue queue_;
  bool queue_tried_ = false;
  nlohmann::json pending_ = nlohmann::json::array();  // alerts not yet made into posts
  std::map<uint64_t, Outgoing> waiting_;              // posts, by sequence number
  uint64_t next_memory_seq_ = 1;
  EventPtr soon_;
  bool flushing_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::function<void(bool)> result_cb_;
};

}  // namespace mw::actions
