// Cancellation for one probe. Every suspension point of a probe is a Waiter registered with the
// probe's Scope, so the test deadline (or a shutdown) can wake whatever the probe waits on and
// make it fail with a classified error. Timing lives here, once, not in protocol code.
#pragma once

#include <event2/event.h>

#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/failure.h"
#include "util/handles.h"

namespace mw {

class Waiter;

class Scope {
 public:
  explicit Scope(event_base* base);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  [[nodiscard]] event_base* base() const { return base_; }

  // Fails the whole probe with a timeout after `ms` milliseconds.
  void set_deadline(int64_t ms);
  // Stops the deadline's clock (waiting for a turn at a shared gate is not the probe's time);
  // resume_deadline() restarts it with what was left. Pauses nest.
  void pause_deadline();
  void resume_deadline();
  // Wakes every waiter; each throws `error` when it resumes, and every later wait throws at once.
  void cancel(const ProbeError& error);
  [[nodiscard]] bool cancelled() const { return cancelled_.has_value(); }
  // Throws the cancellation error, if any.
  void check() const;

  // A secret this probe sends (a password, its base64, a SASL blob): redact() takes every
  // occurrence of it out of a server's words before they are logged, stored or shown.
  void add_secret(std::string_view secret);
  [[nodiscard]] std::string redact(std::string_view text) const;

 private:
  friend class Waiter;
  static void on_deadline(evutil_socket_t, short, void* arg);

  event_base* base_;
  EventPtr deadline_;
  int64_t deadline_ms_ = 0;
  int64_t deadline_at_ms_ = 0;    // when it fires (monotonic), while it runs
  int64_t deadline_left_ms_ = 0;  // while paused
  int pauses_ = 0;
  std::optional<ProbeError> cancelled_;
  std::vector<Waiter*> suspended_;
  std::vector<std::string> secrets_;  // longest first
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Why a wait ended (when it did not throw).
enum class Wake { notified, timed_out };

// One place a coroutine can be suspended: resumed by notify(), by its own inactivity timeout, or
// by the scope's cancellation (then the await throws the scope's error).
class Waiter {
 public:
  explicit Waiter(Scope& scope) : scope_(scope) {}
  ~Waiter();
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  struct Awaitable {
    Waiter& w;
    int64_t timeout_ms;
    bool cancellable;
    bool await_ready() const noexcept { return cancellable && w.scope_.cancelled(); }
    void await_suspend(std::coroutine_handle<> h) { w.suspend(h, timeout_ms, cancellable); }
    Wake await_resume() { return w.resume_result(cancellable); }
  };

  // timeout_ms <= 0: no own timeout (the scope's deadline still applies).
  [[nodiscard]] Awaitable wait(int64_t timeout_ms) { return Awaitable{*this, timeout_ms, true}; }
  // A wait the scope's cancellation does not end: only notify() does. For a parent that must
  // outlive the children it waits for (TaskGroup::join).
  [[nodiscard]] Awaitable wait_uncancellable() { return Awaitable{*this, 0, false}; }
  // Resumes the suspended coroutine, if any. The caller must not touch objects that the
  // coroutine may destroy after this returns.
  void notify();
  [[nodiscard]] bool suspended() const { return static_cast<bool>(handle_); }
  [[nodiscard]] Scope& scope() const { return scope_; }

 private:
  friend class Scope;
  void suspend(std::coroutine_handle<> h, int64_t timeout_ms, bool cancellable);
  Wake resume_result(bool cancellable);
  void unregister();
  void wake(Wake why);
  static void on_timeout(evutil_socket_t, short, void* arg);

  Scope& scope_;
  std::coroutine_handle<> handle_;
  EventPtr timer_;
  Wake why_ = Wake::notified;
};

// Suspends the calling coroutine for `ms` milliseconds (cancellable by the scope).
class Sleep {
 public:
  explicit Sleep(Scope& scope) : waiter_(scope) {}
  Waiter::Awaitable operator()(int64_t ms) { return waiter_.wait(ms); }

 private:
  Waiter waiter_;
};

}  // namespace mw
