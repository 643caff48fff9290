// The state file loader, and what `mailwarden status` prints from what it loaded. Any content a
// state file can hold must give a snapshot or an error, never an exception or a crash.
#include <cstdlib>

#include "cli/report.h"
#include "fuzz_support.h"
#include "state/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path =
      mwfuzz::write_scratch("state.json", {reinterpret_cast<const char*>(data), size}, 0644);
  mw::state::Snapshot snap;
  std::string error;
  if (!mw::state::load(path, snap, error)) {
    if (error.empty()) abort();  // refused without a reason
    return 0;
  }
  mw::cli::DaemonInfo d;
  (void)mw::cli::status_text(snap, d);
  (void)mw::cli::status_json(snap, d);
  (void)mw::cli::summary_text(snap, d);
  (void)mw::state::to_text(snap);
  return 0;
}
