#include "actions/alertmanager.h"

#include <set>

#include "http/client.h"
#include "net/scope.h"
#include "util/log.h"

namespace mw::actions {
namespace {

constexpr int64_t kTimeoutMs = 10000;
constexpr size_t kMaxWaiting = 10000;  // posts kept at most (each holds a cycle's alerts)

}  // namespace

AlertmanagerPoster::AlertmanagerPoster(IoContext& io)
    : io_(io), soon_(evtimer_new(io.base, &AlertmanagerPoster::on_soon, this)) {}

AlertmanagerPoster::~AlertmanagerPoster() {
  *alive_ = false;
}

void AlertmanagerPoster::configure(const config::Config& config) {
  settings_ = config.settings.alertmanager;
  if (!settings_.enabled() || queue_tried_ || config.settings.eventqueue.dir.empty()) return;
  queue_tried_ = true;
  std::vector<Outgoing> found;
  std::vector<std::string> problems;
  std::string error;
  if (!queue_.open(config.settings.eventqueue.dir + "/alertmanager", found, problems, error)) {
    log::error("Alertmanager posts are kept in memory only: %s", error.c_str());
    return;
  }
  for (const auto& p : problems) log::warning("%s", p.c_str());
  for (auto& post : found) waiting_.emplace(post.seq, std::move(post));
  if (!waiting_.empty()) {
    log::info("%zu Alertmanager post(s) wait in %s", waiting_.size(), queue_.dir().c_str());
    flush();
  }
}

void AlertmanagerPoster::add(nlohmann::json alert) {
  if (!settings_.enabled()) return;
  pending_.push_back(std::move(alert));
  if (!evtimer_pending(soon_.get(), nullptr)) {
    timeval tv{0, 100000};
    evtimer_add(soon_.get(), &tv);
  }
}

void AlertmanagerPoster::on_soon(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<AlertmanagerPoster*>(arg);
  self->make_posts();
  self->flush();
}

// The alerts gathered so far become one post per Alertmanager, on disk before the first try.
void AlertmanagerPoster::make_posts() {
  if (pending_.empty()) return;
  std::string body = pending_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  size_t count = pending_.size();
  pending_ = nlohmann::json::array();
  for (const auto& url : settings_.urls) {
    if (waiting_.size() >= kMaxWaiting) {
      log::error("Alertmanager: %zu posts wait already; %zu alert(s) for %s dropped",
                 waiting_.size(), count, url.c_str());
      continue;
    }
    Outgoing post;
    post.mail_from = "alertmanager";
    post.rcpt_to = url;
    post.summary = std::to_string(count) + " alert(s)";
    post.message = body;
    std::string error;
    if (queue_.is_open() && !queue_.put(post, error)) {
      log::error("Alertmanager: cannot keep a post in the event queue (%s); kept in memory",
                 error.c_str());
    }
    if (!queue_.is_open() || post.file.empty()) post.seq = (1ULL << 62) + next_memory_seq_++;
    waiting_.emplace(post.seq, std::move(post));
  }
  queue_.commit();
}

void AlertmanagerPoster::persist() {
  make_posts();
  queue_.sync();
}

void AlertmanagerPoster::retry() {
  flush();
}

void AlertmanagerPoster::flush() {
  if (flushing_ || waiting_.empty()) return;
  flushing_ = true;
  std::shared_ptr<bool> alive = alive_;
  start_detached(post_all(), [this, alive](std::exception_ptr) {
    if (!*alive) return;
    flushing_ = false;
    queue_.sync();
  });
}

// The posts in the order they were made; an Alertmanager that fails keeps its later posts for
// the next round too, so that a resolved alert never overtakes its firing one.
Task<void> AlertmanagerPoster::post_all() {
  std::shared_ptr<bool> alive = alive_;
  std::set<std::string> down;
  std::vector<uint64_t> keys;
  for (const auto& [seq, post] : waiting_) keys.push_back(seq);
  for (uint64_t seq : keys) {
    if (!*alive) co_return;
    auto it = waiting_.find(seq);
    if (it == waiting_.end() || down.count(it->second.rcpt_to)) continue;
    const Outgoing& post = it->second;
    std::string url_text = post.rcpt_to;
    http::Url url;
    std::string error;
    if (!http::parse_url(url_text, url, error)) {
      log::error("Alertmanager: %s; post dropped", error.c_str());
      queue_.remove(post);
      waiting_.erase(it);
      continue;
    }
    http::Request req;
    req.method = "POST";
    req.path = "/api/v2/alerts";
    req.headers = {{"Content-Type", "application/json"}};
    req.body = post.message;
    req.user = settings_.username;
    req.password = settings_.password;
    int status = 0;
    std::string failure;
    try {
      Scope scope(io_.base);
      scope.set_deadline(kTimeoutMs * 2);
      http::Response resp = co_await http::fetch(io_, scope, url, req, settings_.tls, kTimeoutMs);
      status = resp.status;
      if (status < 200 || status >= 300)
        failure =
            "HTTP " + std::to_string(status) + " " + resp.reason + ": " + resp.body.substr(0, 200);
    } catch (const ProbeError& e) {
      failure = e.what();
    }
    if (!*alive) co_return;
    it = waiting_.find(seq);
    if (it == waiting_.end()) continue;
    if (failure.empty()) {
      log::info("Alertmanager %s took %s", url_text.c_str(), it->second.summary.c_str());
      if (result_cb_) result_cb_(true);
      queue_.remove(it->second);
      waiting_.erase(it);
    } else if (status >= 400 && status < 500 && status != 429 && status != 408) {
      log::error("Alertmanager %s refused %s for good (dropped): %s", url_text.c_str(),
                 it->second.summary.c_str(), failure.c_str());
      if (result_cb_) result_cb_(false);
      queue_.remove(it->second);
      waiting_.erase(it);
    } else {
      log::warning("Alertmanager %s: %s; %s wait(s) for the next cycle", url_text.c_str(),
                   failure.c_str(), it->second.summary.c_str());
      if (result_cb_) result_cb_(false);
      down.insert(url_text);
    }
  }
}

}  // namespace mw::actions
