// Admission control for expensive steps shared by every probe of the process: at most
// `capacity` holders at once, the others wait in order. TLS handshakes go through one: a
// handshake in flight holds ~30 KB of OpenSSL buffers, and a thousand at once buy nothing on a
// single-threaded loop (set limits { handshakes: N }).
//
// A place is leased, not owned: a holder still inside after `lease_ms` (a server that accepted
// the connection and never answers the handshake) stops counting, and the next in line goes
// in. So hung peers cannot starve healthy ones, and time spent waiting here does not count
// against the waiting probe's deadline (its turn has not come yet).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "net/scope.h"
#include "net/task.h"
#include "util/handles.h"

namespace mw {

class Gate {
 public:
  static constexpr int64_t kDefaultLeaseMs = 100;

  explicit Gate(size_t capacity, int64_t lease_ms = kDefaultLeaseMs)
      : capacity_(capacity ? capacity : 1), lease_ms_(lease_ms > 0 ? lease_ms : 1) {}
  ~Gate();
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // A place in the gate, given back on destruction.
  class Pass {
   public:
    Pass() = default;
    Pass(Gate* g, uint64_t id) : gate_(g), id_(id) {}
    Pass(Pass&& o) noexcept : gate_(o.gate_), id_(o.id_) { o.gate_ = nullptr; }
    Pass& operator=(Pass&& o) noexcept {
      if (this != &o) {
        release();
        gate_ = o.gate_;
        id_ = o.id_;
        o.gate_ = nullptr;
      }
      return *this;
    }
    ~Pass() { release(); }
    void release();

   private:
    Gate* gate_ = nullptr;
    uint64_t id_ = 0;
  };

  // Waits (without an inactivity timeout, and with the scope's deadline paused) for a place.
  // The scope's cancellation still ends the wait.
  Task<Pass> enter(Scope& scope);
  // Holders that still count against the capacity.
  [[nodiscard]] size_t in_use() const { return holders_.size(); }
  [[nodiscard]] size_t waiting() const { return queue_.size(); }

 private:
  struct Holder {
    uint64_t id;
    int64_t since_ms;
  };
  void leave(uint64_t id);
  // Holders past their lease stop counting; the waiters next in line are woken.
  void expire();
  void wake_waiters();
  void arm_timer();
  static void on_timer(evutil_socket_t, short, void* arg);

  size_t capacity_;
  int64_t lease_ms_;
  std::deque<Holder> holders_;  // oldest first
  std::deque<Waiter*> queue_;
  uint64_t next_id_ = 0;
  event_base* base_ = nullptr;
  EventPtr timer_;
};

}  // namespace mw
