// Self-check of the scripted peer player: runs scripts on a libevent loop in the main thread and
// drives them from a blocking sockets + OpenSSL client in a second thread.
//
//   peer-selfcheck [--scripts DIR] [--trace]
//
// Prints "ok - NAME" / "not ok - NAME: why" per check and ends with "N passed, N failed";
// exits non-zero if anything failed.  Meant to be clean under valgrind --leak-check=full.
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "handles.h"
#include "peer.h"
#include "testcerts.h"

#ifndef PEER_SCRIPTS_DIR
#define PEER_SCRIPTS_DIR "tests/peers/scripts"
#endif

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using mwtest::PeerOptions;
using mwtest::ScriptedPeer;
using mwtest::TestCerts;
using mwtest::peerimpl::EventBasePtr;
using mwtest::peerimpl::EventPtr;
using mwtest::peerimpl::SslCtxPtr;
using mwtest::peerimpl::SslPtr;
using mwtest::peerimpl::UniqueFd;
using mwtest::peerimpl::X509Ptr;

constexpr int kClientTimeoutSec = 10;  // generous: valgrind is slow
constexpr auto kLoopTimeout = 30s;

int g_passed = 0;
int g_failed = 0;

// One named check; prints its verdict when it goes out of scope.
class Test {
 public:
  explicit Test(std::string name) : name_(std::move(name)) {}
  Test(const Test&) = delete;
  Test& operator=(const Test&) = delete;
  ~Test() {
    if (problems_.empty()) {
      ++g_passed;
      std::printf("ok - %s\n", name_.c_str());
    } else {
      ++g_failed;
      std::printf("not ok - %s: %s\n", name_.c_str(), problems_.c_str());
    }
    std::fflush(stdout);
  }
  bool check(bool ok, const std::string& what) {
    if (!ok) problems_ += (problems_.empty() ? "" : "; ") + what;
    return ok;
  }

 private:
  std::string name_;
  std::string problems_;
};

std::string quoted(const std::vector<std::string>& lines) {
  std::string out = "[";
  for (const auto& l : lines) out += (out.size() > 1 ? ", '" : "'") + l.substr(0, 120) + "'";
  return out + "]";
}

// ---------------------------------------------------------------------------------------------
// The client: plain blocking sockets and OpenSSL, run in a second thread.

enum class End { kNone, kEof, kReset, kCloseNotify, kTlsDirty, kTimeout, kError };

const char* end_name(End e) {
  switch (e) {
    case End::kNone:
      return "none";
    case End::kEof:
      return "EOF";
    case End::kReset:
      return "RST";
    case End::kCloseNotify:
      return "close_notify";
    case End::kTlsDirty:
      return "TLS EOF without close_notify";
    case End::kTimeout:
      return "timeout";
    case End::kError:
      return "error";
  }
  return "?";
}

class Client {
 public:
  explicit Client(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!fd_ || ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
    timeval tv{kClientTimeoutSec, 0};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  void send(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      int n = ssl_ ? SSL_write(ssl_.get(), data.data() + done, static_cast<int>(data.size() - done))
                   : static_cast<int>(
                         ::send(fd_.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL));
      if (n <= 0) throw std::runtime_error("send failed");
      done += static_cast<size_t>(n);
    }
  }
  void sendline(const std::string& text) { send(text + "\r\n"); }

  // One line without its CRLF; throws if the connection ends first.
  std::string line() {
    for (;;) {
      size_t eol = buf_.find('\n');
      if (eol != std::string::npos) {
        std::string l = buf_.substr(0, eol);
        buf_.erase(0, eol + 1);
        if (!l.empty() && l.back() == '\r') l.pop_back();
        return l;
      }
      if (!fill()) throw std::runtime_error(std::string("ended before a line: ") + end_name(end_));
    }
  }

  std::string read_exact(size_t n) {
    while (buf_.size() < n) {
      if (!fill()) throw std::runtime_error("ended before " + std::to_string(n) + " bytes");
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }

  // Reads (and discards) until the connection ends; returns how it ended.
  End read_end() {
    buf_.clear();
    while (fill()) buf_.clear();
    return end_;
  }

  // Everything until the end of the connection.
  std::string read_all() {
    while (fill()) {
    }
    return std::exchange(buf_, {});
  }

  bool readable_within(std::chrono::milliseconds ms) {
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(ms.count())) > 0;
  }

  void shutdown_write() { ::shutdown(fd_.get(), SHUT_WR); }

  // Client-side TLS on the connected socket.  Does not fail on a bad certificate: returns the
  // verification result (X509_V_OK, X509_V_ERR_...) so the test can check it.
  long start_tls(const std::string& ca_file, const std::string& host) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_ || SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("client SSL_CTX setup failed");
    }
    ssl_.reset(SSL_new(ctx_.get()));
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
    bool is_ip = host.find_first_not_of("0123456789.") == std::string::npos;
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      SSL_set1_host(ssl_.get(), host.c_str());
      SSL_set_tlsext_host_name(ssl_.get(), host.c_str());
    }
    SSL_set_verify(ssl_.get(), SSL_VERIFY_NONE, nullptr);
    SSL_set_fd(ssl_.get(), fd_.get());
    if (SSL_connect(ssl_.get()) != 1) {
      ERR_clear_error();
      throw std::runtime_error("TLS handshake failed");
    }
    return SSL_get_verify_result(ssl_.get());
  }

  X509Ptr peer_certificate() const { return X509Ptr(SSL_get1_peer_certificate(ssl_.get())); }

  void tls_close_notify() { SSL_shutdown(ssl_.get()); }

 private:
  // Appends what the socket has to buf_; false (and end_ set) when the connection ended.
  bool fill() {
    char chunk[65536];
    int n = ssl_ ? SSL_read(ssl_.get(), chunk, sizeof chunk)
                 : static_cast<int>(::recv(fd_.get(), chunk, sizeof chunk, 0));
    int saved_errno = errno;
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    end_ = ssl_ ? tls_end(n, saved_errno) : plain_end(n, saved_errno);
    return false;
  }

  static End plain_end(int n, int err) {
    if (n == 0) return End::kEof;
    if (err == ECONNRESET) return End::kReset;
    if (err == EAGAIN || err == EWOULDBLOCK) return End::kTimeout;
    return End::kError;
  }

  End tls_end(int n, int err) const {
    int code = SSL_get_error(ssl_.get(), n);
    unsigned long reason = ERR_GET_REASON(ERR_peek_error());
    ERR_clear_error();
    if (code == SSL_ERROR_ZERO_RETURN) return End::kCloseNotify;
    if (code == SSL_ERROR_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
      return End::kTlsDirty;
    if (code == SSL_ERROR_WANT_READ) return End::kTimeout;
    if (code == SSL_ERROR_SYSCALL && err == ECONNRESET) return End::kReset;
    if (code == SSL_ERROR_SYSCALL && n == 0) return End::kTlsDirty;
    return End::kError;
  }

  UniqueFd fd_;
  SslCtxPtr ctx_;
  SslPtr ssl_;  // after ctx_: freed first
  std::string buf_;
  End end_ = End::kNone;
};

// ---------------------------------------------------------------------------------------------
// Running the loop while the client works

struct Env {
  event_base* base;
  TestCerts certs;
  std::string scripts;
  bool trace;

  PeerOptions options() const {
    PeerOptions opts;
    opts.certs = &certs;
    opts.trace = trace;
    return opts;
  }
  ScriptedPeer peer(const std::string& text) const { return ScriptedPeer(base, text, options()); }
  ScriptedPeer script(const std::string& file) const {
    return ScriptedPeer::from_file(base, scripts + "/" + file, options());
  }
};

struct Poll {
  event_base* base;
  std::function<bool()> done;
  Clock::time_point deadline;
};

void poll_cb(evutil_socket_t, short, void* arg) {
  auto* p = static_cast<Poll*>(arg);
  if (p->done() || Clock::now() > p->deadline) event_base_loopbreak(p->base);
}

// Runs the loop until done() is true (checked every 2 ms) or the timeout; returns done().
bool run_until(event_base* base, std::function<bool()> done, std::chrono::milliseconds timeout) {
  Poll p{base, std::move(done), Clock::now() + timeout};
  EventPtr timer(event_new(base, -1, EV_PERSIST, poll_cb, &p));
  timeval tv{0, 2000};
  event_add(timer.get(), &tv);
  event_base_dispatch(base);
  return p.done();
}

// Runs client() in a thread while the loop serves the peer, until the client returned and the
// peer closed all its connections.  Returns "" or what went wrong.
std::string run_client(event_base* base, const ScriptedPeer& peer,
                       const std::function<void()>& client) {
  std::atomic<bool> finished{false};
  std::string failure;
  std::thread thread([&] {
    try {
      client();
    } catch (const std::exception& e) {
      failure = std::string("client: ") + e.what();
    }
    finished = true;
  });
  bool idle = run_until(
      base, [&] { return finished.load() && peer.open_connections() == 0; }, kLoopTimeout);
  if (!finished)
    run_until(
        base, [&] { return finished.load(); }, kLoopTimeout);
  thread.join();
  if (failure.empty() && !idle) failure = "the peer did not close its connections";
  return failure;
}

// The CAPABILITY + LOGOUT exchange of the imap-*.peer scripts, from after the greeting.
void imap_capability_logout(Client& c, std::vector<std::string>& got) {
  c.sendline("a1 CAPABILITY");
  got.push_back(c.line());
  got.push_back(c.line());
  c.sendline("a2 LOGOUT");
  got.push_back(c.line());
  got.push_back(c.line());
}

const std::vector<std::string> kLogoutReplies = {
    "* CAPABILITY IMAP4rev1", "a1 OK CAPABILITY completed", "* BYE IMAP4rev1 server logging out",
    "a2 OK LOGOUT completed"};

// ---------------------------------------------------------------------------------------------
// Script parsing

void test_parse_errors(const Env& env) {
  struct Case {
    std::string script, message;
  };
  const std::vector<Case> cases = {
      {"bogus\n", "script:1: unknown command 'bogus'"},
      {"\n# comment\nsend \"abc\n", "script:3: unterminated string"},
      {"expect /(/\n", "script:1: bad regex /(/"},
      {"expect /a/x\n", "script:1: unknown regex flag 'x'"},
      {"expect /a\n", "script:1: unterminated /regex/"},
      {"expect\n", "script:1: missing /regex/ or 'any'"},
      {"expect maybe\n", "script:1: expected /regex/ or 'any'"},
      {"send \"x\"\ntls good\n", "script:2: tls must be the first command"},
      {"close\nsend \"x\"\n", "script:2: unreachable"},
      {"tls nosuch\n", "script:1: unknown certificate 'nosuch'"},
      {"starttls good\nstarttls good\n", "script:2: the connection is already TLS"},
      {"send \"\\q\"\n", "script:1: unknown escape \\q"},
      {"send \"\\x4g\"\n", "script:1: \\x needs two hex digits"},
      {"send \"$x\"\n", "script:1: '$' must be followed by a digit"},
      {"sleep soon\n", "script:1: expected a number for milliseconds"},
      {"repeat 3 \"\"\n", "script:1: repeat needs a non-empty string"},
      {"send \"a\" extra\n", "script:1: unexpected 'extra'"},
      {"garbage 99999999999999999999999\n", "script:1: number too large"},
  };
  for (const auto& c : cases) {
    Test t("parse error: " + c.message);
    try {
      env.peer(c.script);
      t.check(false, "no exception");
    } catch (const std::runtime_error& e) {
      t.check(std::string(e.what()).rfind(c.message, 0) == 0, std::string("got: ") + e.what());
    }
  }
  Test t("parse error: tls without certificates");
  try {
    ScriptedPeer peer(env.base, "tls good\n");
    t.check(false, "no exception");
  } catch (const std::runtime_error& e) {
    t.check(std::string(e.what()) == "script:1: tls needs certificates (set PeerOptions::certs)",
            std::string("got: ") + e.what());
  }
}

void test_parse_ok(const Env& env) {
  Test t("parse: comments, blank lines, CRLF script lines, all commands");
  try {
    ScriptedPeer peer = env.peer(
        "  # comment\r\n\r\nsend \"a\\r\\n\" # trailing comment\nsendline \"b\"\n"
        "expect /^x\\/y$/i\nexpect any\nexpect-optional /z/\nsleep 0\nrepeat 2 \"ab\"\n"
        "garbage 10\ngarbage 10 42\nstarttls good\nclose-dirty\n");
    t.check(peer.port() != 0, "no port");
  } catch (const std::exception& e) {
    t.check(false, e.what());
  }
}

void test_starter_scripts(const Env& env) {
  Test t("starter scripts parse");
  const std::vector<std::string> required = {
      "imap-logout-bye-ok.peer",  "imap-logout-bye-close.peer",
      "imap-logout-ok-only.peer", "imap-logout-close.peer",
      "imap-logout-no.peer",      "imap-bye-greeting.peer",
      "imap-garbage.peer",        "imap-silence.peer",
      "imap-long-line.peer",      "imaps-logout-dirty-close.peer"};
  for (const auto& name : required) {
    t.check(std::filesystem::exists(env.scripts + "/" + name), "missing " + name);
  }
  int parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(env.scripts)) {
    if (entry.path().extension() != ".peer") continue;
    try {
      ScriptedPeer::from_file(env.base, entry.path().string(), env.options());
      ++parsed;
    } catch (const std::exception& e) {
      t.check(false, e.what());
    }
  }
  t.check(parsed >= static_cast<int>(required.size()), "only " + std::to_string(parsed));
}

// ---------------------------------------------------------------------------------------------
// Plain-text exchanges

void test_logout_bye_ok(const Env& env) {
  Test t("imap-logout-bye-ok: greeting, CAPABILITY, LOGOUT, BYE, OK, FIN");
  ScriptedPeer peer = env.script("imap-logout-bye-ok.peer");
  std::string greeting;
  std::vector<std::string> got;
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    greeting = c.line();
    imap_capability_logout(c, got);
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(greeting == "* OK [CAPABILITY IMAP4rev1] ready", "greeting " + greeting);
  t.check(got == kLogoutReplies, "replies " + quoted(got));
  t.check(end == End::kEof, std::string("end ") + end_name(end));
  t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
  t.check(peer.received() == std::vector<std::string>{"a1 CAPABILITY", "a2 LOGOUT"},
          "received " + quoted(peer.received()));
  t.check(peer.connections() == 1, "connections");
}

void test_mismatch(const Env& env) {
  Test t("expect mismatch: recorded, connection closed");
  ScriptedPeer peer = env.script("imap-logout-bye-ok.peer");
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    c.line();
    c.sendline("a1 CAPABILITY");
    c.line();
    c.line();
    c.sendline("a2 NOOP");
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(end == End::kEof, std::string("end ") + end_name(end));
  t.check(peer.errors() ==
              std::vector<std::string>{"line 8: expected /^(\\S+) LOGOUT$/i, got 'a2 NOOP'"},
          "errors " + quoted(peer.errors()));
}

void test_closed_before_expect(const Env& env) {
  Test t("client closed before expect: recorded");
  ScriptedPeer peer = env.peer("sendline \"hi\"\nexpect /^QUIT$/\n");
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    c.line();
  });
  t.check(failure.empty(), failure);
  t.check(
      peer.errors() == std::vector<std::string>{"line 2: client closed before expected /^QUIT$/"},
      "errors " + quoted(peer.errors()));
}

void test_expect_optional(const Env& env) {
  Test t("expect-optional: no error; a half-closed client still gets the rest");
  ScriptedPeer peer = env.peer("sendline \"hi\"\nexpect-optional any\nsendline \"bye\"\n");
  std::string first, second;
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    first = c.line();
    c.shutdown_write();
    second = c.line();
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(first == "hi" && second == "bye", "lines '" + first + "' '" + second + "'");
  t.check(end == End::kEof, std::string("end ") + end_name(end));
  t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
}

void test_captures_and_escapes(const Env& env) {
  Test t("escapes and $N captures");
  ScriptedPeer peer = env.peer(
      "send \"\\x00\\xff\\\\\\\"\\t\\$|\"\n"
      "expect /^(\\w+) (\\w+)$/\n"
      "sendline \"$2 $1 [$0] [$3]\"\n"
      "close\n");
  std::string raw, reply;
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    raw = c.read_exact(7);
    c.sendline("hello world");
    reply = c.line();
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(raw == std::string("\x00\xff\\\"\t$|", 7), "raw bytes");
  t.check(reply == "world hello [hello world] []", "reply " + reply);
  t.check(end == End::kEof, std::string("end ") + end_name(end));
}

void test_drain(const Env& env) {
  for (const std::string script : {"sendline \"hi\"\ndrain\n", "sendline \"hi\"\n"}) {
    Test t(script.find("drain") != std::string::npos ? "drain: keeps lines, ends on client close"
                                                     : "end of script drains like drain");
    ScriptedPeer peer = env.peer(script);
    std::string failure = run_client(env.base, peer, [&] {
      Client c(peer.port());
      c.line();
      c.send("one\r\ntwo\nthree");
    });
    t.check(failure.empty(), failure);
    t.check(peer.received() == std::vector<std::string>{"one", "two"},
            "received " + quoted(peer.received()));
    t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
  }
}

void test_close_kinds_plain(const Env& env) {
  for (const std::string cmd : {"close", "close-dirty"}) {
    Test t("plain " + cmd + ": greeting then FIN");
    ScriptedPeer peer = env.peer("sendline \"* OK\"\n" + cmd + "\n");
    End end = End::kNone;
    std::string failure = run_client(env.base, peer, [&] {
      Client c(peer.port());
      c.line();
      end = c.read_end();
    });
    t.check(failure.empty(), failure);
    t.check(end == End::kEof, std::string("end ") + end_name(end));
  }
}

void test_reset(const Env& env) {
  Test t("reset: greeting then RST (ECONNRESET)");
  ScriptedPeer peer = env.script("imap-greeting-reset.peer");
  std::string greeting;
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    greeting = c.line();
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(greeting == "* OK [CAPABILITY IMAP4rev1] ready", "greeting " + greeting);
  t.check(end == End::kReset, std::string("end ") + end_name(end));
}

void test_hang(const Env& env) {
  Test t("hang (imap-silence): says nothing, reads nothing, closes when the client leaves");
  ScriptedPeer peer = env.script("imap-silence.peer");
  bool spoke = true;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    spoke = c.readable_within(300ms);
    c.sendline("a1 CAPABILITY");
  });
  t.check(failure.empty(), failure);
  t.check(!spoke, "the tarpit sent something");
  t.check(peer.received().empty(), "received " + quoted(peer.received()));
}

void test_sleep_does_not_block(const Env& env) {
  Test t("sleep: delays one connection, not the loop");
  ScriptedPeer peer = env.peer("sendline \"a\"\nsleep 300\nsendline \"b\"\n");
  Clock::duration gap{}, other{};
  std::string failure = run_client(env.base, peer, [&] {
    Client first(peer.port());
    first.line();
    auto t0 = Clock::now();
    Client second(peer.port());
    second.line();
    other = Clock::now() - t0;
    first.line();
    gap = Clock::now() - t0;
  });
  auto ms = [](Clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  t.check(failure.empty(), failure);
  t.check(gap >= 290ms, "second line after " + ms(gap) + " ms");
  t.check(other < 250ms, "other connection waited " + ms(other) + " ms");
}

void test_garbage(const Env& env) {
  Test t("garbage: N pseudo-random bytes, the same on every connection");
  ScriptedPeer peer = env.peer("garbage 100000\nclose\n");
  ScriptedPeer seeded = env.peer("garbage 100000 7\nclose\n");
  std::string a, b, c;
  std::string failure = run_client(env.base, peer, [&] {
    a = Client(peer.port()).read_all();
    b = Client(peer.port()).read_all();
    c = Client(seeded.port()).read_all();
  });
  t.check(failure.empty(), failure);
  t.check(a.size() == 100000 && c.size() == 100000, "sizes " + std::to_string(a.size()));
  t.check(a == b, "connections differ");
  t.check(a != c, "seed ignored");
  t.check(std::count(a.begin(), a.end(), '\0') < 2000, "not random");
}

void test_long_line(const Env& env) {
  Test t("imap-long-line: 1 MiB greeting line, then either client behaviour is fine");
  ScriptedPeer peer = env.script("imap-long-line.peer");
  std::string greeting;
  std::vector<std::string> got;
  double seconds = 0;
  std::string failure = run_client(env.base, peer, [&] {
    auto t0 = Clock::now();
    {
      Client quitter(peer.port());  // a client with a line limit gives up
      greeting = quitter.line();
    }
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    Client patient(peer.port());
    patient.line();
    imap_capability_logout(patient, got);
  });
  const std::string prefix = "* OK [CAPABILITY IMAP4rev1] ";
  t.check(failure.empty(), failure);
  t.check(greeting.size() == prefix.size() + 1048576, "size " + std::to_string(greeting.size()));
  t.check(greeting.rfind(prefix, 0) == 0 &&
              greeting.find_first_not_of('x', prefix.size()) == std::string::npos,
          "content");
  t.check(got == kLogoutReplies, "replies " + quoted(got));
  t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
  std::printf("# 1 MiB line received in %.3f s\n", seconds);
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
  }
  return 0;
}

void test_repeat_streams(const Env& env) {
  Test t("repeat 256 MiB to a client that stops reading: memory stays small");
  ScriptedPeer peer = env.peer("repeat 16777216 \"0123456789abcdef\"\nsendline \"\"\n");
  long before = 0, after = 0;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    c.read_exact(1 << 20);
    before = rss_kib();
    std::this_thread::sleep_for(500ms);  // the peer keeps trying to write meanwhile
    after = rss_kib();
  });
  t.check(failure.empty(), failure);
  t.check(after - before < 32 * 1024,
          "RSS grew by " + std::to_string(after - before) + " KiB while the client did not read");
}

void test_long_client_lines(const Env& env) {
  Test t("long client lines: regex refuses over 8 KiB, expect any takes 1 MiB");
  ScriptedPeer strict = env.peer("expect /^a/\n");
  ScriptedPeer lenient = env.peer("expect any\nsendline \"ok\"\n");
  std::string reply;
  std::string failure = run_client(env.base, strict, [&] {
    Client(strict.port()).sendline(std::string(100000, 'a'));
    Client c(lenient.port());
    c.sendline(std::string(1 << 20, 'b'));
    reply = c.line();
  });
  t.check(failure.empty(), failure);
  t.check(strict.errors().size() == 1 &&
              strict.errors()[0].find("got a line of 100000 bytes") != std::string::npos,
          "errors " + quoted(strict.errors()));
  t.check(reply == "ok", "reply " + reply);
  t.check(lenient.received().size() == 1 && lenient.received()[0].size() == (1u << 20), "received");
}

void test_many_connections(const Env& env) {
  Test t("200 concurrent connections each run the script from the start");
  ScriptedPeer peer = env.script("imap-logout-bye-ok.peer");
  int good = 0;
  std::string failure = run_client(env.base, peer, [&] {
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 200; ++i) clients.push_back(std::make_unique<Client>(peer.port()));
    for (auto& c : clients) {
      std::vector<std::string> got;
      c->line();
      imap_capability_logout(*c, got);
      if (got == kLogoutReplies && c->read_end() == End::kEof) ++good;
    }
  });
  t.check(failure.empty(), failure);
  t.check(good == 200, std::to_string(good) + " good exchanges");
  t.check(peer.connections() == 200, "connections " + std::to_string(peer.connections()));
  t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
  t.check(peer.received().size() == 400, "received " + std::to_string(peer.received().size()));
}

void test_destroy_with_open_connection(const Env& env) {
  Test t("destroying the peer closes its connections");
  std::optional<ScriptedPeer> peer(env.script("imap-silence.peer"));
  Client c(peer->port());
  t.check(run_until(
              env.base, [&] { return peer->connections() == 1; }, kLoopTimeout),
          "not accepted");
  peer.reset();
  End end = c.read_end();
  t.check(end == End::kEof, std::string("end ") + end_name(end));
}

// ---------------------------------------------------------------------------------------------
// TLS

void test_tls_close_notify(const Env& env) {
  Test t("tls good + close: verified handshake, close_notify");
  ScriptedPeer peer = env.script("imaps-logout-bye-ok.peer");
  long verify = -1;
  std::vector<std::string> got;
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    verify = c.start_tls(env.certs.ca_file, "localhost");
    c.line();
    imap_capability_logout(c, got);
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(verify == X509_V_OK, X509_verify_cert_error_string(verify));
  t.check(got == kLogoutReplies, "replies " + quoted(got));
  t.check(end == End::kCloseNotify, std::string("end ") + end_name(end));
  t.check(peer.tls_handshakes() == 1, "handshakes");
  t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
}

void test_tls_dirty_close(const Env& env) {
  Test t("imaps-logout-dirty-close: TCP FIN without close_notify");
  ScriptedPeer peer = env.script("imaps-logout-dirty-close.peer");
  std::vector<std::string> got;
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    c.start_tls(env.certs.ca_file, "localhost");
    c.line();
    imap_capability_logout(c, got);
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(got == kLogoutReplies, "replies " + quoted(got));
  t.check(end == End::kTlsDirty, std::string("end ") + end_name(end));
  t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
}

void test_certificates(const Env& env) {
  struct Case {
    std::string cert, host;
    long verify;
  };
  const std::vector<Case> cases = {
      {"good", "localhost", X509_V_OK},
      {"good", "127.0.0.1", X509_V_OK},
      {"expiring10", "localhost", X509_V_OK},
      {"wronghost", "localhost", X509_V_ERR_HOSTNAME_MISMATCH},
      {"expired", "localhost", X509_V_ERR_CERT_HAS_EXPIRED},
      {"selfsigned", "localhost", X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT},
  };
  for (const auto& k : cases) {
    Test t("certificate " + k.cert + " verified for " + k.host + ": " +
           X509_verify_cert_error_string(k.verify));
    ScriptedPeer peer = env.peer("tls " + k.cert + "\nsendline \"* OK\"\n");
    long verify = -1;
    int seconds_left = 0;
    std::string failure = run_client(env.base, peer, [&] {
      Client c(peer.port());
      verify = c.start_tls(env.certs.ca_file, k.host);
      c.line();
      int days = 0;
      ASN1_TIME_diff(&days, &seconds_left, nullptr, X509_get0_notAfter(c.peer_certificate().get()));
      seconds_left += days * 86400;
      c.tls_close_notify();
    });
    t.check(failure.empty(), failure);
    t.check(verify == k.verify, std::string("got ") + X509_verify_cert_error_string(verify));
    if (k.cert == "expiring10") {
      t.check(seconds_left > 10 * 86400 - 3600 && seconds_left <= 10 * 86400,
              "seconds left " + std::to_string(seconds_left));
    }
  }
}

void test_starttls(const Env& env) {
  Test t("starttls: plain, upgrade in place, TLS, close_notify");
  ScriptedPeer peer = env.script("imap-starttls-logout-bye-ok.peer");
  std::string ok;
  long verify = -1;
  std::vector<std::string> got;
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    c.line();
    c.sendline("a1 CAPABILITY");
    c.line();
    c.line();
    c.sendline("a2 STARTTLS");
    ok = c.line();
    verify = c.start_tls(env.certs.ca_file, "localhost");
    c.sendline("a3 CAPABILITY");
    got.push_back(c.line());
    got.push_back(c.line());
    c.sendline("a4 LOGOUT");
    got.push_back(c.line());
    got.push_back(c.line());
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(ok == "a2 OK Begin TLS negotiation now", "STARTTLS reply " + ok);
  t.check(verify == X509_V_OK, X509_verify_cert_error_string(verify));
  t.check(got == std::vector<std::string>{"* CAPABILITY IMAP4rev1 AUTH=PLAIN",
                                          "a3 OK CAPABILITY completed",
                                          "* BYE IMAP4rev1 server logging out",
                                          "a4 OK LOGOUT completed"},
          "replies " + quoted(got));
  t.check(end == End::kCloseNotify, std::string("end ") + end_name(end));
  t.check(peer.tls_handshakes() == 1, "handshakes");
  t.check(peer.received() == std::vector<std::string>{"a1 CAPABILITY", "a2 STARTTLS",
                                                      "a3 CAPABILITY", "a4 LOGOUT"},
          "received " + quoted(peer.received()));
  t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
}

void test_starttls_pipelined(const Env& env) {
  Test t("starttls: plain text pipelined after STARTTLS is reported");
  ScriptedPeer peer = env.script("imap-starttls-logout-bye-ok.peer");
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    c.line();
    c.sendline("a1 CAPABILITY");
    c.line();
    c.line();
    c.send("a2 STARTTLS\r\na3 CAPABILITY\r\n");
    c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(peer.errors() == std::vector<std::string>{"line 10: client sent 15 bytes of plain text "
                                                    "before the TLS handshake"},
          "errors " + quoted(peer.errors()));
}

void test_tls_long_line(const Env& env) {
  Test t("tls + repeat: 1 MiB line over TLS");
  ScriptedPeer peer = env.peer("tls good\nrepeat 1048576 \"x\"\nsend \"\\r\\n\"\nclose\n");
  size_t size = 0;
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    c.start_tls(env.certs.ca_file, "localhost");
    size = c.line().size();
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(size == 1048576, "size " + std::to_string(size));
  t.check(end == End::kCloseNotify, std::string("end ") + end_name(end));
}

void test_handshake_failure(const Env& env) {
  Test t("a plain-text client on a TLS port: handshake fails, no error recorded");
  ScriptedPeer peer = env.peer("tls good\nsendline \"* OK\"\nexpect any\n");
  End end = End::kNone;
  std::string failure = run_client(env.base, peer, [&] {
    Client c(peer.port());
    c.sendline("a1 CAPABILITY");
    end = c.read_end();
  });
  t.check(failure.empty(), failure);
  t.check(end != End::kNone && end != End::kTimeout, std::string("end ") + end_name(end));
  t.check(peer.tls_handshakes() == 0, "handshakes");
  t.check(peer.errors().empty(), "errors " + quoted(peer.errors()));
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "peer-selfcheck.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

int main(int argc, char** argv) {
  std::string scripts = PEER_SCRIPTS_DIR;
  bool trace = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--scripts" && i + 1 < argc) {
      scripts = argv[++i];
    } else if (arg == "--trace") {
      trace = true;
    } else {
      std::fprintf(stderr, "usage: peer-selfcheck [--scripts DIR] [--trace]\n");
      return 2;
    }
  }
  TempDir dir;
  EventBasePtr base(event_base_new());
  const Env env{base.get(), TestCerts::create(dir.path), scripts, trace};

  test_parse_errors(env);
  test_parse_ok(env);
  test_starter_scripts(env);
  test_logout_bye_ok(env);
  test_mismatch(env);
  test_closed_before_expect(env);
  test_expect_optional(env);
  test_captures_and_escapes(env);
  test_drain(env);
  test_close_kinds_plain(env);
  test_reset(env);
  test_hang(env);
  test_sleep_does_not_block(env);
  test_garbage(env);
  test_long_line(env);
  test_repeat_streams(env);
  test_long_client_lines(env);
  test_many_connections(env);
  test_destroy_with_open_connection(env);
  test_tls_close_notify(env);
  test_tls_dirty_close(env);
  test_certificates(env);
  test_starttls(env);
  test_starttls_pipelined(env);
  test_tls_long_line(env);
  test_handshake_failure(env);

  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
