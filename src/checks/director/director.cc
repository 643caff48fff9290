// Rapid mode needs polls more often than the cycle. It lives inside the run: a run polls every
// backend once, and when a backend reaches `retry` failures in a row the same run goes on with
// that backend's rapid rounds (`every` apart, all such backends at once, other backends not
// waiting for them) and ends with the verdict and the director commands. The alternative, a
// per-backend timer owned by the check, would outlive runs and reloads and need its own
// lifetime rules; a run that lasts the rapid rounds keeps one owner (the engine's run, with its
// deadline and cancellation) and one place for the decision. It blocks no other check (the
// engine runs checks concurrently); only this check's next cycle is skipped while its rapid
// rounds last, which bounds kill-to-HOST-DOWN at `retry` cycles + the rapid rounds.
#include "checks/director/director.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/director/policy.h"
#include "engine/probe.h"
#include "net/failure.h"
#include "net/task_group.h"
#include "protocols/director_client.h"
#include "protocols/registry.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw::checks::director {
namespace {

using config::DirectorCheck;
using mw::director::Client;
using mw::director::Host;
using nlohmann::json;

constexpr size_t kPollHistory = 12;
constexpr size_t kConcurrentBackends = 64;

struct PollOutcome {
  bool ok = false;
  bool misconfigured = false;
  bool rapid = false;
  double ms = 0;
  time_t at = 0;
  std::string error;
};

enum class Role { poll, owned_down, admin_down, no_vhosts };

struct Backend {
  Host host;
  Role role = Role::poll;
  std::optional<PollOutcome> regular;
  std::vector<PollOutcome> polls;  // this run's, in the order they ended
  bool rapid_ran = false;
  int rapid_done = 0;
  int rapid_failed = 0;
  RapidVerdict verdict = RapidVerdict::undecided;
  std::string misconfig;  // the last misconfiguration seen this run
  std::string action;     // what this run did about it
};

// The state file is data from disk: an entry of another shape is reset, never trusted.
void sanitize(json& m) {
  if (!m.is_object()) m = json::object();
  if (!m.contains("fails") || !m["fails"].is_number_integer() || m["fails"].get<int64_t>() < 0 ||
      m["fails"].get<int64_t>() > 1000000)
    m["fails"] = 0;
  if (m.contains("owned") && (!m["owned"].is_object() || !m["owned"].contains("at") ||
                              !m["owned"]["at"].is_number_integer()))
    m.erase("owned");
  if (m.contains("polls") && !m["polls"].is_array()) m.erase("polls");
  if (m.contains("polls")) {
    json kept = json::array();
    for (const auto& p : m["polls"])
      if (p.is_object()) kept.push_back(p);
    m["polls"] = std::move(kept);
  }
}

std::string describe_admin(const DirectorCheck& dc) {
  return dc.admin.describe();
}

// One poll of one backend: every poll line in turn, each a port test's dialogue against the
// backend's IP. A refusal that is about mailwarden's own set-up (missing account, LOGINDISABLED,
// a password that may not cross plain text, no name to verify TLS against) is a
// misconfiguration, never a sign that the backend is dead.
Task<PollOutcome> poll_backend(RunContext& ctx, const DirectorCheck& dc, const std::string& ip,
                               bool rapid) {
  PollOutcome out;
  out.rapid = rapid;
  out.at = clock::wall();
  int64_t started = clock::now_us();
  for (const auto& line : dc.polls) {
    config::PortCheck pc = line.port;
    pc.endpoint.host = ip;
    if (line.per_backend) {
      auto it = dc.accounts.find(ip);
      if (it == dc.accounts.end()) {
        out.misconfigured = true;
        out.error = line.label + ": no test account for backend " + ip +
                    " in the credentials file (an entry with address = \"" + ip + "\")";
        co_return out;
      }
      pc.options.username = it->second.username;
      pc.options.password = it->second.password;
      pc.options.authzid = it->second.masteruser;
      if (pc.tls.server_name.empty()) pc.tls.server_name = it->second.servername;
    }
    if (pc.tls_mode != config::TlsMode::none && pc.tls.verify && pc.tls.server_name.empty()) {
      out.misconfigured = true;
      out.error = line.label + ": backend " + ip +
                  " is listed by IP: give the name its certificate carries (servername \"NAME\" "
                  "on the poll line or in its credentials entry)";
      co_return out;
    }
    // Each poll has its own timeout and deadline: a run context of its own around the probe.
    config::Check chk;
    chk.timeout_ms = line.timeout_ms;
    Scope scope(ctx.io().base);
    scope.set_deadline(3 * line.timeout_ms);
    RunContext sub(ctx.io(), scope, chk, ctx.log_prefix() + " " + line.label + " " + ip, nullptr);
    Probe probe(sub, pc);
    std::optional<ProbeError> failure;
    try {
      co_await probe.open();
      co_await pc.protocol->run(probe);
    } catch (const ProbeError& e) {
      failure = e;
    } catch (const std::exception& e) {
      failure = ProbeError(FailureClass::internal, e.what());
    }
    if (failure) {
      out.misconfigured = failure->cls() == FailureClass::missing_feature ||
                          failure->cls() == FailureClass::internal;
      out.error = line.label + ": " + failure_class_name(failure->cls()) + ": " + failure->what();
      if (!failure->server_line().empty() &&
          out.error.find(failure->server_line()) == std::string::npos)
        out.error += " [server: " + str::printable(failure->server_line(), 200) + "]";
      break;
    }
  }
  out.ok = !out.misconfigured && out.error.empty();
  out.ms = std::round(static_cast<double>(clock::now_us() - started) / 100.0) / 10.0;
  co_return out;
}

Task<void> regular_poll(RunContext& ctx, const DirectorCheck& dc, Backend& b) {
  PollOutcome o = co_await poll_backend(ctx, dc, b.host.ip, false);
  if (o.misconfigured) b.misconfig = o.error;
  b.regular = o;
  b.polls.push_back(std::move(o));
}

Task<void> rapid_poll(RunContext& ctx, const DirectorCheck& dc, Backend& b) {
  PollOutcome o = co_await poll_backend(ctx, dc, b.host.ip, true);
  if (o.misconfigured) {
    b.misconfig = o.error;
  } else {
    ++b.rapid_done;
    if (!o.ok) ++b.rapid_failed;
  }
  b.polls.push_back(std::move(o));
}

bool rapid_over(const DirectorCheck& dc, const Backend& b) {
  return !b.misconfig.empty() || rapid_verdict(dc.rapid_rounds, dc.rapid_fails, b.rapid_done,
                                               b.rapid_failed) != RapidVerdict::undecided;
}

// `rounds` polls started `every` apart (a slow poll does not push the next one back), ended
// early once the verdict cannot change.
Task<void> rapid_mode(RunContext& ctx, const DirectorCheck& dc, Backend& b) {
  b.rapid_ran = true;
  log::warning("'%s' backend %s failed %d polls in a row: rapid mode (%d polls, %d must fail)",
               ctx.check().description.c_str(), b.host.ip.c_str(), dc.retry, dc.rapid_rounds,
               dc.rapid_fails);
  TaskGroup polls(ctx.scope(), static_cast<size_t>(dc.rapid_rounds));
  std::exception_ptr error;
  try {
    Sleep sleep(ctx.scope());
    for (int i = 0; i < dc.rapid_rounds && !rapid_over(dc, b); ++i) {
      if (i > 0) co_await sleep(dc.rapid_every_ms);
      if (rapid_over(dc, b)) break;
      co_await polls.spawn(rapid_poll(ctx, dc, b));
    }
  } catch (...) {
    error = std::current_exception();
  }
  co_await polls.join();
  if (error) std::rethrow_exception(error);
  b.verdict = rapid_verdict(dc.rapid_rounds, dc.rapid_fails, b.rapid_done, b.rapid_failed);
  if (b.verdict == RapidVerdict::undecided) b.verdict = RapidVerdict::alive;
}

json poll_json(const PollOutcome& p) {
  json j = {{"at", static_cast<int64_t>(p.at)}, {"ok", p.ok}, {"ms", p.ms}, {"rapid", p.rapid}};
  if (!p.error.empty()) j["error"] = p.error;
  if (p.misconfigured) j["misconfigured"] = true;
  return j;
}

json event_json(const std::string& event, const Backend& b, const std::string& description,
                bool dry_run) {
  return {{"event", event},
          {"backend", b.host.ip},
          {"tag", b.host.tag},
          {"description", description},
          {"dry_run", dry_run}};
}

std::string role_name(Role r) {
  switch (r) {
    case Role::poll:
      return "up";
    case Role::owned_down:
    case Role::admin_down:
      return "down";
    case Role::no_vhosts:
      return "up";
  }
  return "?";
}

// The backends as status shows them: what HOST-LIST said, who took each down and when, the
// last polls with their latencies, and the progress of rapid mode.
json details_of(const DirectorCheck& dc, const std::vector<Backend>& backends, const json& memory,
                const json& events) {
  json list = json::array();
  for (const auto& b : backends) {
    static const json none = json::object();
    const json& all = memory["backends"];
    const json& m = all.contains(b.host.ip) ? all[b.host.ip] : none;
    json j = {{"ip", b.host.ip},
              {"tag", b.host.tag},
              {"vhosts", b.host.vhosts},
              {"users", b.host.users},
              {"state", role_name(b.role)},
              {"changed_at", b.host.changed_at},
              {"failed_in_a_row", m.value("fails", 0)},
              {"down_by", nullptr},
              {"down_at", nullptr},
              {"left_alone", nullptr},
              {"misconfigured", nullptr},
              {"rapid", nullptr},
              {"action", b.action.empty() ? json(nullptr) : json(b.action)},
              {"polls", m.contains("polls") ? m["polls"] : json::array()}};
    if (m.contains("owned")) {
      j["down_by"] = "mailwarden";
      j["down_at"] = m["owned"].value("at", int64_t{0});
    } else if (b.role == Role::admin_down) {
      j["down_by"] = "administrator";
      j["down_at"] = b.host.changed_at;
    }
    if (b.role == Role::admin_down) j["left_alone"] = "taken down by an administrator";
    if (b.role == Role::no_vhosts) j["left_alone"] = "vhost count 0 (set by an administrator)";
    if (!b.misconfig.empty()) j["misconfigured"] = b.misconfig;
    if (b.rapid_ran)
      j["rapid"] = {{"rounds", dc.rapid_rounds},
                    {"needed", dc.rapid_fails},
                    {"done", b.rapid_done},
                    {"failed", b.rapid_failed},
                    {"verdict", b.verdict == RapidVerdict::dead    ? "dead"
                                : b.verdict == RapidVerdict::alive ? "alive"
                                                                   : "undecided"}};
    list.push_back(std::move(j));
  }
  return {{"director", describe_admin(dc)},
          {"dry_run", dc.dry_run},
          {"max_down", std::to_string(dc.max_down) + (dc.max_down_percent ? "%" : "")},
          {"retry", dc.retry},
          {"rapid_rounds", dc.rapid_rounds},
          {"rapid_fails", dc.rapid_fails},
          {"rapid_every_ms", dc.rapid_every_ms},
          {"backends", std::move(list)},
          {"events", events}};
}

Task<std::unique_ptr<Connection>> open_admin(RunContext& ctx, const DirectorCheck& dc,
                                             std::unique_ptr<Client>& client) {
  // Named, not a temporary: GCC 12 destroys temporaries of a co_await expression twice.
  static const TlsSettings kNoTls;
  static const std::string kLabel = "director-admin";
  auto conn = co_await ctx.open(dc.admin, config::TlsMode::none, kNoTls, kLabel);
  client = std::make_unique<Client>(*conn, ctx.scope());
  co_await client->handshake();
  co_return conn;
}

std::string release_name(config::DirectorRelease r) {
  return r == config::DirectorRelease::flush ? "HOST-FLUSH" : "HOST-RESET-USERS";
}

}  // namespace

Task<void> run(RunContext& ctx) {
  const auto& dc = *ctx.check().as<DirectorCheck>();
  const std::string& name = ctx.check().description;
  std::vector<Host> hosts;
  {
    std::unique_ptr<Client> client;
    auto conn = co_await open_admin(ctx, dc, client);
    hosts = co_await client->host_list();
  }
  for (const auto& h : hosts)
    if (!h.has_state)
      throw ProbeError(FailureClass::missing_feature,
                       "HOST-LIST of " + describe_admin(dc) +
                           " shows no up/down state (Dovecot before 2.2.19): check director "
                           "needs Dovecot 2.2.19 or later to take backends down and up");

  // Memory: per backend, the failures in a row, ownership of a takedown, the last polls.
  json& memory = ctx.memory;
  if (!memory.contains("backends") || !memory["backends"].is_object())
    memory["backends"] = json::object();
  json& remembered = memory["backends"];
  {
    json kept = json::object();
    for (const auto& h : hosts)
      if (remembered.contains(h.ip) && remembered[h.ip].is_object()) kept[h.ip] = remembered[h.ip];
    remembered = std::move(kept);
  }

  std::vector<Backend> backends;
  for (const auto& h : hosts) {
    json& m = remembered[h.ip];
    sanitize(m);
    Backend b;
    b.host = h;
    bool owned = m.contains("owned");
    if (h.vhosts == 0) {
      b.role = Role::no_vhosts;
      m.erase("owned");  // an administrator has taken over
    } else if (h.up) {
      b.role = Role::poll;
      m.erase("owned");  // brought up by someone else
    } else {
      b.role = owned ? Role::owned_down : Role::admin_down;
    }
    backends.push_back(std::move(b));
  }

  // The regular round: every backend that is up, and those mailwarden took down.
  {
    TaskGroup group(ctx.scope(), kConcurrentBackends);
    for (auto& b : backends)
      if (b.role == Role::poll || b.role == Role::owned_down)
        co_await group.spawn(regular_poll(ctx, dc, b));
    co_await group.join();
  }
  int answered = 0, failed = 0;
  for (const auto& b : backends) {
    if (b.role != Role::poll || !b.regular || b.regular->misconfigured) continue;
    ++answered;
    if (!b.regular->ok) ++failed;
  }
  // Every backend failing in the same round points at mailwarden's own network, not at the
  // backends: nothing counts towards a takedown.
  const bool all_failed = answered >= 2 && failed == answered;
  std::vector<Backend*> rapid;
  for (auto& b : backends) {
    if (b.role != Role::poll || !b.regular || b.regular->misconfigured) continue;
    json& m = remembered[b.host.ip];
    if (b.regular->ok) {
      m["fails"] = 0;
    } else if (!all_failed) {
      m["fails"] = m.value("fails", 0) + 1;
      if (m["fails"].get<int>() >= dc.retry) rapid.push_back(&b);
    }
  }
  if (!rapid.empty()) {
    TaskGroup group(ctx.scope(), kConcurrentBackends);
    std::exception_ptr error;
    try {
      for (auto* b : rapid) co_await group.spawn(rapid_mode(ctx, dc, *b));
    } catch (...) {
      error = std::current_exception();
    }
    co_await group.join();
    if (error) std::rethrow_exception(error);
  }

  // What to do: take down the backends rapid mode found dead (within the limits), bring up
  // those mailwarden took down that answer again.
  std::vector<std::string> dead;
  for (auto* b : rapid) {
    json& m = remembered[b->host.ip];
    if (b->verdict == RapidVerdict::dead) {
      dead.push_back(b->host.ip);
    } else if (b->misconfig.empty()) {
      m["fails"] = 0;
      b->action = "alive: " + std::to_string(b->rapid_failed) + " of " +
                  std::to_string(b->rapid_done) + " rapid polls failed";
    }
  }
  std::vector<Takedown> takedowns = decide_takedowns(hosts, dead, dc.max_down, dc.max_down_percent);
  auto find = [&](const std::string& ip) -> Backend& {
    return *std::find_if(backends.begin(), backends.end(),
                         [&](const Backend& b) { return b.host.ip == ip; });
  };
  std::vector<std::string> held;
  json events = json::array();
  bool need_director = false;
  for (const auto& t : takedowns) {
    Backend& b = find(t.ip);
    std::string failed_text = "failed " + std::to_string(b.rapid_failed) + " of " +
                              std::to_string(b.rapid_done) + " rapid polls";
    if (!t.allowed) {
      b.action = "held: " + t.reason;
      held.push_back("backend " + t.ip + " " + failed_text + " but is not taken down: " + t.reason);
      log::error("'%s' backend %s %s but is not taken down: %s", name.c_str(), t.ip.c_str(),
                 failed_text.c_str(), t.reason.c_str());
    } else if (dc.dry_run) {
      b.action = "would take down (dry run)";
      remembered[t.ip]["fails"] = 0;
      log::warning("'%s' dry run: would take backend %s down (%s)", name.c_str(), t.ip.c_str(),
                   failed_text.c_str());
      events.push_back(event_json("backend down", b,
                                  "dry run: would take backend " + t.ip + " down: " + failed_text +
                                      " (last: " + b.polls.back().error + ")",
                                  true));
    } else {
      need_director = true;
    }
  }
  std::vector<Backend*> ups;
  for (auto& b : backends) {
    if (b.role != Role::owned_down || !b.regular || !b.regular->ok) continue;
    if (dc.dry_run) {
      b.action = "would bring up (dry run)";
      events.push_back(
          event_json("backend up", b,
                     "dry run: would bring backend " + b.host.ip + " up: it answers again", true));
    } else {
      ups.push_back(&b);
      need_director = true;
    }
  }

  // The commands, one at a time on one connection. A failure here is the director's: the run
  // fails with it, after recording what was done.
  std::exception_ptr director_error;
  if (need_director) {
    try {
      std::unique_ptr<Client> client;
      auto conn = co_await open_admin(ctx, dc, client);
      for (auto* b : ups) {
        const std::string& ip = b->host.ip;
        auto reply = co_await client->host_up(ip);
        if (reply == mw::director::Reply::notfound) {
          b->action = "HOST-UP: NOTFOUND (no longer a backend)";
          continue;
        }
        remembered[ip].erase("owned");
        remembered[ip]["fails"] = 0;
        b->role = Role::poll;
        b->action = "brought up";
        log::warning("'%s' backend %s answers again: HOST-UP", name.c_str(), ip.c_str());
        events.push_back(event_json(
            "backend up", *b, "backend " + ip + " answers again: brought up (HOST-UP)", false));
      }
      for (const auto& t : takedowns) {
        if (!t.allowed || dc.dry_run) continue;
        Backend& b = find(t.ip);
        std::string last = b.polls.empty() ? "" : b.polls.back().error;
        std::string reason = "failed " + std::to_string(b.rapid_failed) + " of " +
                             std::to_string(b.rapid_done) + " rapid polls (last: " + last + ")";
        auto reply = co_await client->host_down(t.ip);
        if (reply == mw::director::Reply::notfound) {
          b.action = "HOST-DOWN: NOTFOUND (no longer a backend)";
          continue;
        }
        json& m = remembered[t.ip];
        m["owned"] = {{"at", static_cast<int64_t>(clock::wall())}, {"reason", reason}};
        m["fails"] = 0;
        b.role = Role::owned_down;
        b.host.up = false;
        b.action = "taken down";
        log::error("'%s' backend %s %s: HOST-DOWN", name.c_str(), t.ip.c_str(), reason.c_str());
        std::string release;
        if (dc.release != config::DirectorRelease::none) {
          release = release_name(dc.release);
          mw::director::Reply r;
          if (dc.release == config::DirectorRelease::flush) {
            r = co_await client->host_flush(t.ip);
          } else {
            r = co_await client->host_reset_users(t.ip);
          }
          b.action += r == mw::director::Reply::ok ? ", " + release : ", " + release + " NOTFOUND";
        }
        events.push_back(event_json("backend down", b,
                                    "backend " + t.ip + " " + reason + ": taken down (HOST-DOWN" +
                                        (release.empty() ? "" : ", " + release) + ")",
                                    false));
      }
    } catch (...) {
      director_error = std::current_exception();
    }
  }

  // Poll history, kept across runs.
  for (const auto& b : backends) {
    json& m = remembered[b.host.ip];
    if (!m.contains("polls") || !m["polls"].is_array()) m["polls"] = json::array();
    for (const auto& p : b.polls) m["polls"].push_back(poll_json(p));
    while (m["polls"].size() > kPollHistory) m["polls"].erase(m["polls"].begin());
  }
  ctx.details = details_of(dc, backends, memory, events);
  int down = 0;
  for (const auto& b : backends)
    if (b.role == Role::owned_down || b.role == Role::admin_down) ++down;
  ctx.metrics["backends"] = static_cast<double>(backends.size());
  ctx.metrics["backends_down"] = down;
  if (director_error) std::rethrow_exception(director_error);

  if (all_failed) {
    std::string example;
    for (const auto& b : backends)
      if (b.role == Role::poll && b.regular && !b.regular->ok) {
        example = b.host.ip + ": " + b.regular->error;
        break;
      }
    throw ProbeError(FailureClass::connect,
                     "all " + std::to_string(answered) + " backends failed at once (" + example +
                         "); mailwarden's own network is the likely culprit: nothing taken down");
  }
  if (!held.empty()) throw ProbeError(FailureClass::content, str::join(held, "; "));
  for (const auto& b : backends)
    if (!b.misconfig.empty())
      throw ProbeError(FailureClass::missing_feature,
                       "backend " + b.host.ip +
                           ": misconfigured poll, not counted as a failure: " + b.misconfig);
}

std::pair<std::string, std::string> labels(const config::Check& check) {
  return {"director", check.as<DirectorCheck>()->admin.describe()};
}

namespace {

void backend_rows(const json& d, DetailRows& out) {
  if (!d.is_object() || !d.contains("backends") || !d["backends"].is_array()) return;
  if (d.value("dry_run", false)) out.emplace_back("mode", "dry run (nothing is changed)");
  auto text = [](const json& b, const char* key) -> std::string {
    return b.contains(key) && b[key].is_string() ? b[key].get<std::string>() : std::string();
  };
  for (const auto& b : d["backends"]) {
    if (!b.is_object()) continue;
    std::string tag = text(b, "tag");
    std::string line = text(b, "ip") + "  tag " + (tag.empty() ? "-" : tag) + "  vhosts " +
                       std::to_string(b.value("vhosts", int64_t{0})) + "  users " +
                       std::to_string(b.value("users", int64_t{0})) + "  " +
                       (text(b, "state") == "down" ? "DOWN" : "up");
    if (!text(b, "down_by").empty()) {
      line += " (by " + text(b, "down_by");
      if (b.contains("down_at") && b["down_at"].is_number() && b["down_at"].get<int64_t>() > 0)
        line += " at " + clock::format_local(static_cast<time_t>(b["down_at"].get<int64_t>()));
      line += ")";
    }
    out.emplace_back("backend", line);
    if (!text(b, "left_alone").empty()) out.emplace_back("  left alone", text(b, "left_alone"));
    if (!text(b, "misconfigured").empty())
      out.emplace_back("  misconfigured", text(b, "misconfigured"));
    if (b.contains("polls") && b["polls"].is_array() && !b["polls"].empty()) {
      std::string polls;
      size_t n = b["polls"].size();
      for (size_t i = n > 5 ? n - 5 : 0; i < n; ++i) {
        const json& p = b["polls"][i];
        if (!p.is_object()) continue;
        char buf[64];
        snprintf(buf, sizeof buf, "%s%s %.1f ms%s", polls.empty() ? "" : ", ",
                 p.value("ok", false) ? "ok" : "failed", p.value("ms", 0.0),
                 p.value("rapid", false) ? " (rapid)" : "");
        polls += buf;
      }
      out.emplace_back("  last polls", polls);
      std::string error = b["polls"][n - 1].is_object() ? text(b["polls"][n - 1], "error") : "";
      if (!error.empty()) out.emplace_back("  last error", error);
    }
    if (int fails = b.value("failed_in_a_row", 0); fails > 0)
      out.emplace_back("  failed", std::to_string(fails) + " polls in a row");
    if (b.contains("rapid") && b["rapid"].is_object()) {
      const json& rm = b["rapid"];
      out.emplace_back("  rapid mode", std::to_string(rm.value("done", 0)) + " of " +
                                           std::to_string(rm.value("rounds", 0)) + " polls done, " +
                                           std::to_string(rm.value("failed", 0)) + " failed (" +
                                           std::to_string(rm.value("needed", 0)) +
                                           " needed): " + rm.value("verdict", "?"));
    }
    if (!text(b, "action").empty()) out.emplace_back("  last action", text(b, "action"));
  }
}

}  // namespace

void rows(const CheckResult& r, DetailRows& out) {
  // Details come back from the state file: a value of an unexpected type ends the rows, with a
  // word about it, instead of taking the status command down.
  try {
    backend_rows(r.details, out);
  } catch (const json::exception&) {
    out.emplace_back("backends", "(unreadable in the state file)");
  }
}

}  // namespace mw::checks::director
