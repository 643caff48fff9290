#include "net/gate.h"

#include <algorithm>

#include "util/clock.h"

namespace mw {
namespace {

// Pauses the scope's deadline while a probe waits for its turn.
class DeadlinePause {
 public:
  explicit DeadlinePause(Scope& scope) : scope_(scope) { scope_.pause_deadline(); }
  ~DeadlinePause() { scope_.resume_deadline(); }
  DeadlinePause(const DeadlinePause&) = delete;
  DeadlinePause& operator=(const DeadlinePause&) = delete;

 private:
  Scope& scope_;
};

}  // namespace

Gate::~Gate() = default;

void Gate::Pass::release() {
  if (gate_) gate_->leave(id_);
  gate_ = nullptr;
}

Task<Gate::Pass> Gate::enter(Scope& scope) {
  if (!base_) base_ = scope.base();
  expire();
  if (holders_.size() >= capacity_) {
    DeadlinePause pause(scope);
    Waiter waiter(scope);
    while (holders_.size() >= capacity_) {
      queue_.push_back(&waiter);
      arm_timer();
      try {
        (void)co_await waiter.wait(0);
      } catch (...) {
        queue_.erase(std::remove(queue_.begin(), queue_.end(), &waiter), queue_.end());
        throw;
      }
      queue_.erase(std::remove(queue_.begin(), queue_.end(), &waiter), queue_.end());
    }
  }
  uint64_t id = ++next_id_;
  holders_.push_back(Holder{id, clock::now_ms()});
  co_return Pass(this, id);
}

void Gate::leave(uint64_t id) {
  auto it =
      std::find_if(holders_.begin(), holders_.end(), [id](const Holder& h) { return h.id == id; });
  if (it == holders_.end()) return;  // its lease ran out: it no longer counted
  holders_.erase(it);
  wake_waiters();
}

void Gate::expire() {
  int64_t now = clock::now_ms();
  bool freed = false;
  while (!holders_.empty() && holders_.front().since_ms + lease_ms_ <= now) {
    holders_.pop_front();
    freed = true;
  }
  if (freed) wake_waiters();
}

// A woken waiter runs at once, inside notify(), and takes its place (or queues again); so wake
// one at a time and look again.
void Gate::wake_waiters() {
  while (!queue_.empty() && holders_.size() < capacity_) {
    Waiter* next = queue_.front();
    queue_.pop_front();
    next->notify();
  }
  arm_timer();
}

void Gate::arm_timer() {
  if (!base_ || queue_.empty() || holders_.empty()) return;
  if (!timer_) timer_.reset(evtimer_new(base_, &Gate::on_timer, this));
  int64_t wait = std::max<int64_t>(holders_.front().since_ms + lease_ms_ - clock::now_ms(), 0);
  timeval tv{static_cast<time_t>(wait / 1000), static_cast<suseconds_t>((wait % 1000) * 1000)};
  evtimer_add(timer_.get(), &tv);
}

void Gate::on_timer(evutil_socket_t, short, void* arg) {
  static_cast<Gate*>(arg)->expire();
  static_cast<Gate*>(arg)->arm_timer();
}

}  // namespace mw
