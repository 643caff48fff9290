// "director down|up|flush" actions: a director-admin command about a backend, run without
// blocking the loop, each on its own connection with its own deadline, the outcome logged.
// down = HOST-DOWN then HOST-RESET-USERS (users move to the other backends, as `doveadm
// director flush` does), up = HOST-UP, flush = HOST-FLUSH.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "config/model.h"
#include "net/endpoint.h"
#include "net/io_context.h"

namespace mw::actions {

class DirectorRunner {
 public:
  explicit DirectorRunner(IoContext& io) : io_(io) {}

  // Sends the command for `backend` (an IP as HOST-LIST shows it) to `admin`. `done` (optional)
  // gets the outcome: empty when the director answered OK, else why not.
  void run(config::DirectorOp op, const Endpoint& admin, const std::string& backend,
           const std::string& label, std::function<void(const std::string&)> done = {});
  [[nodiscard]] int running() const { return running_; }

  static constexpr int64_t kTimeoutMs = 10000;
  static constexpr int64_t kDeadlineMs = 120000;  // a ring sync may take 30 s per command

 private:
  IoContext& io_;
  int running_ = 0;
};

[[nodiscard]] const char* director_op_name(config::DirectorOp op);

}  // namespace mw::actions
