#include "daemon/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mw::daemon {

std::vector<std::string> root_reasons(const config::Config& config) {
  std::vector<std::string> reasons;
  const auto& user = config.settings.user;
  auto exec_needs_root = [&](const config::ExecSpec& e) {
    if (!e.uid && !e.gid) return false;
    if (!user) return true;
    return (e.uid && *e.uid != user->uid) || (e.gid && *e.gid != user->gid);
  };
  for (const auto& svc : config.services)
    for (const auto& chk : svc.checks)
      for (const auto& rule : chk.rules)
        for (const auto* list : {&rule.fail_actions, &rule.ok_actions})
          for (const auto& a : *list) {
            if (a.kind != config::ActionKind::exec || !exec_needs_root(*a.exec)) continue;
            std::string who = a.exec->uid ? "as uid " + std::to_string(*a.exec->uid)
                                          : "as gid " + std::to_string(*a.exec->gid);
            reasons.push_back(rule.where.str() + ": exec \"" + a.exec->command + "\" " + who +
                              " (running a program as another user needs root)");
          }
  return reasons;
}

namespace {

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "\n  " + l;
  return out;
}

}  // namespace

PrivilegePlan plan_privileges(const config::Config& config, uid_t euid, bool allow_root) {
  using Kind = PrivilegePlan::Kind;
  const auto& user = config.settings.user;
  auto reasons = root_reasons(config);
  if (euid != 0) {
    if (user && user->uid != euid)
      return {Kind::refuse, "'set user " + user->name + "' (" + user->where.str() +
                                ") asks for uid " + std::to_string(user->uid) +
                                ", but mailwarden runs as uid " + std::to_string(euid) +
                                " and cannot change users: start it as root or as " + user->name};
    if (!reasons.empty())
      return {Kind::as_is, "not running as root: these will fail:" + joined(reasons)};
    return {Kind::as_is, ""};
  }
  if (user && user->uid == 0) return {Kind::keep_root, "running as root: 'set user root' says so"};
  if (user) {
    if (!reasons.empty())
      return {Kind::refuse, "'set user " + user->name + "' (" + user->where.str() +
                                ") cannot be honoured: the control file needs root for" +
                                joined(reasons) +
                                "\nremove 'set user' to run as root, or change these"};
    return {Kind::drop, "running as " + user->name + " (uid " + std::to_string(user->uid) +
                            ", gid " + std::to_string(user->gid) + ") as 'set user' asks"};
  }
  if (!reasons.empty()) return {Kind::keep_root, "running as root, which" + joined(reasons)};
  if (allow_root) return {Kind::keep_root, "running as root: MAILWARDEN_ALLOW_ROOT=1 says so"};
  return {Kind::refuse,
          "refusing to run as root: nothing in the control file needs it. Add 'set user "
          "mailwarden' (any unprivileged user) to drop to it after start-up, start mailwarden "
          "as that user, or set MAILWARDEN_ALLOW_ROOT=1 to run as root anyway"};
}

bool drop_to(const config::RunAs& user, std::string& error) {
  if (initgroups(user.name.c_str(), user.gid) != 0 && setgroups(0, nullptr) != 0) {
    error = std::string("cannot set the groups of ") + user.name + ": " + strerror(errno);
    return false;
  }
  if (setgid(user.gid) != 0 || setuid(user.uid) != 0) {
    error = std::string("cannot become ") + user.name + ": " + strerror(errno);
    return false;
  }
  if (user.uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
    error = "root could be regained after dropping to " + user.name;
    return false;
  }
  return true;
}

}  // namespace mw::daemon
