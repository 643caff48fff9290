// Unix accounts as NSS knows them (files, LDAP, SSSD...): group membership for "allow @group"
// and whether the daemon's user may read /etc/shadow. A lookup may wait on a directory server:
// the daemon calls these off its event loop (or at start, for -t).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace mw::accounts {

// The groups of `wanted` that `user` belongs to, as NSS says (getpwnam_r for the primary group,
// getgrouplist for the supplementary ones, getgrnam_r to name them): empty when the user does
// not exist. May block on a directory service: never called on the event loop.
[[nodiscard]] std::vector<std::string> member_groups(const std::string& user,
                                                     const std::vector<std::string>& wanted);

// Whether a Unix group of this name exists now (getgrnam_r).
[[nodiscard]] bool group_exists(const std::string& group);

// Whether a process running as `uid` with the groups of user `name` (primary `gid` and its
// supplementary groups) may read /etc/shadow, which pam_unix needs to check the passwords of
// other users.
[[nodiscard]] bool can_read_shadow(uid_t uid, gid_t gid, const std::string& name,
                                   const std::string& shadow = "/etc/shadow");

}  // namespace mw::accounts
