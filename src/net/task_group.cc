#include "net/task_group.h"

#include <cstdlib>

namespace mw {

TaskGroup::~TaskGroup() {
  // A child still running would call back into a destroyed group.
  if (running_ != 0) abort();
}

Task<void> TaskGroup::spawn(Task<void> task) {
  while (running_ >= cap_) (void)co_await waiter_.wait_uncancellable();
  ++running_;
  start_detached(std::move(task), [this](std::exception_ptr e) {
    if (e && !first_error_) first_error_ = e;
    --running_;
    waiter_.notify();
  });
}

Task<void> TaskGroup::join() {
  while (running_ > 0) (void)co_await waiter_.wait_uncancellable();
  scope_.check();
  if (first_error_) std::rethrow_exception(first_error_);
}

}  // namespace mw
