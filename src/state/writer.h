// Writes the state file off the event loop. Serialising the state of ten thousand checks with
// their recent history takes long enough to delay probes and HTTP answers; so the loop only
// takes the snapshot (results are shared, not copied) and hands it over, and one worker thread
// turns it into JSON and writes it atomically (a temporary file, fsync, rename: a kill -9 at any
// moment leaves the previous or the new file, never a torn one). A newer snapshot handed over
// while one is being written replaces the one still waiting: only the latest state matters.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "state/snapshot.h"

namespace mw::state {

class Writer {
 public:
  Writer();
  ~Writer();  // writes what is waiting, then stops the thread
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Hands a snapshot over; returns at once. The error of an earlier write, if any, is returned
  // (once) so that the caller logs it from the loop.
  [[nodiscard]] std::string submit(std::string path, Snapshot snap);
  // Waits until everything handed over is on disk; the last error, if any.
  [[nodiscard]] std::string flush();

 private:
  void run();

  std::mutex mu_;
  std::condition_variable wake_, idle_;
  std::optional<std::pair<std::string, Snapshot>> pending_;
  bool writing_ = false;
  bool stop_ = false;
  std::string error_;
  std::thread thread_;
};

}  // namespace mw::state
