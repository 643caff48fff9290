#include "state/writer.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

namespace mw::state {

Writer::Writer() : thread_([this] { run(); }) {}

Writer::~Writer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::string Writer::submit(std::string path, Snapshot snap) {
  std::string error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace(std::move(path), std::move(snap));
    error = std::exchange(error_, {});
  }
  wake_.notify_one();
  return error;
}

std::string Writer::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return !pending_ && !writing_; });
  return std::exchange(error_, {});
}

void Writer::run() {
  // The loop thread has the tests and the HTTP answers to serve: on a busy machine the writer
  // takes what CPU is left (a nice value is per thread on Linux).
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || pending_; });
    if (!pending_) return;  // stopping, nothing left to write
    auto job = std::move(*pending_);
    pending_.reset();
    writing_ = true;
    lock.unlock();
    std::string error;
    bool ok = save(job.first, job.second, error);
    job.second = Snapshot{};  // the shared results are released outside the lock too
    lock.lock();
    writing_ = false;
    if (!ok) error_ = error;
    if (!pending_) idle_.notify_all();
  }
}

}  // namespace mw::state
