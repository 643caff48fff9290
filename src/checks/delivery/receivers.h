// Where the delivery check looks for its probe: an IMAP mailbox (IDLE where offered, else
// polling), a POP3 maildrop (polling, a new session each time: a maildrop does not change under
// an open session), a drop directory or an FTP directory (polling), or an IRC channel (joined,
// reading what is said there). Each is opened before the probe is sent, so
// that what was there already is not mistaken for the probe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::delivery {

class Receiver {
 public:
  virtual ~Receiver() = default;
  // Connects and logs in (IMAP: and selects the mailbox); notes what is already there.
  virtual Task<void> open() = 0;
  // The ids (UIDs, message numbers, file names) of the messages carrying `token`; with
  // `include_old` also among those that were there before open() (late probes of past runs).
  virtual Task<std::vector<std::string>> find(const std::string& token, bool include_old) = 0;
  // Returns once something may have changed, at most `ms` later.
  virtual Task<void> wait_for_change(int64_t ms) = 0;
  virtual Task<std::string> fetch(const std::string& id) = 0;
  virtual Task<void> remove(const std::vector<std::string>& ids) = 0;
  virtual Task<void> close() = 0;
  // Whether find(token, true) is cheap enough to clean up probes of earlier runs.
  [[nodiscard]] virtual bool can_find_old() const { return true; }
  // Why what fetch() returned is not the probe as sent, or empty (see alteration()).
  [[nodiscard]] virtual std::string altered(const std::string& text,
                                            const std::string& token) const;
};

[[nodiscard]] std::unique_ptr<Receiver> make_receiver(RunContext& ctx,
                                                      const config::DeliveryCheck& dc);

// A message dropped into `dir` as the file sender does it (write, then rename into place).
void drop_file(const std::string& dir, const std::string& token, const std::string& message);

}  // namespace mw::checks::delivery
