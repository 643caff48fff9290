#include "net/task.h"

namespace mw {
namespace {

// A self-destroying root coroutine: it never suspends at the start or the end.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // run_root catches everything
  };
};

Detached run_root(Task<void> task, std::function<void(std::exception_ptr)> done) {
  std::exception_ptr error;
  try {
    co_await task;
  } catch (...) {
    error = std::current_exception();
  }
  done(error);
}

}  // namespace

void start_detached(Task<void> task, std::function<void(std::exception_ptr)> done) {
  run_root(std::move(task), std::move(done));
}

}  // namespace mw
