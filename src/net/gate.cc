#include "net/gate.h"

#include <algorithm>

namespace mw {

void Gate::Pass::release() {
  if (gate_) gate_->leave();
  gate_ = nullptr;
}

Task<Gate::Pass> Gate::enter(Scope& scope) {
  Waiter waiter(scope);
  while (used_ >= capacity_) {
    queue_.push_back(&waiter);
    try {
      (void)co_await waiter.wait(0);
    } catch (...) {
      queue_.erase(std::remove(queue_.begin(), queue_.end(), &waiter), queue_.end());
      throw;
    }
    queue_.erase(std::remove(queue_.begin(), queue_.end(), &waiter), queue_.end());
  }
  ++used_;
  co_return Pass(this);
}

void Gate::leave() {
  --used_;
  if (!queue_.empty()) {
    Waiter* next = queue_.front();
    queue_.pop_front();
    next->notify();  // it takes the place when it runs
  }
}

}  // namespace mw
