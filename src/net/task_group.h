// Runs child tasks of one probe concurrently, at most `cap` at a time (the replication check runs
// users in parallel this way). The parent must co_await join() before the group goes away;
// neither spawn() nor join() ends early on cancellation: join() waits until every child has
// finished (children see the scope's cancellation themselves), then rethrows the scope's error
// or the first child's error.
#pragma once

#include <cstddef>
#include <exception>

#include "net/scope.h"
#include "net/task.h"

namespace mw {

class TaskGroup {
 public:
  TaskGroup(Scope& scope, size_t cap) : scope_(scope), waiter_(scope), cap_(cap ? cap : 1) {}
  ~TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Starts `task` once fewer than `cap` children run. A child's failure does not stop the others;
  // join() reports the first one.
  Task<void> spawn(Task<void> task);
  Task<void> join();
  [[nodiscard]] size_t running() const { return running_; }

 private:
  Scope& scope_;
  Waiter waiter_;
  size_t cap_;
  size_t running_ = 0;
  std::exception_ptr first_error_;
};

}  // namespace mw
