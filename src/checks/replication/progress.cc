#include "checks/replication/progress.h"

#include <algorithm>
#include <set>

namespace mw::checks::replication {
namespace {

using nlohmann::json;

constexpr size_t kMaxMismatchesShown = 1000;

}  // namespace

bool Progress::differs(const Statuses& s) {
  for (const auto& x : s)
    if (!x || x != s.front()) return true;
  return false;
}

Progress Progress::from_json(const json& m) {
  Progress p;
  if (!m.is_object()) return p;
  if (m.contains("checked") && m["checked"].is_array())
    for (const auto& u : m["checked"])
      if (u.is_string()) p.checked_.push_back(u.get<std::string>());
  if (m.contains("statuses") && m["statuses"].is_object()) {
    for (const auto& [user, boxes] : m["statuses"].items()) {
      if (!boxes.is_object()) continue;
      auto& mine = p.statuses_[user];
      for (const auto& [box, list] : boxes.items()) {
        if (!list.is_array()) continue;
        Statuses s;
        for (const auto& v : list)
          s.push_back(v.is_string() ? std::optional<std::string>(v.get<std::string>())
                                    : std::nullopt);
        mine[box] = std::move(s);
      }
    }
  }
  if (m.contains("unlisted") && m["unlisted"].is_object())
    for (const auto& [server, since] : m["unlisted"].items())
      if (since.is_number_integer()) p.unlisted_[server] = since.get<time_t>();
  if (m.contains("invalid") && m["invalid"].is_object())
    for (const auto& [user, v] : m["invalid"].items())
      if (v.is_object())
        p.invalid_[user] = InvalidUser{v.value("reason", ""), v.value("since", time_t{0})};
  return p;
}

json Progress::to_json() const {
  json statuses = json::object();
  for (const auto& [user, boxes] : statuses_) {
    json b = json::object();
    for (const auto& [box, list] : boxes) {
      json l = json::array();
      for (const auto& s : list) l.push_back(s ? json(*s) : json(nullptr));
      b[box] = std::move(l);
    }
    statuses[user] = std::move(b);
  }
  json invalid = json::object();
  for (const auto& [user, v] : invalid_) invalid[user] = {{"reason", v.reason}, {"since", v.since}};
  json out = {
      {"checked", checked_}, {"statuses", std::move(statuses)}, {"invalid", std::move(invalid)}};
  if (!unlisted_.empty()) out["unlisted"] = unlisted_;
  return out;
}

bool Progress::listing_due(const std::string& server, time_t now) const {
  auto it = unlisted_.find(server);
  return it == unlisted_.end() || now - it->second >= kInvalidRecheckSeconds;
}

std::vector<std::string> Progress::plan(const std::vector<std::string>& all_users, bool failed_only,
                                        time_t now) {
  std::set<std::string> known(all_users.begin(), all_users.end());
  order_.clear();
  for (size_t i = 0; i < all_users.size(); ++i) order_.emplace(all_users[i], i);
  std::erase_if(statuses_, [&](const auto& kv) { return !known.count(kv.first); });
  std::erase_if(invalid_, [&](const auto& kv) { return !known.count(kv.first); });
  std::erase_if(checked_, [&](const std::string& u) { return !known.count(u); });

  // Failed only needs something known: before any run it checks everyone once.
  if (statuses_.empty()) failed_only = false;
  std::vector<std::string> universe;
  for (const auto& u : all_users) {
    if (failed_only) {
      auto it = statuses_.find(u);
      bool failing =
          it != statuses_.end() && std::any_of(it->second.begin(), it->second.end(),
                                               [](const auto& kv) { return differs(kv.second); });
      if (!failing) continue;
    }
    if (auto it = invalid_.find(u);
        it != invalid_.end() && now - it->second.since < kInvalidRecheckSeconds)
      continue;
    universe.push_back(u);
  }
  std::set<std::string> done(checked_.begin(), checked_.end());
  std::vector<std::string> remaining;
  for (const auto& u : universe)
    if (!done.count(u)) remaining.push_back(u);
  if (remaining.empty()) {  // the last pass is complete: begin the next one
    checked_.clear();
    remaining = universe;
  }
  pass_size_ = universe.size();
  pending_ = std::set<std::string>(remaining.begin(), remaining.end());
  pass_complete_ = pending_.empty();
  return remaining;
}

void Progress::record(const std::string& user, std::map<std::string, Statuses> mailboxes) {
  invalid_.erase(user);
  statuses_[user] = std::move(mailboxes);
}

void Progress::record_invalid(const std::string& user, const std::string& reason, time_t now) {
  statuses_.erase(user);
  invalid_[user] = InvalidUser{reason, now};
}

void Progress::mark_checked(const std::string& user) {
  if (std::find(checked_.begin(), checked_.end(), user) == checked_.end()) {
    auto place = [this](const std::string& u) {
      auto it = order_.find(u);
      return it == order_.end() ? order_.size() : it->second;
    };
    auto at = std::upper_bound(
        checked_.begin(), checked_.end(), user,
        [&](const std::string& a, const std::string& b) { return place(a) < place(b); });
    checked_.insert(at, user);
  }
  pending_.erase(user);
  pass_complete_ = pending_.empty();
}

std::vector<Progress::Mismatch> Progress::out_of_sync() const {
  std::vector<Mismatch> out;
  for (const auto& [user, boxes] : statuses_)
    for (const auto& [box, s] : boxes)
      if (differs(s)) out.push_back(Mismatch{user, box, s});
  return out;
}

json Progress::details(size_t checked_this_run, size_t compared_this_run) const {
  json d = to_json();
  d.erase("invalid");
  d.erase("unlisted");
  json invalid = json::array();
  json reasons = json::object();
  for (const auto& [user, v] : invalid_) {
    invalid.push_back(user);
    reasons[user] = v.reason;
  }
  d["invalid_users"] = std::move(invalid);
  d["invalid_user_reasons"] = std::move(reasons);
  json mismatches = json::array();
  auto all = out_of_sync();
  for (size_t i = 0; i < all.size() && i < kMaxMismatchesShown; ++i) {
    json servers = json::array();
    for (const auto& s : all[i].statuses) servers.push_back(s ? json(*s) : json(nullptr));
    mismatches.push_back(
        {{"user", all[i].user}, {"mailbox", all[i].mailbox}, {"servers", servers}});
  }
  d["out_of_sync"] = std::move(mismatches);
  d["pass_complete"] = pass_complete_;
  d["users_in_pass"] = pass_size_;
  d["users_checked_this_run"] = checked_this_run;
  d["mailboxes_compared_this_run"] = compared_this_run;
  return d;
}

}  // namespace mw::checks::replication
