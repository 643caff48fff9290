// The safety rules of check director, apart from any I/O so that they can be tested as a table:
// which of the backends that failed their rapid polls may be taken down now.
#pragma once

#include <string>
#include <vector>

#include "protocols/director_client.h"

namespace mw::checks::director {

struct Takedown {
  std::string ip;
  bool allowed = false;
  std::string reason;  // why not, when !allowed
};

// `hosts`: every backend HOST-LIST showed. `candidates`: the IPs that failed their rapid polls,
// in the order they are to be taken down. A candidate is held back when taking it down would
// put more backends down at once than `max_down` (a count, or a percentage of the listed
// backends, rounded down) allows, or when it is the last backend of its tag that is up with a
// vhost count above 0.
[[nodiscard]] std::vector<Takedown> decide_takedowns(const std::vector<mw::director::Host>& hosts,
                                                     const std::vector<std::string>& candidates,
                                                     int max_down, bool max_down_percent);

// The number of backends that may be down at once.
[[nodiscard]] int down_limit(size_t listed, int max_down, bool max_down_percent);

// The verdict of rapid mode so far: decided when enough polls failed, or when too few rounds
// are left for them to fail.
enum class RapidVerdict { undecided, dead, alive };
[[nodiscard]] RapidVerdict rapid_verdict(int rounds, int fails_needed, int done, int failed);

}  // namespace mw::checks::director
