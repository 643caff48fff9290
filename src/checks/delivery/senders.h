// How the delivery check hands its probe over: an SMTP server (STARTTLS, AUTH), a drop
// directory, an FTP server (the probe message uploaded as a file, then renamed into place) or
// an IRC channel (one PRIVMSG carrying the token).
#pragma once

#include <memory>
#include <string>

#include "config/model.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::delivery {

class Sender {
 public:
  virtual ~Sender() = default;
  // Connects, logs in and hands over the probe carrying `token`; returns once it is accepted.
  virtual Task<void> send(const std::string& token) = 0;
};

[[nodiscard]] std::unique_ptr<Sender> make_sender(RunContext& ctx, const config::DeliveryCheck& dc);

}  // namespace mw::checks::delivery
