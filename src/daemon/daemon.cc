#include "daemon/daemon.h"
#include "config.h"
#include "http/from_config.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "actions/dispatcher.h"
#include "config/parser.h"
#include "daemon/control.h"
#include "daemon/privileges.h"
#include "engine/engine.h"
#include "http/server.h"
#include "protocols/smtp_client.h"
#include "state/snapshot.h"
#include "state/writer.h"
#include "util/clock.h"
#include "util/files.h"
#include "util/handles.h"
#include "util/log.h"
#include "util/procfs.h"

namespace mw::daemon {
namespace {

void apply_logging(const config::Settings& s, bool foreground) {
  switch (s.log_sink) {
    case config::LogSink::file: {
      std::string error;
      if (!log::to_file(s.logfile, error)) {
        log::to_stderr();
        log::error("%s; logging to stderr", error.c_str());
      }
      break;
    }
    case config::LogSink::syslog:
    case config::LogSink::stderr_stream: {
      if (s.log_sink == config::LogSink::stderr_stream && foreground) {
        log::to_stderr();
        break;
      }
      // A daemon has no terminal: it logs to syslog unless told otherwise.
      std::string error;
      if (!log::to_syslog(s.syslog_facility, error))
        log::error("cannot log to syslog: %s; logging to stderr instead", error.c_str());
      break;
    }
  }
}

class Daemon : public http::Control {
 public:
  Daemon(std::string control_file, std::shared_ptr<const config::Config> config, bool foreground)
      : control_file_(std::move(control_file)), foreground_(foreground) {
    base_.reset(event_base_new());
    dns_.reset(evdns_base_new(base_.get(), EVDNS_BASE_INITIALIZE_NAMESERVERS));
    if (!dns_) dns_.reset(evdns_base_new(base_.get(), 0));  // no resolv.conf: numeric only
    handshakes_ = std::make_unique<Gate>(static_cast<size_t>(config->settings.handshakes));
    io_ = IoContext{base_.get(), dns_.get(), &tls_, handshakes_.get()};
    dispatcher_ = std::make_unique<actions::Dispatcher>(io_);
    engine_ = std::make_unique<Engine>(io_, dispatcher_.get());
    engine_->load(std::move(config));
    http_ = std::make_unique<http::Server>(base_.get(), *this, smtp::default_hello_name());
  }

  // ---- http::Control: what the HTTP interface shows and does ---------------------------------
  uint64_t version() override { return engine_->changes(); }
  state::Snapshot snapshot(bool history) override {
    state::Snapshot snap = engine_->snapshot(history);
    snap.pid = static_cast<int>(getpid());
    snap.started = started_;
    snap.written = clock::wall();
    return snap;
  }
  report::DaemonFacts facts() override {
    return {engine_->last_cycle_ms(), engine_->cycles(), dispatcher_->action_counts()};
  }
  std::string check_now(const std::string& service) override {
    if (stopping_) return "mailwarden is stopping";
    if (!engine_->run_now(service)) return "no service named '" + service + "'";
    if (!engine_->monitored(service)) return "'" + service + "' is not monitored";
    log::info("'%s': checking now on request", service.c_str());
    return "";
  }
  std::string monitor(const std::string& service) override {
    if (!engine_->set_monitored(service, true)) return "no service named '" + service + "'";
    save_now(small_state());
    return "";
  }
  std::string unmonitor(const std::string& service) override {
    if (!engine_->set_monitored(service, false)) return "no service named '" + service + "'";
    save_now(small_state());
    return "";
  }
  std::string act(const std::string& verb, const std::string& service,
                  std::string& message) override {
    auto v = control::verb_from_name(verb);
    if (!v || service == "all") return "unknown action '" + verb + "'";
    if (stopping_) return "mailwarden is stopping";
    auto r = control::apply(*engine_, *dispatcher_, *v, service, "");
    if (!r.ok) return r.message;
    save_now(small_state());
    message = r.message;
    return "";
  }

  int run() {
    const auto& s = engine_->config()->settings;
    started_ = clock::wall();
    restore_state();
    for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) {
      signals_.emplace_back(evsignal_new(base_.get(), sig, &Daemon::on_signal, this));
      evsignal_add(signals_.back().get(), nullptr);
    }
    engine_->on_cycle_done([this](const CycleStats& st) { cycle_done(st); });
    engine_->on_result([this] { schedule_save(); });
    std::string http_error;
    if (!http_->configure(http::from_config(s.httpd), s.cycle_s, http_error)) {
      log::error("%s", http_error.c_str());
      return 1;
    }
    dispatcher_->on_monitor(
        [this](const std::string& name, bool on) { (void)engine_->set_monitored(name, on); });
    control_ = std::make_unique<control::Listener>(io_, *engine_, *dispatcher_);
    std::string control_error;
    if (!control_->open(control::socket_path(s.pidfile), control_error)) {
      log::warning("%s; the control verbs (start, stop, monitor, ...) cannot reach this daemon",
                   control_error.c_str());
      control_.reset();
    }
    cycle_timer_.reset(event_new(base_.get(), -1, EV_PERSIST, &Daemon::on_cycle_timer, this));
    save_timer_.reset(evtimer_new(base_.get(), &Daemon::on_save_timer, this));
    start_timer_.reset(evtimer_new(base_.get(), &Daemon::on_start_timer, this));
    timeval delay{s.start_delay_s, 0};
    evtimer_add(start_timer_.get(), &delay);
    log::info("mailwarden " PACKAGE_VERSION
              " started (pid %d): %zu services, %zu checks, "
              "cycle %d s, control file %s",
              static_cast<int>(getpid()), engine_->config()->services.size(),
              engine_->checks().size(), s.cycle_s, control_file_.c_str());
    dispatcher_->instance_event("started",
                                "mailwarden started (pid " + std::to_string(getpid()) + ")");
    event_base_dispatch(base_.get());
    save_now(true);
    log::info("mailwarden stopped");
    return 0;
  }

 private:
  void restore_state() {
    state::Snapshot snap;
    std::string error;
    if (!state::load(engine_->config()->settings.statefile, snap, error)) {
      log::warning("cannot read the state file (%s); starting with a fresh state", error.c_str());
      return;
    }
    // A state file edited by hand (or from another version) may hold the wrong types; it must
    // not keep the daemon from starting.
    // After a reboot each service's "onreboot" decides whether it is monitored.
    bool rebooted = !snap.boot_id.empty() && !boot_id_.empty() && snap.boot_id != boot_id_;
    if (rebooted) log::info("the host has rebooted since the state file was written");
    try {
      engine_->restore(snap, rebooted);
      dispatcher_->restore_state(snap.actions);
    } catch (const std::exception& e) {
      log::warning("the state file %s has an unexpected shape (%s); starting with a fresh state",
                   engine_->config()->settings.statefile.c_str(), e.what());
      engine_->restore(state::Snapshot{});
    }
  }

  void start_cycles() {
    timeval every{engine_->config()->settings.cycle_s, 0};
    event_del(cycle_timer_.get());
    event_add(cycle_timer_.get(), &every);
    engine_->run_cycle();
  }

  void cycle_done(const CycleStats& st) {
    std::string failed;
    for (size_t i = 0; i < st.failures.size() && i < 5; ++i) failed += "; " + st.failures[i];
    if (st.failures.size() > 5) failed += "; ...";
    save_now(small_state());
    log::info("cycle %lld: %d checks, %d ok, %d failed in %lld ms%s",
              static_cast<long long>(st.cycle), st.checks, st.ok, st.failed,
              static_cast<long long>(st.elapsed_ms), failed.c_str());
  }

  // A small state (a few hundred checks: a millisecond or two of JSON) is on disk before the
  // cycle line is logged and before a verb answers, so that whoever reads the state file next
  // (status without set httpd) sees it; a large one is written off the loop only.
  [[nodiscard]] bool small_state() const { return engine_->checks().size() <= 500; }

  void schedule_save() {
    if (evtimer_pending(save_timer_.get(), nullptr)) return;
    timeval tv{1, 0};
    evtimer_add(save_timer_.get(), &tv);
  }

  // The loop takes the snapshot; the writer thread serialises and writes it (state/writer.h).
  // `wait`: return once it is on disk (at the stop).
  void save_now(bool wait = false) {
    dispatcher_->persist();  // the state never records a change whose alert is not on disk
    state::Snapshot snap = engine_->snapshot(true);
    snap.pid = static_cast<int>(getpid());
    snap.started = started_;
    snap.written = clock::wall();
    snap.boot_id = boot_id_;
    snap.actions = dispatcher_->save_state();
    std::string error = writer_.submit(engine_->config()->settings.statefile, std::move(snap));
    if (!error.empty()) log::error("cannot write the state file: %s", error.c_str());
    if (!wait) return;
    error = writer_.flush();
    if (!error.empty()) log::error("cannot write the state file: %s", error.c_str());
  }

  // logrotate moved the log file away: write to a new one by the same name.
  static void reopen_log() {
    std::string error;
    if (!log::reopen(error)) log::error("%s", error.c_str());
  }

  void reload() {
    reopen_log();
    log::info("reloading %s", control_file_.c_str());
    auto parsed = config::parse_file(control_file_);
    if (!parsed.config) {
      for (const auto& d : parsed.diagnostics.items()) log::error("%s", d.str().c_str());
      log::error(
          "reload refused: %zu error(s) in the control file; the running configuration "
          "stays in effect",
          parsed.diagnostics.count());
      return;
    }
    int old_cycle = engine_->config()->settings.cycle_s;
    tls_.clear();  // a CA file replaced on disk is read again (live sessions keep their context)
    apply_logging(parsed.config->settings, foreground_);
    for (const auto& w : parsed.config->warnings) log::info("%s", w.c_str());
    engine_->load(parsed.config);
    std::string http_error;
    if (!http_->configure(http::from_config(parsed.config->settings.httpd),
                          parsed.config->settings.cycle_s, http_error))
      log::error("%s; the HTTP interface stays as it was", http_error.c_str());
    log::info("reloaded: %zu services, %zu checks", parsed.config->services.size(),
              engine_->checks().size());
    dispatcher_->instance_event("reloaded", "mailwarden reloaded " + control_file_);
    if (parsed.config->settings.cycle_s != old_cycle &&
        event_pending(cycle_timer_.get(), EV_TIMEOUT, nullptr)) {
      timeval every{parsed.config->settings.cycle_s, 0};
      event_del(cycle_timer_.get());
      event_add(cycle_timer_.get(), &every);
    }
  }

  static void on_signal(evutil_socket_t sig, short, void* arg) {
    auto* self = static_cast<Daemon*>(arg);
    switch (sig) {
      case SIGHUP:
        self->reload();
        break;
      case SIGUSR2:
        reopen_log();
        log::info("SIGUSR2: log file reopened");
        break;
      case SIGUSR1:
        if (self->stopping_) break;
        log::info("SIGUSR1: starting a cycle now");
        self->engine_->run_cycle();
        break;
      default:
        log::info("signal %d: stopping", static_cast<int>(sig));
        self->stop();
        break;
    }
  }
  // No new cycle starts; the checks in flight are cancelled (connections closed, what they hold
  // freed, no result recorded); an alert mail being sent may finish (so that it is not sent
  // again after a restart), bounded by the mail servers' timeout.
  void stop() {
    if (stopping_) {
      event_base_loopexit(base_.get(), nullptr);  // a second signal: now
      return;
    }
    stopping_ = true;
    event_del(cycle_timer_.get());
    event_del(start_timer_.get());
    event_del(save_timer_.get());
    dispatcher_->instance_event("stopped",
                                "mailwarden stopped (pid " + std::to_string(getpid()) + ")");
    engine_->stop([this] {
      int64_t wait_ms = 5000;
      for (const auto& ms : engine_->config()->settings.mailservers)
        wait_ms = std::max(wait_ms, ms.timeout_ms);
      dispatcher_->stop(wait_ms, [this] { event_base_loopexit(base_.get(), nullptr); });
    });
  }
  static void on_cycle_timer(evutil_socket_t, short, void* arg) {
    static_cast<Daemon*>(arg)->engine_->run_cycle();
  }
  static void on_start_timer(evutil_socket_t, short, void* arg) {
    static_cast<Daemon*>(arg)->start_cycles();
  }
  static void on_save_timer(evutil_socket_t, short, void* arg) {
    static_cast<Daemon*>(arg)->save_now();
  }

  std::string control_file_;
  bool foreground_;
  EventBasePtr base_;
  EvdnsBasePtr dns_;
  TlsContextCache tls_;
  std::unique_ptr<Gate> handshakes_;  // sized at start; a reload does not resize it
  IoContext io_;
  std::unique_ptr<actions::Dispatcher> dispatcher_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<control::Listener> control_;
  std::vector<EventPtr> signals_;
  EventPtr cycle_timer_, save_timer_, start_timer_;
  state::Writer writer_;
  time_t started_ = 0;
  std::string boot_id_ = procfs::boot_id();
  bool stopping_ = false;
};

bool daemonize(std::string& error) {
  pid_t pid = fork();
  if (pid < 0) {
    error = std::string("fork: ") + strerror(errno);
    return false;
  }
  if (pid > 0) _exit(0);
  setsid();
  pid = fork();
  if (pid < 0) _exit(1);
  if (pid > 0) _exit(0);
  if (chdir("/") != 0) _exit(1);
  umask(027);
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    if (devnull > 2) close(devnull);
  }
  return true;
}

}  // namespace

int running_pid(const std::string& pidfile) {
  std::string error;
  auto text = files::read(pidfile, error, 4096);
  if (!text) return 0;
  int pid = atoi(text->c_str());
  if (pid <= 0) return 0;
  if (kill(pid, 0) != 0 && errno == ESRCH) return 0;
  // A pid file outlives reboots; its number may now belong to another program. Only a process
  // running the mailwarden binary counts.
  char exe[PATH_MAX];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), exe, sizeof exe - 1);
  if (n <= 0) return pid;  // no /proc: trust the pid file
  exe[n] = '\0';
  std::string name = exe;
  if (auto deleted = name.rfind(" (deleted)"); deleted != std::string::npos) name.resize(deleted);
  name = name.substr(name.rfind('/') + 1);
  return name == "mailwarden" ? pid : 0;
}

void prepare_process(int connections) {
  signal(SIGPIPE, SIG_IGN);
  // One malloc arena for the loop and the state writer's thread: a second arena would keep its
  // own free memory, and the daemon's resident size would grow by the size of a state file.
  (void)mallopt(M_ARENA_MAX, 1);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = static_cast<rlim_t>(connections) + 256;
    if (rl.rlim_cur < want) {
      rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
}

int run(const std::string& control_file, std::shared_ptr<const config::Config> config,
        bool foreground) {
  const auto& s = config->settings;
  const std::string pidfile = s.pidfile;
  if (int pid = running_pid(s.pidfile); pid > 0 && pid != getpid()) {
    fprintf(stderr, "mailwarden: already running with pid %d (pid file %s)\n", pid,
            s.pidfile.c_str());
    return 1;
  }
  const char* allow = getenv("MAILWARDEN_ALLOW_ROOT");
  PrivilegePlan plan = plan_privileges(*config, geteuid(), allow && std::string(allow) == "1");
  if (plan.kind == PrivilegePlan::Kind::refuse) {
    fprintf(stderr, "mailwarden: %s\n", plan.explanation.c_str());
    return 1;
  }
  // Dropped before any file is written, so that the pid, state, queue and log files belong to
  // the user that will rewrite, rotate and remove them.
  if (plan.kind == PrivilegePlan::Kind::drop) {
    std::string error;
    if (!drop_to(*s.user, error)) {
      fprintf(stderr, "mailwarden: %s\n", error.c_str());
      return 1;
    }
  }
  if (!foreground) {
    std::string error;
    if (!daemonize(error)) {
      fprintf(stderr, "mailwarden: %s\n", error.c_str());
      return 1;
    }
  }
  apply_logging(s, foreground);
  if (!plan.explanation.empty()) {
    if (plan.kind == PrivilegePlan::Kind::as_is)
      log::warning("%s", plan.explanation.c_str());
    else
      log::info("%s", plan.explanation.c_str());
  }
  for (const auto& w : config->warnings) log::info("%s", w.c_str());
  prepare_process(s.concurrency);
  std::string error;
  if (!files::write_atomic(s.pidfile, std::to_string(getpid()) + "\n", 0644, error)) {
    log::error("cannot write the pid file: %s", error.c_str());
    return 1;
  }
  int rc;
  try {
    Daemon d(control_file, std::move(config), foreground);
    rc = d.run();
  } catch (const std::exception& e) {
    // A broken invariant: still leave no pid file that names a dead process.
    log::error("internal error: %s", e.what());
    rc = 1;
  }
  unlink(pidfile.c_str());
  return rc;
}

}  // namespace mw::daemon
