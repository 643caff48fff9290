// Drop-in for check_cyrus_replication: its options (and --extra-opts INI sections), its state
// file keys (checked, statuses, invalid_users), its status line and perfdata, run as mailwarden's
// `check replication` (users concurrently, STATUS pipelined) instead of one STATUS at a time.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>

#include "checks/registry.h"
#include "config/parser.h"
#include "plugin/dropins.h"
#include "plugin/ini.h"
#include "plugin/options.h"
#include "plugin/run_once.h"
#include "report/nagios.h"
#include "util/files.h"
#include "util/strings.h"

namespace mw::plugin {
namespace {

using nlohmann::json;
using report::nagios::Range;
using report::nagios::State;

enum Opt {
  kUri,
  kAdmin,
  kPassw,
  kPasswordFile,
  kUser,
  kAllUsers,
  kAllMailboxes,
  kTimeout,
  kStateFile,
  kFailedOnly,
  kStatusCmd,
  kWarning,
  kCritical,
  kExtraOpts,
  kVerbose,
  kVerify,
  kCaFile,
  kHelp,
};

const std::vector<OptionSpec>& specs() {
  static const std::vector<OptionSpec> s = {
      {0, "uri", true, kUri},
      {0, "admin", true, kAdmin},
      {0, "passw", true, kPassw},
      {0, "password-file", true, kPasswordFile},
      {0, "user", true, kUser},
      {0, "all-users", false, kAllUsers},
      {0, "all-mailboxes", false, kAllMailboxes},
      {'t', "timeout", true, kTimeout},
      {'s', "state-file", true, kStateFile},
      {'f', "failed-only", false, kFailedOnly},
      {0, "status-cmd", true, kStatusCmd},
      {'w', "warning", true, kWarning},
      {'c', "critical", true, kCritical},
      {0, "extra-opts", true, kExtraOpts},
      {'v', "verbose", false, kVerbose},
      {0, "verify", false, kVerify},
      {0, "ca-file", true, kCaFile},
      {'h', "help", false, kHelp},
  };
  return s;
}

struct Request {
  std::vector<std::string> uris;
  std::string admin = "cyrus-admin";
  std::string password;
  std::vector<std::string> users;
  bool all_users = false;
  bool all_mailboxes = false;
  double timeout_s = 10;
  std::string state_file = "/tmp/cyrus-replication-status.file";
  bool failed_only = false;
  std::string status_cmd = "(MESSAGES RECENT UNSEEN)";
  std::string warning = "1";
  std::string critical = "1";
  int verbose = 0;
  bool verify = false;
  std::string ca_file;
};

// The seed's line for anything it cannot do: nagiosplugin's "NAME UNKNOWN - why".
int unknown(const std::string& why) {
  printf("REPLICATION UNKNOWN - %s\n", why.c_str());
  return 3;
}

bool truthy(const std::string& v) {
  std::string l = str::lower(str::trim(v));
  return !l.empty() && l != "0" && l != "false" && l != "no" && l != "off";
}

std::optional<std::string> apply(Request& rq, int id, const std::string& value) {
  switch (id) {
    case kUri:
      rq.uris.push_back(value);
      break;
    case kAdmin:
      rq.admin = value;
      break;
    case kPassw:
      rq.password = value;
      break;
    case kPasswordFile: {
      std::string error;
      if (!read_password_file(value, rq.password, error)) return error;
      break;
    }
    case kUser:
      rq.users.push_back(value);
      break;
    case kAllUsers:
      rq.all_users = true;
      break;
    case kAllMailboxes:
      rq.all_mailboxes = true;
      break;
    case kTimeout: {
      auto v = decimal(value);
      if (!v || *v <= 0 || *v > 86400) return "--timeout must be a positive number of seconds";
      rq.timeout_s = *v;
      break;
    }
    case kStateFile:
      rq.state_file = value;
      break;
    case kFailedOnly:
      rq.failed_only = true;
      break;
    case kStatusCmd:
      rq.status_cmd = value;
      break;
    case kWarning:
      rq.warning = value;
      break;
    case kCritical:
      rq.critical = value;
      break;
    case kVerbose:
      ++rq.verbose;
      break;
    case kVerify:
      rq.verify = true;
      break;
    case kCaFile:
      rq.ca_file = value;
      rq.verify = true;
      break;
  }
  return std::nullopt;
}

// --extra-opts section@file: each key of the section is an option's name (dest: all_users, or
// all-users); list options take one value per line.
std::optional<std::string> apply_extra_opts(Request& rq, const std::string& spec) {
  auto at = spec.find('@');
  std::string section = spec.substr(0, at);
  std::vector<std::string> files;
  if (at != std::string::npos && at + 1 < spec.size()) {
    files.push_back(spec.substr(at + 1));
  } else {
    files = {"/etc/nagios/plugins.ini",           "/usr/local/nagios/etc/plugins.ini",
             "/usr/local/etc/nagios/plugins.ini", "/etc/opt/nagios/plugins.ini",
             "/etc/nagios-plugins.ini",           "/usr/local/etc/nagios-plugins.ini",
             "/etc/opt/nagios-plugins.ini"};
  }
  if (section.empty()) section = "check_cyrus_replication";
  for (const auto& file : files) {
    Ini ini;
    std::string error;
    if (access(file.c_str(), F_OK) != 0) continue;
    if (!ini.load(file, error)) return error;
    if (!ini.has_section(section)) continue;
    for (const auto& key : ini.keys(section)) {
      auto value = ini.get(section, key, error);
      if (!value) return error;
      std::string name = key;
      for (char& c : name)
        if (c == '_') c = '-';
      const OptionSpec* spec_row = nullptr;
      for (const auto& s : specs())
        if (s.long_name == name) spec_row = &s;
      if (!spec_row || spec_row->id == kExtraOpts) continue;  // the seed ignores unknown keys
      if (!spec_row->takes_value) {
        if (truthy(*value))
          if (auto e = apply(rq, spec_row->id, "")) return e;
        continue;
      }
      if (spec_row->id == kUri || spec_row->id == kUser) {
        size_t from = 0;
        while (from <= value->size()) {
          size_t nl = value->find('\n', from);
          std::string line(str::trim(value->substr(from, nl - from)));
          if (!line.empty())
            if (auto e = apply(rq, spec_row->id, line)) return e;
          if (nl == std::string::npos) break;
          from = nl + 1;
        }
        continue;
      }
      if (auto e = apply(rq, spec_row->id, *value)) return e;
    }
    return std::nullopt;
  }
  return "no section [" + section + "] in " + str::join(files, ", ");
}

std::vector<std::string> status_items(const std::string& cmd) {
  std::string s = cmd;
  for (char& c : s)
    if (c == '(' || c == ')') c = ' ';
  std::vector<std::string> out;
  for (const auto& w : str::split_ws(s)) out.push_back(str::upper(w));
  return out;
}

// The state file: the seed's keys at the top; mailwarden's extra memory (when each invalid user
// was tried, servers whose admin could not list) under "mailwarden".
json memory_from_state(const json& state) {
  json m = json::object();
  if (!state.is_object()) return m;
  if (state.contains("checked")) m["checked"] = state["checked"];
  if (state.contains("statuses")) m["statuses"] = state["statuses"];
  const json extra = state.value("mailwarden", json::object());
  if (extra.is_object() && extra.contains("invalid")) {
    m["invalid"] = extra["invalid"];
  } else if (state.contains("invalid_users") && state["invalid_users"].is_array()) {
    json inv = json::object();
    for (const auto& u : state["invalid_users"])
      if (u.is_string())
        inv[u.get<std::string>()] = {{"reason", "listed in the state file"},
                                     {"since", static_cast<int64_t>(time(nullptr))}};
    m["invalid"] = inv;
  }
  if (extra.is_object() && extra.contains("unlisted")) m["unlisted"] = extra["unlisted"];
  return m;
}

json state_from_memory(const json& m) {
  json state = json::object();
  state["checked"] = m.value("checked", json::array());
  state["statuses"] = m.value("statuses", json::object());
  json invalid_users = json::array();
  json extra = json::object();
  if (m.contains("invalid") && m["invalid"].is_object()) {
    for (const auto& [user, v] : m["invalid"].items()) invalid_users.push_back(user);
    extra["invalid"] = m["invalid"];
  }
  if (m.contains("unlisted")) extra["unlisted"] = m["unlisted"];
  state["invalid_users"] = invalid_users;
  state["mailwarden"] = extra;
  return state;
}

size_t total_mailboxes(const json& m) {
  size_t n = 0;
  if (m.contains("statuses") && m["statuses"].is_object())
    for (const auto& [user, boxes] : m["statuses"].items())
      if (boxes.is_object()) n += boxes.size();
  return n;
}

}  // namespace

int run_cyrus_replication_dropin(std::string_view, const std::vector<std::string>& args) {
  std::vector<GivenOption> given;
  std::string error;
  if (!parse_options(args, specs(), given, error)) return unknown(error);
  Request rq;
  for (const auto& g : given) {
    if (g.id == kHelp) {
      printf("check_cyrus_replication (mailwarden drop-in) - see man mailwarden\n");
      return 3;
    }
    if (g.id == kExtraOpts) {
      if (auto e = apply_extra_opts(rq, g.value)) return unknown(*e);
      continue;
    }
    if (auto e = apply(rq, g.id, g.value)) return unknown(*e);
  }
  if (rq.password.empty())
    if (const char* env = getenv("MAILWARDEN_PASSWORD")) rq.password = env;
  if (rq.uris.size() < 2) return unknown("give at least two --uri (the first is the reference)");
  if (rq.users.empty() && !rq.all_users) return unknown("give --user NAME or --all-users");
  auto warn = Range::parse(rq.warning, error);
  if (!warn) return unknown(error);
  auto crit = Range::parse(rq.critical, error);
  if (!crit) return unknown(error);

  config::ReplicationCheck r;
  for (const auto& uri : rq.uris) {
    config::MailUrl u;
    std::string e = config::parsing::parse_mail_url(uri, u);
    if (!e.empty()) return unknown("--uri: " + e);
    if (u.scheme.rfind("imap", 0) != 0)
      return unknown("--uri must be imap://, imaps:// or imap+starttls://");
    // cyruslib does not verify certificates; --verify (or --ca-file) does.
    u.tls.verify = rq.verify;
    u.tls.ca_file = rq.ca_file;
    r.servers.push_back(u);
  }
  r.admin = rq.admin;
  r.password = rq.password;
  r.users = rq.all_users ? std::vector<std::string>{} : rq.users;
  r.all_users = rq.all_users;
  r.all_mailboxes = rq.all_mailboxes;
  r.status_items = status_items(rq.status_cmd);
  if (r.status_items.empty()) return unknown("--status-cmd names no STATUS item");
  r.budget_ms = static_cast<int64_t>(rq.timeout_s * 1000);
  r.failed_only = rq.failed_only;
  r.allow_plaintext = true;  // the seed logs in over whatever the URI says

  int64_t deadline_ms = r.budget_ms + 60000;
  std::string description = "replication " + r.servers[0].shown;
  auto cfg = one_check_model("check_cyrus_replication", config::ServiceKind::replication,
                             "replication", description,
                             std::make_shared<config::ReplicationCheck>(std::move(r)), deadline_ms);

  json state = json::object();
  if (access(rq.state_file.c_str(), F_OK) == 0) {
    // A state file of a million mailboxes is ~100 MiB; a larger one is not ours.
    struct stat st {};
    if (stat(rq.state_file.c_str(), &st) == 0 && st.st_size > 256LL * 1024 * 1024)
      return unknown(rq.state_file + " is larger than 256 MiB");
    auto text = files::read(rq.state_file, error);
    if (!text) return unknown(error);
    try {
      state = json::parse(*text);
    } catch (const std::exception& e) {
      return unknown(rq.state_file + " is not JSON: " + e.what());
    }
  }
  const auto& service = cfg->services.front();
  auto result = run_once(cfg, service, {&service.checks.front()}, {memory_from_state(state)});
  CheckResult res = result.front();
  if (!res.ok && res.cls != FailureClass::content && res.memory.is_null()) {
    printf("REPLICATION UNKNOWN - %s\n", res.reason().c_str());
    return 3;
  }
  if (!res.memory.is_null()) {
    std::string text = state_from_memory(res.memory).dump() + "\n";
    if (!files::write_atomic(rq.state_file, text, 0600, error)) return unknown(error);
  }
  auto out_it = res.metrics.find("out_of_sync");
  double out_of_sync = out_it == res.metrics.end() ? 0 : out_it->second;
  size_t total = total_mailboxes(res.memory);
  State s = State::ok;
  if (warn->alerts(out_of_sync)) s = State::warning;
  if (crit->alerts(out_of_sync)) s = State::critical;
  // A run that could not compare at all (every server down) is CRITICAL, not OK.
  if (!res.ok && res.cls != FailureClass::content && total == 0) s = State::critical;
  std::string summary =
      s == State::ok ? "Cyrus replication STATUS is OK" : "Cyrus replication is OUT OF SYNC";
  if (!res.ok && res.cls != FailureClass::content) summary += " (" + res.reason() + ")";
  printf("REPLICATION %s - %s | 'out of sync'=%s;%s;%s;0 'total checked'=%zu\n",
         report::nagios::state_name(s), summary.c_str(),
         report::nagios::number(out_of_sync, 0).c_str(), rq.warning.c_str(), rq.critical.c_str(),
         total);
  if (rq.verbose > 0 && res.details.is_object() && res.details.contains("out_of_sync"))
    printf("Out of sync mailboxes\n%s\n", res.details["out_of_sync"].dump(1).c_str());
  return static_cast<int>(s);
}

}  // namespace mw::plugin
