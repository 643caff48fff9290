#include "checks/director/policy.h"

#include <algorithm>
#include <map>
#include <set>

namespace mw::checks::director {

int down_limit(size_t listed, int max_down, bool max_down_percent) {
  if (!max_down_percent) return max_down;
  return static_cast<int>(listed * static_cast<size_t>(max_down) / 100);
}

std::vector<Takedown> decide_takedowns(const std::vector<mw::director::Host>& hosts,
                                       const std::vector<std::string>& candidates, int max_down,
                                       bool max_down_percent) {
  const int limit = down_limit(hosts.size(), max_down, max_down_percent);
  int down = 0;
  std::map<std::string, int> serving;  // tag -> backends up with vhosts > 0
  std::set<std::string> up;
  for (const auto& h : hosts) {
    if (!h.up) ++down;
    if (h.up && h.vhosts > 0) {
      ++serving[h.tag];
      up.insert(h.ip);
    }
  }
  std::vector<Takedown> out;
  for (const auto& ip : candidates) {
    Takedown t;
    t.ip = ip;
    auto host = std::find_if(hosts.begin(), hosts.end(),
                             [&](const mw::director::Host& h) { return h.ip == ip; });
    if (host == hosts.end() || !up.count(ip)) {
      t.reason = "it is not an up backend with vhosts";
    } else if (down >= limit) {
      t.reason = "max down " + std::to_string(max_down) + (max_down_percent ? "%" : "") +
                 " allows " + std::to_string(limit) + " backend" + (limit == 1 ? "" : "s") +
                 " down at once and " + std::to_string(down) + " already " +
                 (down == 1 ? "is" : "are");
    } else if (serving[host->tag] <= 1) {
      t.reason = "it is the last up backend" +
                 (host->tag.empty() ? std::string() : " of tag '" + host->tag + "'");
    } else {
      t.allowed = true;
      ++down;
      --serving[host->tag];
    }
    out.push_back(t);
  }
  return out;
}

RapidVerdict rapid_verdict(int rounds, int fails_needed, int done, int failed) {
  if (failed >= fails_needed) return RapidVerdict::dead;
  int left = rounds - done;
  if (failed + left < fails_needed) return RapidVerdict::alive;
  return RapidVerdict::undecided;
}

}  // namespace mw::checks::director
