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

// Every user's mailboxes on one server as the admin lists them (LIST "" "user/*"): the user's
// folders by their path below the user ("" for the INBOX). One listing per server and run: a
// user's own LIST "*" makes Cyrus walk every mailbox of the server to find what is shared with
// the user, so listing per user costs the square of the number of mailboxes.
struct AdminListing {
  // false: the admin may not log in as itself or list (not Cyrus-like: a Dovecot master user,
  // say), or lists nothing under user/; then each user lists its own mailboxes.
  bool usable = false;
  std::optional<ProbeError> refusal;  // why the admin could not list
  std::string delimiter;              // the hierarchy delimiter of the admin's names
  std::vector<std::string> users;     // owners of an INBOX, in the server's order
  std::map<std::string, std::vector<std::string>> folders;
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
  std::vector<AdminListing> listings;  // per server, when every mailbox or user is wanted
  std::vector<size_t> user_views;      // per server: users seen there this run
  // Per server: the users' personal namespace, learned from the first user's NAMESPACE.
  std::vector<std::optional<imap::Namespace>> personal;

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

// Collects the replies of pipelined STATUS commands (name -> tag) into `view`: a refused
// STATUS (the mailbox went away since it was listed) shows as "-".
Task<void> collect_statuses(imap::Session& imap,
                            const std::vector<std::pair<std::string, std::string>>& tags,
                            const std::vector<std::string>& items, ServerView& view) {
  for (const auto& [name, tag] : tags) {
    imap::Reply r = co_await imap.reply(tag);
    std::string key = str::iequals(name, "INBOX") ? "INBOX" : name;
    if (r.status == "NO") {
      view.mailboxes.emplace(key, "-");
      continue;
    }
    require_ok(r, "STATUS " + name);
    bool seen = false;
    for (const auto& line : r.untagged) {
      imap::StatusEntry e;
      if (!str::istarts_with(line, "* STATUS ")) continue;
      if (!imap::parse_status_response(line, e))
        throw ProbeError(FailureClass::protocol,
                         "malformed STATUS response: \"" + str::printable(line) + "\"", line);
      // Keyed by the name asked for: a server may spell it differently (INBOX, a quoted name).
      view.mailboxes[key] = status_text(e, items, line);
      seen = true;
    }
    if (!seen)
      throw ProbeError(FailureClass::protocol,
                       "STATUS " + name + " answered OK without a STATUS response", r.line);
  }
}

// INBOX only: its STATUS and the LOGOUT in one round trip. A refused STATUS: no INBOX.
Task<ServerView> view_inbox(imap::Session& imap, const std::vector<std::string>& items) {
  ServerView view;
  std::string status = imap.send(imap::Session::status_command("INBOX", items));
  (void)imap.send("LOGOUT");
  imap::Reply r = co_await imap.reply(status);
  if (r.status == "OK") {
    read_listing(r, items, view, nullptr);
  } else if (r.status != "NO") {
    require_ok(r, "STATUS INBOX");
  }
  co_return view;
}

// Every mailbox the user itself lists: LIST-STATUS (RFC 5819) where offered, else LIST and then
// every STATUS pipelined. For servers whose admin cannot list the users' mailboxes.
Task<ServerView> view_by_user_list(imap::Session& imap, const std::vector<std::string>& items) {
  ServerView view;
  if (imap.has_capability("LIST-STATUS")) {
    std::string list = imap.send(imap::Session::list_command("*", items));
    (void)imap.send("LOGOUT");
    imap::Reply r = co_await imap.reply(list);
    require_ok(r, "LIST with STATUS");
    read_listing(r, items, view, nullptr);
    co_return view;
  }
  imap::Reply r = co_await imap.command(imap::Session::list_command("*"));
  require_ok(r, "LIST");
  std::vector<std::string> names;
  read_listing(r, items, view, &names);
  // Every STATUS at once, then LOGOUT: one round trip whatever the number of mailboxes.
  std::vector<std::pair<std::string, std::string>> tags;
  for (const auto& name : names)
    tags.emplace_back(name, imap.send(imap::Session::status_command(name, items)));
  (void)imap.send("LOGOUT");
  co_await collect_statuses(imap, tags, items, view);
  co_return view;
}

// The user's personal namespace on server `i` (asked once per run and server).
Task<imap::Namespace> personal_namespace(RunState& run, size_t i, imap::Session& imap) {
  if (run.personal[i]) co_return *run.personal[i];
  if (!imap.has_capability("NAMESPACE"))
    throw ProbeError(FailureClass::missing_feature,
                     "the server lists the users' mailboxes to the admin but offers no NAMESPACE "
                     "to name them as the user sees them");
  imap::Reply r = co_await imap.command("NAMESPACE");
  require_ok(r, "NAMESPACE");
  for (const auto& line : r.untagged) {
    imap::Namespace ns;
    if (!imap::parse_namespace_response(line, ns)) continue;
    run.personal[i] = ns;
    co_return ns;
  }
  throw ProbeError(FailureClass::protocol, "NAMESPACE answered without a NAMESPACE response",
                   r.line);
}

// The folders the admin listed for the user, by the names the user sees, STATUS of each
// pipelined with the LOGOUT.
Task<ServerView> view_listed(RunState& run, size_t i, imap::Session& imap,
                             const std::vector<std::string>& folders) {
  const auto& items = run.rc.status_items;
  imap::Namespace ns = co_await personal_namespace(run, i, imap);
  std::vector<std::pair<std::string, std::string>> tags;
  for (const auto& folder : folders) {
    // The admin's and the user's names share the server's one hierarchy delimiter; the user
    // sees its folders under its personal prefix ("" with Cyrus' altnamespace, else "INBOX/").
    std::string name = folder.empty() ? "INBOX" : ns.prefix + folder;
    tags.emplace_back(name, imap.send(imap::Session::status_command(name, items)));
  }
  (void)imap.send("LOGOUT");
  ServerView view;
  co_await collect_statuses(imap, tags, items, view);
  co_return view;
}

// One user on server `i`: every mailbox (or INBOX) with its STATUS, one connection.
Task<ServerView> view_user(RunState& run, size_t i, const std::string& user) {
  const ReplicationCheck& rc = run.rc;
  const std::vector<std::string>* listed = nullptr;
  if (rc.all_mailboxes && i < run.listings.size() && run.listings[i].usable) {
    static const std::vector<std::string> none;
    auto it = run.listings[i].folders.find(user);
    listed = it == run.listings[i].folders.end() ? &none : &it->second;
    // Nothing of the user's on this server: nothing to log in for.
    if (listed->empty()) co_return ServerView{};
  }
  std::unique_ptr<imap::Session> imap;
  auto conn = co_await open_session(run.ctx, rc, rc.servers[i], user, imap);
  ServerView view;
  if (!rc.all_mailboxes) {
    view = co_await view_inbox(*imap, rc.status_items);
  } else if (listed) {
    view = co_await view_listed(run, i, *imap, *listed);
  } else {
    view = co_await view_by_user_list(*imap, rc.status_items);
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
          views[i] = co_await view_user(run, i, user);
          ++run.user_views[i];
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

// "user/john/Sent@example.net" -> user "john@example.net", folder "Sent"; "user/john@example.net"
// -> folder "" (the INBOX). False for names outside `prefix`.
bool parse_admin_name(const std::string& name, const std::string& prefix,
                      const std::string& delimiter, std::string& user, std::string& folder) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  std::string rest = name.substr(prefix.size());
  std::string domain;
  // With virtdomains the domain comes last ("@example.net"); it never holds a "/" delimiter.
  if (auto at = rest.rfind('@');
      at != std::string::npos &&
      (delimiter == "." || rest.find(delimiter, at) == std::string::npos)) {
    domain = rest.substr(at + 1);
    rest.erase(at);
  }
  auto cut = rest.find(delimiter);
  std::string local = rest.substr(0, cut);
  folder = cut == std::string::npos ? "" : rest.substr(cut + delimiter.size());
  if (local.empty()) return false;
  // With the netnews separator "." Cyrus shows a "." of a user name as "^".
  if (delimiter == ".") std::replace(local.begin(), local.end(), '^', '.');
  user = domain.empty() ? local : local + "@" + domain;
  return true;
}

// The admin's view of every user's mailboxes on one server: LIST "" "user/*".
Task<AdminListing> list_server(RunContext& ctx, const ReplicationCheck& rc, const MailUrl& server) {
  std::unique_ptr<imap::Session> imap;
  auto conn = co_await open_session(ctx, rc, server, "", imap);
  AdminListing out;
  out.delimiter = "/";
  imap::Reply root = co_await imap->command(imap::Session::list_command(""));
  for (const auto& line : root.untagged) {
    imap::ListEntry e;
    if (imap::parse_list_response(line, e) && !e.delimiter.empty()) out.delimiter = e.delimiter;
  }
  std::string prefix = "user" + out.delimiter;
  imap::Reply r = co_await imap->command(imap::Session::list_command(prefix + "*"));
  if (r.status != "OK") {
    out.refusal =
        ProbeError(FailureClass::rejected,
                   "LIST \"\" \"" + prefix + "*\" answered: " + str::printable(r.line), r.line);
    co_await imap->logout();
    co_return out;
  }
  size_t mailboxes = 0;
  for (const auto& line : r.untagged) {
    imap::ListEntry e;
    if (!imap::parse_list_response(line, e)) {
      if (!str::istarts_with(line, "* LIST")) continue;
      throw ProbeError(FailureClass::protocol,
                       "malformed LIST response: \"" + str::printable(line) + "\"", line);
    }
    std::string user, folder;
    // Domain-less \Noselect placeholders ("user/john") stand for a user's folders, not a user.
    if (!e.selectable() || !parse_admin_name(e.name, prefix, out.delimiter, user, folder)) continue;
    auto& list = out.folders[user];
    if (folder.empty()) out.users.push_back(user);
    list.push_back(std::move(folder));
    if (list.size() > kMaxMailboxesPerUser || out.users.size() > kMaxUsersDiscovered)
      throw ProbeError(FailureClass::protocol, "more than " + std::to_string(kMaxMailboxesPerUser) +
                                                   " mailboxes of one user or " +
                                                   std::to_string(kMaxUsersDiscovered) +
                                                   " users listed");
    ++mailboxes;
  }
  out.usable = mailboxes > 0;
  co_await imap->logout();
  co_return out;
}

// The admin listings of the first `count` servers, at once (but not of a server whose admin
// was found unable to list within the hour, unless its users are to be guessed there).
Task<void> list_servers(RunState& run, size_t count) {
  const auto& servers = run.rc.servers;
  run.listings.assign(servers.size(), AdminListing{});
  std::vector<std::optional<ProbeError>> errors(count);
  {
    TaskGroup group(run.ctx.scope(), count);
    for (size_t i = 0; i < count; ++i) {
      bool needed = i == 0 && run.rc.all_users;
      if (!needed && !run.progress.listing_due(servers[i].shown, clock::wall())) continue;
      auto one = [](RunState& run, size_t i,
                    std::vector<std::optional<ProbeError>>& errors) -> Task<void> {
        try {
          run.listings[i] = co_await list_server(run.ctx, run.rc, run.rc.servers[i]);
        } catch (const ProbeError& e) {
          errors[i] = e;
        }
      };
      co_await group.spawn(one(run, i, errors));
    }
    co_await group.join();
  }
  for (size_t i = 0; i < count; ++i) {
    if (!errors[i]) continue;
    // An admin that cannot log in as itself may still log in as each user (a Dovecot master
    // user); a wrong password shows there, told apart by admin_can_log_in().
    if (errors[i]->cls() == FailureClass::auth) {
      run.listings[i].refusal = ProbeError(FailureClass::auth,
                                           "the admin " + run.rc.admin + " cannot log in on " +
                                               servers[i].shown + ": " + errors[i]->what(),
                                           errors[i]->server_line());
      continue;
    }
    throw with_context(*errors[i], "listing the mailboxes on " + servers[i].shown + ": ");
  }
}

// `all users`: the owners of the INBOXes the admin lists on the reference (the plugin's guess:
// a user/ mailbox whose owner cannot log in makes an invalid user).
std::vector<std::string> discovered_users(const RunState& run) {
  const AdminListing& reference = run.listings.at(0);
  if (reference.refusal) {
    if (reference.refusal->cls() == FailureClass::auth) throw *reference.refusal;
    throw with_context(*reference.refusal,
                       "cannot guess the users on " + run.rc.servers[0].shown + ": ");
  }
  return reference.users;
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

// A server where the admin's listing failed but users were checked does not list (a master
// user that cannot log in as itself): remembered, so that the next runs go straight to the
// users. A wrong admin password never gets here: no user is checked then.
void remember_listings(RunState& run) {
  for (size_t i = 0; i < run.listings.size(); ++i) {
    const AdminListing& l = run.listings[i];
    const std::string& server = run.rc.servers[i].shown;
    if (l.usable) {
      run.progress.record_listed(server);
    } else if (l.refusal && run.user_views[i] > 0) {
      run.progress.record_unlisted(server, clock::wall());
    }
  }
}

Task<void> check_users(RunState& run) {
  const ReplicationCheck& rc = run.rc;
  run.personal.assign(rc.servers.size(), std::nullopt);
  run.user_views.assign(rc.servers.size(), 0);
  // One admin listing per server and run: the users to guess, the mailboxes to compare.
  if (rc.all_mailboxes || rc.all_users)
    co_await list_servers(run, rc.all_mailboxes ? rc.servers.size() : 1);
  std::vector<std::string> users = rc.all_users ? discovered_users(run) : rc.users;
  auto plan = run.progress.plan(users, run.rc.failed_only, clock::wall());
  TaskGroup group(run.ctx.scope(), static_cast<size_t>(run.rc.concurrency));
  for (const auto& user : plan) {
    if (run.stop || run.budget_spent() || run.ctx.scope().cancelled()) break;
    co_await group.spawn(check_user(run, user));
  }
  co_await group.join();
  remember_listings(run);
}

}  // namespace

Task<void> run(RunContext& ctx) {
  const auto& rc = *ctx.check().as<config::ReplicationCheck>();
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

std::pair<std::string, std::string> labels(const config::Check& check) {
  const auto& rc = *check.as<config::ReplicationCheck>();
  if (rc.servers.empty()) return {"imap", ""};
  std::string scheme = rc.servers[0].scheme;
  return {scheme, rc.servers[0].endpoint.describe()};
}

void rows(const CheckResult& r, DetailRows& out) {
  auto metric = [&](const char* name) -> std::string {
    auto it = r.metrics.find(name);
    return it == r.metrics.end() ? std::string("-")
                                 : std::to_string(static_cast<long long>(it->second));
  };
  out.emplace_back("out of sync", metric("out_of_sync") + " mailboxes");
  out.emplace_back("invalid users", metric("invalid_users"));
  out.emplace_back("compared", metric("mailboxes_compared") + " mailboxes");
}

}  // namespace mw::checks::replication
