// mw-peer: serves scripted peers (README.md) for shell/python integration tests and benchmarks.
//
//   mw-peer [--bind ADDR] [--port N] [--certs DIR] [--trace] [--fail-on-error] SCRIPT...
//   mw-peer --make-certs DIR
//
// One listener per script.  Once all of them listen, prints "PORT <n> <script>" per script to
// stdout (flushed); each expectation mismatch is printed as "ERROR <script> <message>" when it
// happens.  Runs until SIGTERM or SIGINT, then exits 0 (or 3 with --fail-on-error if any
// mismatch was recorded).  Bad arguments, scripts or certificates exit 2.
#include <event2/event.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "handles.h"
#include "peer.h"
#include "testcerts.h"

namespace {

using mwtest::peerimpl::EventBasePtr;
using mwtest::peerimpl::EventPtr;

constexpr int kExitUsage = 2;
constexpr int kExitMismatch = 3;

struct Args {
  std::string bind = "127.0.0.1";
  int port = 0;
  std::string certs_dir;
  std::string make_certs_dir;
  bool trace = false;
  bool fail_on_error = false;
  std::vector<std::string> scripts;
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::fprintf(stderr, "mw-peer: %s\n", problem.c_str());
  std::fprintf(stderr,
               "usage: mw-peer [--bind ADDR] [--port N] [--certs DIR] [--trace] "
               "[--fail-on-error] SCRIPT...\n"
               "       mw-peer --make-certs DIR\n"
               "With --port N and several scripts, they listen on N, N+1, ...\n");
  std::exit(kExitUsage);
}

int parse_port(const std::string& text) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 0 || value > 65535) usage("bad port " + text);
  return static_cast<int>(value);
}

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--bind") {
      args.bind = value();
    } else if (arg == "--port") {
      args.port = parse_port(value());
    } else if (arg == "--certs") {
      args.certs_dir = value();
    } else if (arg == "--make-certs") {
      args.make_certs_dir = value();
    } else if (arg == "--trace") {
      args.trace = true;
    } else if (arg == "--fail-on-error") {
      args.fail_on_error = true;
    } else if (arg == "-h" || arg == "--help") {
      usage("");
    } else if (arg.size() > 1 && arg[0] == '-') {
      usage("unknown option " + arg);
    } else {
      args.scripts.push_back(arg);
    }
  }
  if (!args.make_certs_dir.empty() && !args.scripts.empty()) usage("--make-certs takes no script");
  if (args.make_certs_dir.empty() && args.scripts.empty()) usage("no script given");
  if (args.port && args.port + args.scripts.size() - 1 > 65535) usage("ports past 65535");
  return args;
}

// A benchmark may hold a thousand connections: use the hard limit of open files.
void raise_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

void stop_loop(evutil_socket_t, short, void* base) {
  event_base_loopexit(static_cast<event_base*>(base), nullptr);
}

std::vector<mwtest::ScriptedPeer> start_peers(event_base* base, const Args& args,
                                              const mwtest::TestCerts* certs, int& mismatches) {
  std::vector<mwtest::ScriptedPeer> peers;
  for (size_t i = 0; i < args.scripts.size(); ++i) {
    const std::string& script = args.scripts[i];
    mwtest::PeerOptions opts;
    opts.bind = args.bind;
    opts.port = static_cast<uint16_t>(args.port ? args.port + static_cast<int>(i) : 0);
    opts.certs = certs;
    opts.trace = args.trace;
    opts.on_error = [script, &mismatches](const std::string& message) {
      ++mismatches;
      std::printf("ERROR %s %s\n", script.c_str(), message.c_str());
      std::fflush(stdout);
    };
    peers.push_back(mwtest::ScriptedPeer::from_file(base, script, std::move(opts)));
  }
  return peers;
}

int serve(const Args& args) {
  raise_file_limit();
  EventBasePtr base(event_base_new());
  if (!base) throw std::runtime_error("event_base_new failed");
  mwtest::TestCerts certs;
  if (!args.certs_dir.empty()) certs = mwtest::TestCerts::open_or_create(args.certs_dir);

  int mismatches = 0;
  std::vector<mwtest::ScriptedPeer> peers =
      start_peers(base.get(), args, args.certs_dir.empty() ? nullptr : &certs, mismatches);
  EventPtr sigterm(evsignal_new(base.get(), SIGTERM, stop_loop, base.get()));
  EventPtr sigint(evsignal_new(base.get(), SIGINT, stop_loop, base.get()));
  evsignal_add(sigterm.get(), nullptr);
  evsignal_add(sigint.get(), nullptr);

  for (size_t i = 0; i < peers.size(); ++i) {
    std::printf("PORT %u %s\n", peers[i].port(), args.scripts[i].c_str());
  }
  std::fflush(stdout);
  event_base_dispatch(base.get());

  peers.clear();  // before the event base goes
  return args.fail_on_error && mismatches > 0 ? kExitMismatch : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  try {
    if (!args.make_certs_dir.empty()) {
      mwtest::TestCerts::create(args.make_certs_dir);
      return 0;
    }
    return serve(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mw-peer: %s\n", e.what());
    if (args.certs_dir.empty() && std::strstr(e.what(), "needs certificates")) {
      std::fprintf(stderr, "mw-peer: scripts that use tls or starttls need --certs DIR\n");
    }
    return kExitUsage;
  }
}
