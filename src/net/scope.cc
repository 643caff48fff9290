#include "net/scope.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "util/clock.h"

namespace mw {

Scope::Scope(event_base* base) : base_(base) {}

Scope::~Scope() {
  *alive_ = false;
  // Waiters outlive nothing: they are members of objects a probe's coroutine frame owns, and
  // frames are destroyed before the scope. A waiter left here is a bug.
  if (!suspended_.empty()) abort();
}

namespace {
timeval to_timeval(int64_t ms) {
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}
}  // namespace

void Scope::set_deadline(int64_t ms) {
  deadline_ms_ = ms;
  deadline_at_ms_ = clock::now_ms() + ms;
  deadline_left_ms_ = ms;
  deadline_.reset(evtimer_new(base_, &Scope::on_deadline, this));
  timeval tv = to_timeval(ms);
  if (pauses_ == 0) evtimer_add(deadline_.get(), &tv);
}

void Scope::pause_deadline() {
  if (pauses_++ > 0 || !deadline_ || cancelled_) return;
  deadline_left_ms_ = std::max<int64_t>(deadline_at_ms_ - clock::now_ms(), 0);
  evtimer_del(deadline_.get());
}

void Scope::resume_deadline() {
  if (pauses_ == 0 || --pauses_ > 0 || !deadline_ || cancelled_) return;
  deadline_at_ms_ = clock::now_ms() + deadline_left_ms_;
  timeval tv = to_timeval(deadline_left_ms_);
  evtimer_add(deadline_.get(), &tv);
}

void Scope::on_deadline(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Scope*>(arg);
  std::string secs = std::to_string(self->deadline_ms_ / 1000);
  if (self->deadline_ms_ % 1000) secs += "." + std::to_string((self->deadline_ms_ % 1000) / 100);
  self->cancel(ProbeError(FailureClass::timeout,
                          "test did not finish within its deadline of " + secs + " s"));
}

void Scope::cancel(const ProbeError& error) {
  if (cancelled_) return;
  cancelled_ = error;
  if (deadline_) evtimer_del(deadline_.get());
  // Resuming a waiter may end the probe and destroy this scope, and may unregister or destroy
  // other waiters; so pick one waiter at a time and re-check after each resume.
  auto alive = alive_;
  while (*alive && !suspended_.empty()) {
    Waiter* w = suspended_.back();
    w->wake(Wake::notified);
  }
}

void Scope::check() const {
  if (cancelled_) throw *cancelled_;
}

void Scope::add_secret(std::string_view secret) {
  // Shorter strings are no secret worth the name, and would blank out ordinary words.
  if (secret.size() < 4) return;
  for (const auto& s : secrets_)
    if (s == secret) return;
  secrets_.emplace_back(secret);
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Scope::redact(std::string_view text) const {
  std::string out(text);
  for (const auto& s : secrets_) {
    for (size_t at = out.find(s); at != std::string::npos; at = out.find(s, at + 4))
      out.replace(at, s.size(), "****");
  }
  return out;
}

Waiter::~Waiter() {
  unregister();
}

void Waiter::suspend(std::coroutine_handle<> h, int64_t timeout_ms, bool cancellable) {
  handle_ = h;
  if (cancellable) scope_.suspended_.push_back(this);
  if (timeout_ms > 0) {
    if (!timer_) timer_.reset(evtimer_new(scope_.base_, &Waiter::on_timeout, this));
    timeval tv{static_cast<time_t>(timeout_ms / 1000),
               static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
    evtimer_add(timer_.get(), &tv);
  }
}

Wake Waiter::resume_result(bool cancellable) {
  if (cancellable) scope_.check();
  return why_;
}

void Waiter::unregister() {
  auto& v = scope_.suspended_;
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
  if (timer_) evtimer_del(timer_.get());
}

void Waiter::wake(Wake why) {
  if (!handle_) return;
  why_ = why;
  unregister();
  auto h = std::exchange(handle_, {});
  h.resume();  // may destroy *this
}

void Waiter::notify() {
  wake(Wake::notified);
}

void Waiter::on_timeout(evutil_socket_t, short, void* arg) {
  static_cast<Waiter*>(arg)->wake(Wake::timed_out);
}

}  // namespace mw
