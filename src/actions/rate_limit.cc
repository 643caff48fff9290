#include "actions/rate_limit.h"

#include <algorithm>

namespace mw::actions {

RateLimiter::Verdict RateLimiter::take(const std::string& key, const config::RateLimit& rate,
                                       int64_t now_ms) {
  double capacity = std::max(rate.count, 1);
  auto [it, fresh] = buckets_.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = capacity;
    b.updated_ms = now_ms;
  }
  // A clock set back refills nothing (and does not drain either).
  int64_t elapsed = std::max<int64_t>(0, now_ms - b.updated_ms);
  double per_ms = capacity / (std::max(rate.per_seconds, 1) * 1000.0);
  b.tokens = std::min(capacity, b.tokens + static_cast<double>(elapsed) * per_ms);
  b.updated_ms = std::max(b.updated_ms, now_ms);
  Verdict v;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    v.allowed = true;
  } else {
    ++b.suppressed;
  }
  v.suppressed = b.suppressed;
  return v;
}

nlohmann::json RateLimiter::save() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, b] : buckets_)
    j[key] = {{"tokens", b.tokens}, {"updated_ms", b.updated_ms}, {"suppressed", b.suppressed}};
  return j;
}

void RateLimiter::restore(const nlohmann::json& j) {
  buckets_.clear();
  if (!j.is_object()) return;
  for (const auto& [key, v] : j.items()) {
    if (!v.is_object()) continue;
    Bucket b;
    b.tokens = std::max(0.0, v.value("tokens", 0.0));
    b.updated_ms = v.value("updated_ms", int64_t{0});
    b.suppressed = v.value("suppressed", int64_t{0});
    buckets_[key] = b;
  }
}

}  // namespace mw::actions
