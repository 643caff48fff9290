// What the replication check carries from one run to the next (the state file keeps it, as the
// old plugin kept its status file): the users checked in the current pass over all users, the
// last statuses seen of every mailbox on every server, and the invalid users. Pure data: the
// network side is in replication.cc.
#pragma once

#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mw::checks::replication {

// A mailbox's STATUS on each server, in server order; nullopt: the mailbox is missing there.
using Statuses = std::vector<std::optional<std::string>>;

struct InvalidUser {
  std::string reason;
  time_t since = 0;  // when it was last tried
};

// A user is retried this long after its login failed or its INBOX was missing, not every cycle
// (each failed proxy login costs seconds of the server's penalty).
constexpr time_t kInvalidRecheckSeconds = 3600;

class Progress {
 public:
  [[nodiscard]] static Progress from_json(const nlohmann::json& memory);
  [[nodiscard]] nlohmann::json to_json() const;

  // The users to check this run, in order: `universe` (the configured or discovered users, or
  // with `failed_only` those of them with a mailbox out of sync) less the ones checked in this
  // pass and the invalid users not yet due. Starts a new pass when the last one is complete.
  // Forgets users no longer in `all_users`.
  [[nodiscard]] std::vector<std::string> plan(const std::vector<std::string>& all_users,
                                              bool failed_only, time_t now);

  // A user's mailboxes as just seen (replacing what was known of that user).
  void record(const std::string& user, std::map<std::string, Statuses> mailboxes);
  void record_invalid(const std::string& user, const std::string& reason, time_t now);
  // Marks the user done for this pass (also when invalid).
  void mark_checked(const std::string& user);

  struct Mismatch {
    std::string user;
    std::string mailbox;
    Statuses statuses;
  };
  [[nodiscard]] std::vector<Mismatch> out_of_sync() const;
  [[nodiscard]] size_t invalid_count() const { return invalid_.size(); }

  // Servers whose admin cannot list the users' mailboxes although the users could be checked
  // there (a Dovecot master user cannot log in as itself): not asked again for an hour, since
  // each refused login costs the server's penalty and a line in its log.
  void record_unlisted(const std::string& server, time_t now) { unlisted_[server] = now; }
  void record_listed(const std::string& server) { unlisted_.erase(server); }
  [[nodiscard]] bool listing_due(const std::string& server, time_t now) const;
  [[nodiscard]] bool pass_complete() const { return pass_complete_; }
  [[nodiscard]] size_t pass_size() const { return pass_size_; }

  // What status --json shows: checked, statuses, invalid_users (the plugin's keys) and more.
  [[nodiscard]] nlohmann::json details(size_t checked_this_run, size_t compared_this_run) const;

  [[nodiscard]] static bool differs(const Statuses& s);

 private:
  std::vector<std::string> checked_;
  std::map<std::string, std::map<std::string, Statuses>> statuses_;
  std::map<std::string, InvalidUser> invalid_;
  std::map<std::string, time_t> unlisted_;  // server (as shown) -> when its admin last failed
  std::set<std::string> pending_;           // users of this pass not checked yet
  // Each user's place in the configured (or discovered) order: `checked` is kept in that
  // order whatever order the concurrent checks finished in.
  std::map<std::string, size_t> order_;
  bool pass_complete_ = false;
  size_t pass_size_ = 0;
};

}  // namespace mw::checks::replication
