#include "util/accounts.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace mw::accounts {
namespace {

constexpr size_t kMaxNssBuffer = 1 << 20;

// getpwnam_r and getgrnam_r want a buffer of unknown size: grown on ERANGE, up to a bound.
template <typename Entry, typename Lookup>
bool nss_lookup(const std::string& name, Entry& entry, Lookup lookup) {
  std::vector<char> buf(16384);
  for (;;) {
    Entry* found = nullptr;
    int rc = lookup(name.c_str(), &entry, buf.data(), buf.size(), &found);
    if (rc == 0) return found != nullptr;
    if (rc != ERANGE || buf.size() >= kMaxNssBuffer) return false;
    buf.resize(buf.size() * 2);
  }
}

// Only the gid is kept: the entry's strings point into a buffer that is gone on return.
bool group_id(const std::string& name, gid_t& gid) {
  group gr{};
  if (!nss_lookup(name, gr, getgrnam_r)) return false;
  gid = gr.gr_gid;
  return true;
}

std::vector<gid_t> groups_of(const std::string& user, gid_t primary) {
  std::vector<gid_t> gids(64);
  for (int tries = 0; tries < 8; ++tries) {
    int n = static_cast<int>(gids.size());
    if (getgrouplist(user.c_str(), primary, gids.data(), &n) >= 0) {
      gids.resize(static_cast<size_t>(n));
      return gids;
    }
    gids.resize(std::max(static_cast<size_t>(n), gids.size() * 2));
  }
  return {primary};
}

}  // namespace

std::vector<std::string> member_groups(const std::string& user,
                                       const std::vector<std::string>& wanted) {
  passwd pw{};
  if (user.empty() || !nss_lookup(user, pw, getpwnam_r)) return {};
  std::vector<gid_t> gids = groups_of(user, pw.pw_gid);
  std::vector<std::string> out;
  for (const auto& name : wanted) {
    gid_t gid = 0;
    if (group_id(name, gid) && std::find(gids.begin(), gids.end(), gid) != gids.end())
      out.push_back(name);
  }
  return out;
}

bool group_exists(const std::string& group) {
  gid_t gid = 0;
  return group_id(group, gid);
}

bool can_read_shadow(uid_t uid, gid_t gid, const std::string& name, const std::string& shadow) {
  struct stat st;
  if (stat(shadow.c_str(), &st) != 0) return errno == ENOENT;  // no shadow file: nothing to read
  if (uid == 0) return true;
  if (st.st_uid == uid) return (st.st_mode & S_IRUSR) != 0;
  if (st.st_mode & S_IROTH) return true;
  if (!(st.st_mode & S_IRGRP)) return false;
  std::vector<gid_t> gids = name.empty() ? std::vector<gid_t>{gid} : groups_of(name, gid);
  return std::find(gids.begin(), gids.end(), st.st_gid) != gids.end();
}

}  // namespace mw::accounts
