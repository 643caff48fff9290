// mailwarden: a watchdog for mail infrastructure. The command line is a contract (scripts depend
// on it): see man/mailwarden.1.
#include <event2/dns.h>
#include <event2/event.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include "config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/remote.h"
#include "config/parser.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "engine/engine.h"
#include "plugin/dropins.h"
#include "plugin/run_once.h"
#include "report/status.h"
#include "state/snapshot.h"
#include "util/accounts.h"
#include "util/handles.h"
#include "util/log.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitConfig = 2;

const char* const kUsage =
    "usage: mailwarden [-c FILE] [-v] [COMMAND]\n"
    "\n"
    "  -c FILE     control file (default: ~/.mailwardenrc, then /etc/mailwarden/mailwardenrc)\n"
    "  -t          check the control file syntax and exit\n"
    "  -I          run the daemon in the foreground (default: detach)\n"
    "  -v          verbose: log every protocol exchange (passwords are never logged)\n"
    "  -V          print the version and exit\n"
    "  -h          print this help and exit\n"
    "\n"
    "commands:\n"
    "  validate [--json]   run every check once, concurrently; exit 0 when all are ok\n"
    "  validate --now [--json]\n"
    "                      the same, done by the running daemon (needs set httpd)\n"
    "  status [--json]     what the running daemon last saw, per service and check\n"
    "  summary             one line per service\n"
    "  monitor NAME        end a service's maintenance: check it again\n"
    "  unmonitor NAME      maintenance: no checks and no alerts for NAME\n"
    "  plugin SERVICE [CHECK] [-w RANGE] [-c RANGE]\n"
    "                      run a service's checks once as a Nagios plugin (exit 0/1/2/3)\n"
    "  reload              tell the running daemon to re-read its control file (SIGHUP)\n"
    "  quit                stop the running daemon (SIGTERM)\n"
    "  start|stop|restart|monitor|unmonitor NAME|all\n"
    "  start|stop|restart|monitor|unmonitor -g GROUP\n"
    "                      ask the running daemon to run a service's start/stop programs,\n"
    "                      or to switch its checks on or off (kept across restarts)\n"
    "  (none)              run the daemon\n";

struct Options {
  std::string control_file;
  bool syntax_only = false;
  bool foreground = false;
  bool verbose = false;
  bool json = false;
  bool now = false;  // validate --now: through the running daemon
  std::string command;
  std::string target;                    // the control verbs: NAME or all
  std::string group;                     // -g GROUP
  std::vector<std::string> plugin_args;  // everything after "plugin"
};

int usage_error(const std::string& message) {
  fprintf(stderr, "mailwarden: %s\n%s", message.c_str(), kUsage);
  return kExitConfig;
}

std::string absolute(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf)) return buf;
  return path;
}

int validate(const std::shared_ptr<const mw::config::Config>& config, bool json) {
  mw::daemon::prepare_process(config->settings.concurrency);
  mw::EventBasePtr base(event_base_new());
  mw::EvdnsBasePtr dns(evdns_base_new(base.get(), EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (!dns) dns.reset(evdns_base_new(base.get(), 0));
  mw::TlsContextCache tls;
  mw::Gate handshakes(static_cast<size_t>(config->settings.handshakes));
  mw::IoContext io{base.get(), dns.get(), &tls, &handshakes};
  mw::Engine engine(io, nullptr);
  engine.ignore_schedules();  // validate checks every service now
  engine.load(config);
  engine.on_cycle_done([&](const mw::CycleStats&) { event_base_loopexit(base.get(), nullptr); });
  engine.run_cycle();
  if (engine.busy()) event_base_dispatch(base.get());
  if (json) {
    auto status = mw::report::build(engine.snapshot(false), {});  // no history to show
    fputs(mw::report::validate_json(status).c_str(), stdout);
    return mw::report::all_ok(status) ? kExitOk : kExitFailed;
  }
  // The text a few hundred services at a time: the report of 10,000 is never held whole.
  constexpr size_t kPart = 256;
  bool ok = true;
  for (size_t first = 0; first < config->services.size(); first += kPart) {
    auto part = mw::report::build(engine.snapshot(false, first, kPart), {});
    fputs(mw::report::validate_text(part).c_str(), stdout);
    ok = mw::report::all_ok(part) && ok;
  }
  return ok ? kExitOk : kExitFailed;
}

// "allow @group": pam_unix reads /etc/shadow to check another user's password. Said by -t (not by
// the parser: the answer depends on the machine, and on who runs the daemon).
std::string shadow_warning(const mw::config::Config& config) {
  const auto& h = config.settings.httpd;
  auto group = std::find_if(h.allow.begin(), h.allow.end(), [](const auto& a) {
    return a.kind == mw::config::HttpdAllow::Kind::group;
  });
  if (!h.enabled || group == h.allow.end()) return "";
  const auto& user = config.settings.user;
  uid_t uid = user ? user->uid : geteuid();
  gid_t gid = user ? user->gid : getegid();
  std::string name = user ? user->name : "";
  if (!user)
    if (const passwd* pw = getpwuid(uid)) name = pw->pw_name;
  if (mw::accounts::can_read_shadow(uid, gid, name)) return "";
  std::string who = name.empty() ? "uid " + std::to_string(uid) : name;
  return group->where.str() + ": warning: allow @" + group->group + ": the daemon runs as " + who +
         ", which cannot read /etc/shadow: PAM (pam_unix) cannot check the passwords of the "
         "group's users. Add " +
         who + " to group shadow (adduser " + who +
         " shadow), or use an htpasswd file (allow md5 FILE)";
}

// With `set httpd`, the running daemon answers itself (its live view, not the last state file).
bool show_from_daemon(const mw::config::Config& config, const std::string& what, bool json,
                      int& rc) {
  if (!config.settings.httpd.enabled || mw::daemon::running_pid(config.settings.pidfile) <= 0)
    return false;
  std::string path = what == "summary" ? "/api/v1/summary"
                     : json            ? "/api/v1/status"
                                       : "/api/v1/status?format=text";
  auto r = mw::cli::ask_daemon(config, "GET", path);
  if (!r.reached) {
    fprintf(stderr,
            r.no_login ? "mailwarden: warning: cannot log in to the daemon: %s; showing the "
                         "state file\n"
                       : "mailwarden: warning: cannot reach the daemon's HTTP interface (%s); "
                         "showing the state file\n",
            r.error.c_str());
    return false;
  }
  if (r.response.status != 200) {
    fprintf(stderr, "mailwarden: the daemon answered HTTP %d %s\n", r.response.status,
            r.response.reason.c_str());
    if (std::string why = mw::cli::explain_refusal(r); !why.empty())
      fprintf(stderr, "mailwarden: %s\n", why.c_str());
    rc = kExitFailed;
    return true;
  }
  fputs(r.response.body.c_str(), stdout);
  rc = kExitOk;
  return true;
}

// validate --now: the running daemon checks every monitored service at once and answers when
// each has run; its live results, not a second copy of every probe.
int validate_now(const mw::config::Config& config, bool json) {
  if (!config.settings.httpd.enabled) {
    fprintf(stderr,
            "mailwarden: validate --now asks the running daemon through its HTTP "
            "interface, and the control file has no set httpd\n");
    return kExitConfig;
  }
  if (mw::daemon::running_pid(config.settings.pidfile) <= 0) {
    fprintf(stderr, "mailwarden: no daemon is running (pid file %s)\n",
            config.settings.pidfile.c_str());
    return kExitFailed;
  }
  auto r = mw::cli::ask_daemon(config, "POST",
                               json ? "/api/v1/validate?format=json" : "/api/v1/validate", 130000);
  if (!r.reached) {
    fprintf(stderr,
            r.no_login ? "mailwarden: cannot log in to the daemon: %s\n"
                       : "mailwarden: cannot reach the daemon's HTTP interface (%s)\n",
            r.error.c_str());
    return kExitFailed;
  }
  if (r.response.status != 200) {
    fprintf(stderr, "mailwarden: the daemon answered HTTP %d %s\n", r.response.status,
            r.response.reason.c_str());
    if (std::string why = mw::cli::explain_refusal(r); !why.empty())
      fprintf(stderr, "mailwarden: %s\n", why.c_str());
    return kExitFailed;
  }
  fputs(r.response.body.c_str(), stdout);
  return r.response.headers["x-mailwarden-all-ok"] == "yes" ? kExitOk : kExitFailed;
}

int show_state(const std::shared_ptr<const mw::config::Config>& config, const std::string& what,
               bool json) {
  int rc = kExitOk;
  if (show_from_daemon(*config, what, json, rc)) return rc;
  mw::state::Snapshot snap;
  std::string error;
  if (!mw::state::load(config->settings.statefile, snap, error)) {
    // The daemon starts afresh from such a file (and overwrites it); show what is known.
    fprintf(stderr, "mailwarden: warning: cannot read the state file (%s); showing no results\n",
            error.c_str());
    snap = mw::state::Snapshot{};
  }
  mw::report::DaemonInfo d;
  d.pid = mw::daemon::running_pid(config->settings.pidfile);
  d.running = d.pid > 0;
  if (!d.running && snap.written == 0) {
    fprintf(stderr,
            "mailwarden: no daemon is running and no state file exists yet (%s); "
            "start it with: mailwarden -c FILE\n",
            config->settings.statefile.c_str());
    return kExitFailed;
  }
  auto status = mw::report::build(snap, d);
  std::string out = what == "summary" ? mw::report::summary_text(status)
                    : json            ? mw::report::dump(mw::report::status_json(status))
                                      : mw::report::status_text(status);
  fputs(out.c_str(), stdout);
  return kExitOk;
}

// start, stop, restart, monitor, unmonitor: through the daemon's control socket.
int control_daemon(const std::shared_ptr<const mw::config::Config>& config, const Options& opt) {
  int pid = mw::daemon::running_pid(config->settings.pidfile);
  if (pid <= 0) {
    fprintf(stderr, "mailwarden: no daemon is running (pid file %s)\n",
            config->settings.pidfile.c_str());
    return kExitFailed;
  }
  std::string line = opt.command + (opt.group.empty() ? " " + opt.target : " -g " + opt.group);
  std::string reply, error;
  if (!mw::control::request(mw::control::socket_path(config->settings.pidfile), line, reply,
                            error)) {
    fprintf(stderr, "mailwarden: %s\n", error.c_str());
    return kExitFailed;
  }
  bool ok = reply.rfind("ok: ", 0) == 0;
  fprintf(ok ? stdout : stderr, "mailwarden: %s\n", reply.substr(ok ? 4 : 7).c_str());
  return ok ? kExitOk : kExitFailed;
}

int signal_daemon(const std::shared_ptr<const mw::config::Config>& config, int sig,
                  const char* what) {
  int pid = mw::daemon::running_pid(config->settings.pidfile);
  if (pid <= 0) {
    fprintf(stderr, "mailwarden: no daemon is running (pid file %s)\n",
            config->settings.pidfile.c_str());
    return kExitFailed;
  }
  if (kill(pid, sig) != 0) {
    fprintf(stderr, "mailwarden: cannot signal pid %d: %s\n", pid, strerror(errno));
    return kExitFailed;
  }
  printf("mailwarden: %s (pid %d)\n", what, pid);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // Called as check_imap, check_delivery, ...: a drop-in for that Nagios plugin.
  if (auto rc = mw::plugin::run_dropin(argv[0], std::vector<std::string>(argv + 1, argv + argc)))
    return *rc;
  Options opt;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (opt.command == "plugin") {
      opt.plugin_args.assign(args.begin() + static_cast<long>(i), args.end());
      break;
    }
    if (a == "-c") {
      if (++i >= args.size()) return usage_error("-c needs a file name");
      opt.control_file = args[i];
    } else if (a == "-t") {
      opt.syntax_only = true;
    } else if (a == "-I") {
      opt.foreground = true;
    } else if (a == "-v") {
      opt.verbose = true;
    } else if (a == "-V" || a == "--version") {
      printf("mailwarden %s\n", PACKAGE_VERSION);
      return kExitOk;
    } else if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return kExitOk;
    } else if (a == "--json") {
      opt.json = true;
    } else if (a == "--now") {
      opt.now = true;
    } else if (a == "-g") {
      if (++i >= args.size()) return usage_error("-g needs a group name");
      opt.group = args[i];
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("unknown option " + a);
    } else if (opt.command.empty()) {
      opt.command = a;
    } else if (opt.target.empty() && mw::control::verb_from_name(opt.command)) {
      opt.target = a;
    } else {
      return usage_error("unexpected argument " + a);
    }
  }
  static const std::vector<std::string> commands = {"validate", "status",    "summary", "reload",
                                                    "quit",     "start",     "stop",    "restart",
                                                    "monitor",  "unmonitor", "plugin"};
  if (!opt.command.empty() &&
      std::find(commands.begin(), commands.end(), opt.command) == commands.end())
    return usage_error("unknown command '" + opt.command + "'");
  if (opt.command == "plugin" && opt.plugin_args.empty()) {
    printf(
        "MAILWARDEN UNKNOWN - usage: mailwarden [-c FILE] plugin SERVICE [CHECK] [-w RANGE] "
        "[-c RANGE]\n");
    return 3;
  }
  if (opt.json && opt.command != "validate" && opt.command != "status")
    return usage_error("--json goes with validate or status");
  if (opt.now && opt.command != "validate") return usage_error("--now goes with validate");
  const bool control_verb = mw::control::verb_from_name(opt.command).has_value();
  if (control_verb && opt.target.empty() == opt.group.empty())
    return usage_error(opt.command + " needs a service name, 'all', or -g GROUP");
  if (!control_verb && (!opt.target.empty() || !opt.group.empty()))
    return usage_error("a service name or -g goes with start, stop, restart, monitor, unmonitor");

  mw::log::set_verbose(opt.verbose);
  if (opt.control_file.empty()) opt.control_file = mw::config::default_control_file();
  if (opt.control_file.empty()) {
    fprintf(stderr,
            "mailwarden: no control file: none given with -c, and neither ~/.mailwardenrc nor "
            "/etc/mailwarden/mailwardenrc exists\n");
    return opt.command == "plugin" ? 3 : kExitConfig;  // Nagios UNKNOWN
  }
  opt.control_file = absolute(opt.control_file);

  auto parsed = mw::config::parse_file(opt.control_file);
  if (opt.command == "plugin") {
    // Nagios: a control file that does not parse is UNKNOWN (exit 3), with the first error.
    std::string error;
    if (!parsed.config && !parsed.diagnostics.items().empty())
      error = parsed.diagnostics.items().front().str();
    return mw::plugin::plugin_command(parsed.config, error, opt.plugin_args);
  }
  bool reads_daemon = opt.command == "status" || opt.command == "summary" ||
                      opt.command == "reload" || opt.command == "quit" || control_verb;
  if (!parsed.config && parsed.partial && reads_daemon && !opt.syntax_only) {
    // The running daemon keeps its last good configuration after a refused reload; the operator
    // must still be able to see and stop it while the file is being fixed.
    fprintf(stderr,
            "mailwarden: warning: %s has %zu error(s) (see mailwarden -t); using its pid and "
            "state file settings\n",
            opt.control_file.c_str(), parsed.diagnostics.count());
    parsed.config = parsed.partial;
  }
  if (!parsed.config) {
    for (const auto& d : parsed.diagnostics.items()) fprintf(stderr, "%s\n", d.str().c_str());
    if (parsed.diagnostics.count() > parsed.diagnostics.items().size())
      fprintf(stderr, "(%zu more errors not shown)\n",
              parsed.diagnostics.count() - parsed.diagnostics.items().size());
    return kExitConfig;
  }
  if (opt.syntax_only) {
    for (const auto& w : parsed.config->warnings) fprintf(stderr, "%s\n", w.c_str());
    if (std::string w = shadow_warning(*parsed.config); !w.empty())
      fprintf(stderr, "%s\n", w.c_str());
    printf("Control file syntax OK\n");
    return kExitOk;
  }
  if (opt.command == "validate" && opt.now) return validate_now(*parsed.config, opt.json);
  if (opt.command == "validate") return validate(parsed.config, opt.json);
  if (opt.command == "status" || opt.command == "summary")
    return show_state(parsed.config, opt.command, opt.json);
  if (opt.command == "reload") return signal_daemon(parsed.config, SIGHUP, "reload requested");
  if (opt.command == "quit") return signal_daemon(parsed.config, SIGTERM, "stop requested");
  if (control_verb) return control_daemon(parsed.config, opt);
  return mw::daemon::run(opt.control_file, parsed.config, opt.foreground);
}
