// Admission control for expensive steps shared by every probe of the process: at most
// `capacity` holders at once, the others wait in order. TLS handshakes go through one: a
// handshake in flight holds ~30 KB of OpenSSL buffers, and a thousand at once buy nothing on a
// single-threaded loop (set limits { handshakes: N }).
#pragma once

#include <cstddef>
#include <deque>

#include "net/scope.h"
#include "net/task.h"

namespace mw {

class Gate {
 public:
  explicit Gate(size_t capacity) : capacity_(capacity ? capacity : 1) {}
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // A place in the gate, given back on destruction.
  class Pass {
   public:
    Pass() = default;
    explicit Pass(Gate* g) : gate_(g) {}
    Pass(Pass&& o) noexcept : gate_(o.gate_) { o.gate_ = nullptr; }
    Pass& operator=(Pass&& o) noexcept {
      if (this != &o) {
        release();
        gate_ = o.gate_;
        o.gate_ = nullptr;
      }
      return *this;
    }
    ~Pass() { release(); }
    void release();

   private:
    Gate* gate_ = nullptr;
  };

  // Waits (without an inactivity timeout; the scope's deadline still applies) for a place.
  Task<Pass> enter(Scope& scope);
  [[nodiscard]] size_t in_use() const { return used_; }
  [[nodiscard]] size_t waiting() const { return queue_.size(); }

 private:
  void leave();

  size_t capacity_;
  size_t used_ = 0;
  std::deque<Waiter*> queue_;
};

}  // namespace mw
