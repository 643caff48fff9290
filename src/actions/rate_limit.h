// "exec ... with rate limit N per M seconds": a token bucket per action. A bucket holds at most
// N tokens and gains N per M seconds; a run takes one, a run that finds none is suppressed and
// counted. Buckets live in the state file (wall-clock times), so a restart does not refill them.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "config/model.h"

namespace mw::actions {

class RateLimiter {
 public:
  struct Verdict {
    bool allowed = false;
    int64_t suppressed = 0;  // runs suppressed so far under this key
  };

  // One run of the action `key` at wall-clock time `now_ms`.
  [[nodiscard]] Verdict take(const std::string& key, const config::RateLimit& rate, int64_t now_ms);

  [[nodiscard]] nlohmann::json save() const;
  void restore(const nlohmann::json& j);
  [[nodiscard]] size_t size() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    int64_t updated_ms = 0;
    int64_t suppressed = 0;
  };
  std::map<std::string, Bucket> buckets_;
};

}  // namespace mw::actions
