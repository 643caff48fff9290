#include "checks/replication/replication.h"

#include <algorithm>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "checks/replication/progress.h"
#include "net/failure.h"
#include "net/task_group.h"
#include "protocols/imap_client.h"
#include "util/clock.h"
#include "util/strings.h"

namespace mw::checks::replication {
namespace {

using config::MailUrl;
using config::ReplicationCheck;

constexpr size_t kMaxMailboxesPerUser = 100000;
constexpr size_t kMaxUsersDiscovered = 1000000;
constexpr size_t kMismatchesInMessage = 3;

// What one server showed of one user: mailbox -> STATUS text (items in the configured order).
struct ServerView {
  std::map<std::string, std::string> mailboxes;
  bool has_inbox = false;
};

// Shared by the users of one run (one event loop: no locking).
struct RunState {
  RunState(RunContext& c, const ReplicationCheck& r, Progress p)
      : ctx(c), rc(r), progress(std::move(p)) {}
  RunContext& ctx;
  const ReplicationCheck& rc;
  Progress progress;
  int64_t started_ms = clock::now_ms();
  bool stop = false;
  std::optional<ProbeError> fatal;  // the first failure that makes the whole run fail
  size_t checked = 0;
  size_t compared = 0;

  void fail(const ProbeError& e) {
    if (!fatal) fatal = e;
    stop = true;
  }
  [[nodiscard]] bool budget_spent() const {
    return rc.budget_ms > 0 && clock::now_ms() - started_ms >= rc.budget_ms;
  }
};

ProbeError with_context(const ProbeError& e, const std::string& prefix) {
  return ProbeError(e.cls(), prefix + e.what(), e.server_line());
}

// Connects to `server` and logs in as `user` by proxy (or as the admin itself when `user` is
// empty). STARTTLS when the URL asks for it.
Task<std::unique_ptr<Connection>> open_session(RunContext& ctx, const ReplicationCheck& rc,
                                               const MailUrl& server, const std::string& user,
                                               std::unique_ptr<imap::Session>& session) {
  std::string label = (user.empty() ? rc.admin : user) + " " + server.shown;
  auto conn = co_await ctx.open(server.endpoint, server.tls_mode, server.tls, label);
  session = std::make_unique<imap::Session>(*conn);
  co_await session->greeting();
  if (!session->capabilities_current()) co_await session->capability();
  if (server.tls_mode == config::TlsMode::starttls) {
    co_await session->starttls_command();
    co_await conn->start_tls(server.tls, server.endpoint.host);
    co_await session->capability();
  }
  if (!conn->tls_active() && !rc.allow_plaintext)
    throw ProbeError(FailureClass::missing_feature,
                     "not sending the admin's password over an unencrypted connection to " +
                         server.shown + " (use imaps or imap+starttls, or 'allow plaintext')");
  const imap::Login login = user.empty() ? imap::Login{rc.admin, rc.password, ""}
                                         : imap::Login{user, rc.password, rc.admin};
  co_await session->login(login);
  if (!session->capabilities_current()) co_await session->capability();
  co_return conn;
}

// "MESSAGES 3 UIDNEXT 4 ..." in the configured order; a missing item is the server's fault.
std::string status_text(const imap::StatusEntry& e, const std::vector<std::string>& items,
                        const std::string& line) {
  std::string out;
  for (const auto& item : items) {
    auto v = e.get(item);
    if (!v)
      throw ProbeError(
          FailureClass::protocol,
          "STATUS of " + e.mailbox + " lacks " + item + ": \"" + str::printable(line) + "\"", line);
    out += (out.empty() ? "" : " ") + item + " " + *v;
  }
  return out;
}

// Takes the LIST and STATUS lines of a reply into `view`.
void read_listing(const imap::Reply& r, const std::vector<std::string>& items, ServerView& view,
                  std::vector<std::string>* selectable) {
  std::set<std::string> listed;
  for (const auto& line : r.untagged) {
    if (str::istarts_with(line, "* LIST ")) {
      imap::ListEntry e;
      if (!imap::parse_list_response(line, e))
        throw ProbeError(FailureClass::protocol,
                         "malformed LIST response: \"" + str::printable(line) + "\"", line);
      if (!e.selectable()) continue;
      if (listed.size() >= kMaxMailboxesPerUser)
        throw ProbeError(FailureClass::protocol,
                         "more than " + std::to_string(kMaxMailboxesPerUser) + " mailboxes");
      listed.insert(e.name);
      if (selectable) selectable->push_back(e.name);
    } else if (str::istarts_with(line, "* STATUS ")) {
      imap::StatusEntry e;
      if (!imap::parse_status_response(line, e))
        throw ProbeError(FailureClass::protocol,
                         "malformed STATUS response: \"" + str::printable(line) + "\"", line);
      view.mailboxes[str::iequals(e.mailbox, "INBOX") ? "INBOX" : e.mailbox] =
          status_text(e, items, line);
    }
  }
  // RFC 5819 lets a server leave out the STATUS of a mailbox it cannot open: shown as "-".
  if (!selectable)
    for (const auto& name : listed)
      view.mailboxes.emplace(str::iequals(name, "INBOX") ? "INBOX" : name, "-");
}

void require_ok(const imap::Reply& r, const std::string& what) {
  if (r.status != "OK")
    throw ProbeError(r.status == "NO" ? FailureClass::rejected : FailureClass::protocol,
                     what + " answered: " + str::printable(r.line), r.line);
}

// One user on one server: every mailbox (or INBOX) with its STATUS.
Task<ServerView> view_user(RunContext& ctx, const ReplicationCheck& rc, const MailUrl& server,
                           const std::string& user) {
  std::unique_ptr<imap::Session> imap;
  auto conn = co_await open_session(ctx, rc, server, user, imap);
  ServerView view;
  const auto& items = rc.status_items;
  if (!rc.all_mailboxes) {
    std::string status = imap->send(imap::Session::status_command("INBOX", items));
    (void)imap->send("LOGOUT");
    imap::Reply r = co_await imap->reply(status);
    if (r.status == "OK") {
      read_listing(r, items, view, nullptr);
    } else if (r.status != "NO") {
      require_ok(r, "STATUS INBOX");
    }
  } else if (imap->has_capability("LIST-STATUS")) {
    std::string list = imap->send(imap::Session::list_command("*", items));
    (void)imap->send("LOGOUT");
    imap::Reply r = co_await imap->reply(list);
    require_ok(r, "LIST with STATUS");
    read_listing(r, items, view, nullptr);
  } else {
    imap::Reply r = co_await imap->command(imap::Session::list_command("*"));
    require_ok(r, "LIST");
    std::vector<std::string> names;
    read_listing(r, items, view, &names);
    // Every STATUS at once, then LOGOUT: one round trip whatever the number of mailboxes.
    std::vector<std::pair<std::string, std::string>> tags;
    for (const auto& name : names)
      tags.emplace_back(name, imap->send(imap::Session::status_command(name, items)));
    (void)imap->send("LOGOUT");
    for (const auto& [name, tag] : tags) {
      imap::Reply s = co_await imap->reply(tag);
      if (s.status == "NO") {
        view.mailboxes.emplace(str::iequals(name, "INBOX") ? "INBOX" : name, "-");
        continue;
      }
      require_ok(s, "STATUS " + name);
      read_listing(s, items, view, nullptr);
    }
  }
  view.has_inbox = view.mailboxes.count("INBOX") > 0;
  conn->close();  // LOGOUT went out with the last command; its BYE is not worth a round trip
  co_return view;
}

// Whether the admin itself can log in on `server` (asked when a proxy login was refused, to
// tell an invalid user from a wrong admin password).
Task<bool> admin_can_log_in(RunContext& ctx, const ReplicationCheck& rc, const MailUrl& server) {
  std::unique_ptr<imap::Session> imap;
  try {
    auto conn = co_await open_session(ctx, rc, server, "", imap);
    conn->close();
  } catch (const ProbeError& e) {
    if (e.cls() == FailureClass::auth) co_return false;
    throw;
  }
  co_return true;
}

// Checks one user on every server at once and records the outcome in the run's progress.
Task<void> check_user(RunState& run, std::string user) {
  const auto& servers = run.rc.servers;
  std::vector<std::optional<ServerView>> views(servers.size());
  std::vector<std::optional<ProbeError>> errors(servers.size());
  {
    TaskGroup group(run.ctx.scope(), servers.size());
    for (size_t i = 0; i < servers.size(); ++i) {
      auto one = [](RunState& run, std::string user, size_t i,
                    std::vector<std::optional<ServerView>>& views,
                    std::vector<std::optional<ProbeError>>& errors) -> Task<void> {
        try {
          views[i] = co_await view_user(run.ctx, run.rc, run.rc.servers[i], user);
        } catch (const ProbeError& e) {
          errors[i] = e;
        }
      };
      co_await group.spawn(one(run, user, i, views, errors));
    }
    co_await group.join();
  }
  for (size_t i = 0; i < servers.size(); ++i) {
    if (!errors[i]) continue;
    const ProbeError& e = *errors[i];
    std::string where = "user " + user + " on " + servers[i].shown + ": ";
    if (e.cls() != FailureClass::auth) {
      run.fail(with_context(e, where));
      co_return;
    }
    bool admin_ok = false;
    try {
      admin_ok = co_await admin_can_log_in(run.ctx, run.rc, servers[i]);
    } catch (const ProbeError& again) {
      run.fail(with_context(again, where));
      co_return;
    }
    if (!admin_ok) {
      run.fail(ProbeError(
          FailureClass::auth,
          "the admin " + run.rc.admin + " cannot log in on " + servers[i].shown + ": " + e.what(),
          e.server_line()));
      co_return;
    }
    run.progress.record_invalid(user,
                                "proxy login refused on " + servers[i].shown + ": " +
                                    (e.server_line().empty() ? e.what() : e.server_line()),
                                clock::wall());
    run.progress.mark_checked(user);
    ++run.checked;
    co_return;
  }
  if (!views[0]->has_inbox) {
    run.progress.record_invalid(user, "no INBOX on the reference server " + servers[0].shown,
                                clock::wall());
    run.progress.mark_checked(user);
    ++run.checked;
    co_return;
  }
  // Every mailbox of the reference, and any a replica has that the reference lacks.
  std::set<std::string> names;
  for (const auto& v : views)
    for (const auto& [name, status] : v->mailboxes) names.insert(name);
  std::map<std::string, Statuses> mailboxes;
  for (const auto& name : names) {
    Statuses s;
    for (const auto& v : views) {
      auto it = v->mailboxes.find(name);
      s.push_back(it == v->mailboxes.end() ? std::nullopt : std::optional<std::string>(it->second));
    }
    mailboxes.emplace(name, std::move(s));
  }
  run.compared += mailboxes.size();
  run.progress.record(user, std::move(mailboxes));
  run.progress.mark_checked(user);
  ++run.checked;
}

// `all users`: the admin's top-level user/... mailboxes on the reference, minus "user/".
Task<std::vector<std::string>> discover_users(RunContext& ctx, const ReplicationCheck& rc) {
  std::unique_ptr<imap::Session> imap;
  const MailUrl& reference = rc.servers[0];
  std::unique_ptr<Connection> conn;
  try {
    conn = co_await open_session(ctx, rc, reference, "", imap);
  } catch (const ProbeError& e) {
    throw with_context(e, "listing users on " + reference.shown + ": ");
  }
  auto root = co_await imap->list("");
  std::string delimiter = root.empty() || root[0].delimiter.empty() ? "/" : root[0].delimiter;
  std::string prefix = "user" + delimiter;
  auto entries = co_await imap->list(prefix + "%");
  std::vector<std::string> users;
  for (const auto& e : entries) {
    // Domain-less \Noselect placeholders stand for a user's folders, not for a user.
    if (!e.selectable() || e.name.size() <= prefix.size() || e.name.rfind(prefix, 0) != 0) continue;
    std::string user = e.name.substr(prefix.size());
    if (user.find(delimiter) != std::string::npos) continue;
    // With the netnews separator "." Cyrus shows a "." of a user name as "^".
    if (delimiter == ".") std::replace(user.begin(), user.end(), '^', '.');
    users.push_back(std::move(user));
    if (users.size() > kMaxUsersDiscovered)
      throw ProbeError(FailureClass::protocol,
                       "more than " + std::to_string(kMaxUsersDiscovered) + " users listed");
  }
  co_await imap->logout();
  co_return users;
}

std::string describe_mismatch(const Progress::Mismatch& m, const std::vector<MailUrl>& servers) {
  std::string out = m.user + " " + m.mailbox + " (";
  for (size_t i = 0; i < m.statuses.size() && i < servers.size(); ++i) {
    if (i) out += "; ";
    out += servers[i].shown + ": " + (m.statuses[i] ? *m.statuses[i] : "missing");
  }
  return out + ")";
}

// The smallest "if out of sync N mailboxes" of the check's rules (1 without one): fewer
// mismatches than that are tolerated, so they do not fail the run either.
double out_of_sync_limit(const config::Check& check) {
  int64_t limit = 0;
  for (const auto& r : check.rules)
    if (r.condition == config::Condition::out_of_sync)
      limit = limit == 0 ? std::max<int64_t>(r.threshold, 1) : std::min(limit, r.threshold);
  return static_cast<double>(limit == 0 ? 1 : limit);
}

void publish(RunState& run) {
  RunContext& ctx = run.ctx;
  ctx.memory = run.progress.to_json();
  ctx.details = run.progress.details(run.checked, run.compared);
  ctx.metrics["out_of_sync"] = static_cast<double>(run.progress.out_of_sync().size());
  ctx.metrics["invalid_users"] = static_cast<double>(run.progress.invalid_count());
  ctx.metrics["mailboxes_compared"] = static_cast<double>(run.compared);
}

Task<void> check_users(RunState& run) {
  std::vector<std::string> users = run.rc.users;
  if (run.rc.all_users) users = co_await discover_users(run.ctx, run.rc);
  auto plan = run.progress.plan(users, run.rc.failed_only, clock::wall());
  TaskGroup group(run.ctx.scope(), static_cast<size_t>(run.rc.concurrency));
  for (const auto& user : plan) {
    if (run.stop || run.budget_spent() || run.ctx.scope().cancelled()) break;
    co_await group.spawn(check_user(run, user));
  }
  co_await group.join();
}

}  // namespace

Task<void> run(RunContext& ctx) {
  const auto& rc = std::get<config::ReplicationCheck>(ctx.check().what);
  RunState state(ctx, rc, Progress::from_json(ctx.memory));
  try {
    co_await check_users(state);
  } catch (...) {
    publish(state);  // what was checked before the deadline is kept for the next run
    throw;
  }
  publish(state);
  if (state.fatal) throw *state.fatal;
  auto mismatches = state.progress.out_of_sync();
  if (static_cast<double>(mismatches.size()) >= out_of_sync_limit(ctx.check())) {
    std::string text;
    for (size_t i = 0; i < mismatches.size() && i < kMismatchesInMessage; ++i)
      text += (i ? ", " : "") + describe_mismatch(mismatches[i], rc.servers);
    if (mismatches.size() > kMismatchesInMessage)
      text += " and " + std::to_string(mismatches.size() - kMismatchesInMessage) + " more";
    throw ProbeError(FailureClass::content,
                     std::to_string(mismatches.size()) +
                         (mismatches.size() == 1 ? " mailbox" : " mailboxes") +
                         " out of sync: " + text);
  }
}

}  // namespace mw::checks::replication
