// ScriptedPeer: plays a script (see README.md) on every accepted connection, on the caller's
// libevent loop.  Nothing here blocks: sleeps are timers, big sends are refilled as the socket
// drains, and closing waits for the client's FIN with an event, not a blocking read.
#include "peer.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

#include "handles.h"
#include "script.h"

namespace mwtest {
namespace peerimpl {
namespace {

constexpr size_t kStreamChunk = 64 * 1024;          // repeat/garbage: bytes per evbuffer_add
constexpr size_t kStreamHigh = 256 * 1024;          // refill the output up to this much
constexpr size_t kStreamLow = 64 * 1024;            // write callback when output <= this
constexpr size_t kMaxMatchBytes = 8 * 1024;         // std::regex recurses per character
constexpr size_t kMaxLineBytes = 64 * 1024 * 1024;  // unterminated input that ends an expect
constexpr size_t kMaxDrainFragment = 64 * 1024;     // drain drops longer unterminated input
constexpr int kLingerMs = 2000;                     // close: wait this long for the client
constexpr size_t kSnippetBytes = 200;               // shown of a mismatching line
constexpr int kListenBacklog = 1024;
constexpr int kAcceptRetryMs = 100;  // after EMFILE and the like

using AddrInfoPtr = Owned<addrinfo, freeaddrinfo>;

timeval to_timeval(uint64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

// The line as shown in an error message: escaped, and cut after kSnippetBytes.
std::string snippet(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size() && i < kSnippetBytes; ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (line.size() > kSnippetBytes) out += "... (" + std::to_string(line.size()) + " bytes)";
  return out;
}

std::string openssl_errors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    text += text.empty() ? "" : "; ";
    text += buf;
  }
  return text.empty() ? "no OpenSSL error queued" : text;
}

SslCtxPtr make_server_ctx(const TestCerts& certs, const std::string& name) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  // A client that closes TCP without close_notify is an ordinary EOF for the peer; without this
  // option OpenSSL 3 reports SSL_R_UNEXPECTED_EOF_WHILE_READING, which libevent 2.1 turns into
  // BEV_EVENT_ERROR even when dirty shutdowns are allowed.
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) ||
      !(SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF) &
        SSL_OP_IGNORE_UNEXPECTED_EOF) ||
      SSL_CTX_use_certificate_chain_file(ctx.get(), certs.cert(name).c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), certs.key(name).c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    throw std::runtime_error("cannot load certificate '" + name + "' from " + certs.dir + ": " +
                             openssl_errors());
  }
  return ctx;
}

void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old {};
    if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
      std::signal(SIGPIPE, SIG_IGN);
    }
  });
}

}  // namespace

class Connection;

// Everything a ScriptedPeer owns: the parsed script, TLS contexts, listener, connections and
// the results the tests read.
class PeerCore {
 public:
  PeerCore(event_base* base, std::vector<Command> script, PeerOptions opts);
  ~PeerCore();
  PeerCore(const PeerCore&) = delete;
  PeerCore& operator=(const PeerCore&) = delete;

  event_base* base() const { return base_; }
  const std::vector<Command>& script() const { return script_; }
  SSL_CTX* ssl_ctx(const std::string& cert) const { return ssl_ctxs_.at(cert).get(); }

  void record_error(const std::string& message);
  void record_line(const std::string& line) { received_.push_back(line); }
  void handshake_done() { ++handshakes_; }
  void connection_finished();
  void trace(int conn, const std::string& message) const;

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  int open_connections() const { return open_; }
  int handshakes() const { return handshakes_; }
  const std::vector<std::string>& errors() const { return errors_; }
  const std::vector<std::string>& received() const { return received_; }

 private:
  void load_certificates();
  void listen();
  void accept(evutil_socket_t fd);
  void on_accept_error();
  static void accept_cb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* self);
  static void accept_error_cb(evconnlistener*, void* self);
  static void resume_cb(evutil_socket_t, short, void* self);
  static void reap_cb(evutil_socket_t, short, void* self);

  event_base* base_;
  std::vector<Command> script_;
  PeerOptions opts_;
  std::map<std::string, SslCtxPtr> ssl_ctxs_;
  std::vector<std::string> errors_;
  std::vector<std::string> received_;
  uint16_t port_ = 0;
  int accepted_ = 0;
  int open_ = 0;
  int handshakes_ = 0;
  ListenerPtr listener_;
  EventPtr reaper_;        // deletes finished connections outside their own callbacks
  EventPtr resume_timer_;  // re-enables accepting after a resource error
  std::map<int, std::unique_ptr<Connection>> conns_;  // last: destroyed first
};

// One accepted connection running the script from its first command.
class Connection {
 public:
  Connection(PeerCore& core, int id, evutil_socket_t fd)
      : core_(core), script_(core.script()), id_(id), fd_(fd) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  bool finished() const { return finished_; }

 private:
  // What the connection is waiting for before the script can go on.
  enum class Wait { kNone, kLine, kDrain, kHandshake, kFlush, kStream, kTimer, kHang, kLinger };

  // libevent callbacks: each runs its handler, then adjusts reading.
  static void read_cb(bufferevent*, void* self);
  static void write_cb(bufferevent*, void* self);
  static void event_cb(bufferevent*, short what, void* self);
  static void timer_cb(evutil_socket_t, short, void* self);
  static void hang_cb(evutil_socket_t, short, void* self);
  static void linger_cb(evutil_socket_t, short what, void* self);
  template <typename Handler>
  static void dispatch(void* self, Handler handler);

  // Script execution.
  void step();
  void advance();
  bool run(const Command& cmd);
  bool run_expect(const Command& cmd);
  bool check_line(const Command& cmd, const std::string& line);
  bool client_gone_at_expect(const Command& cmd);
  bool start_sleep(uint64_t ms);
  bool start_stream(const Command& cmd);
  void fill_stream();
  void add_garbage(evbuffer* out, size_t n);
  void flush_then(Op op);
  void after_flush(Op op);
  void begin_drain();
  void drain_lines();
  void start_hang();
  std::string at_line() const;

  // I/O.
  void use_bufferevent(bufferevent* bev);
  std::optional<std::string> take_line();
  size_t input_length() const;
  bool output_pending() const;
  void update_reading();
  void on_read();
  void on_write();
  void on_event(short what);
  void on_input_end(bool dead);

  // TLS and the ways a connection ends.
  void start_tls(const Command& cmd);
  void end_after_client_left();
  void close_gracefully(bool close_notify);
  void shut_down(bool close_notify);
  void start_linger();
  void on_linger(short what);
  void reset_now();
  void fail(const std::string& message);
  void finish();

  PeerCore& core_;
  const std::vector<Command>& script_;
  const int id_;
  size_t pc_ = 0;  // index of the current command in script_
  Wait wait_ = Wait::kNone;
  Op flush_then_ = Op::kClose;  // what to do when the kFlush wait ends
  bool input_eof_ = false;      // the client will send nothing more
  bool dead_ = false;           // nothing can be sent any more either (reset, write error)
  bool finished_ = false;
  std::vector<std::string> groups_;  // capture groups of the last matched line ($0..$9)
  uint64_t stream_left_ = 0;         // repeat: units still to queue; garbage: bytes
  size_t stream_unit_ = 0;           // repeat: size of one unit
  std::string stream_chunk_;         // repeat: the unit repeated up to kStreamChunk bytes
  std::mt19937_64 rng_;              // garbage

  // Handles, in the order they must be released in reverse: the bufferevent before the SSL it
  // uses, and both before the socket.
  UniqueFd fd_;
  SslPtr ssl_;
  BuffereventPtr bev_;
  EventPtr timer_;
  EventPtr fd_watch_;  // hang (EV_CLOSED) or linger (EV_READ)
};

// ---------------------------------------------------------------------------------------------
// Connection: callbacks

template <typename Handler>
void Connection::dispatch(void* self, Handler handler) {
  auto* conn = static_cast<Connection*>(self);
  handler(*conn);
  if (!conn->finished_) conn->update_reading();
}

void Connection::read_cb(bufferevent*, void* self) {
  dispatch(self, [](Connection& c) { c.on_read(); });
}

void Connection::write_cb(bufferevent*, void* self) {
  dispatch(self, [](Connection& c) { c.on_write(); });
}

void Connection::event_cb(bufferevent*, short what, void* self) {
  dispatch(self, [what](Connection& c) { c.on_event(what); });
}

void Connection::timer_cb(evutil_socket_t, short, void* self) {
  dispatch(self, [](Connection& c) { c.advance(); });
}

void Connection::hang_cb(evutil_socket_t, short, void* self) {
  dispatch(self, [](Connection& c) {
    c.core_.trace(c.id_, "client went away during hang");
    c.finish();
  });
}

void Connection::linger_cb(evutil_socket_t, short what, void* self) {
  dispatch(self, [what](Connection& c) { c.on_linger(what); });
}

void Connection::start() {
  int one = 1;
  setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bufferevent* bev = bufferevent_socket_new(core_.base(), fd_.get(), BEV_OPT_DEFER_CALLBACKS);
  if (!bev) {
    core_.trace(id_, "bufferevent_socket_new failed");
    finish();
    return;
  }
  use_bufferevent(bev);
  step();
  if (!finished_) update_reading();
}

void Connection::on_read() {
  if (wait_ == Wait::kLine) {
    wait_ = Wait::kNone;
    step();
  } else if (wait_ == Wait::kDrain) {
    drain_lines();
  }
}

void Connection::on_write() {
  if (wait_ == Wait::kStream) {
    fill_stream();
    if (stream_left_ == 0) advance();
  } else if (wait_ == Wait::kFlush && !output_pending()) {
    after_flush(flush_then_);
  }
}

void Connection::on_event(short what) {
  if (what & BEV_EVENT_CONNECTED) {
    core_.handshake_done();
    core_.trace(id_, std::string("TLS handshake done: ") + SSL_get_version(ssl_.get()));
    if (wait_ == Wait::kHandshake) advance();
    return;
  }
  const bool error = what & BEV_EVENT_ERROR;
  const int err = EVUTIL_SOCKET_ERROR();
  std::string why = !error ? "EOF" : err ? std::string("error: ") + std::strerror(err) : "error";
  if (error && ssl_) {
    while (unsigned long e = bufferevent_get_openssl_error(bev_.get())) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      why += std::string("; ") + buf;
    }
  }
  if (wait_ == Wait::kHandshake) {
    core_.trace(id_, "TLS handshake failed (" + why + ")");
    finish();
    return;
  }
  core_.trace(id_, "client side ended (" + why + ")");
  on_input_end(error);
}

// The client closed (EOF) or the connection broke (error: dead).  Lines already buffered are
// still handed to expects; what waits for the client gives up.
void Connection::on_input_end(bool dead) {
  input_eof_ = true;
  dead_ = dead_ || dead;
  switch (wait_) {
    case Wait::kLine:
      wait_ = Wait::kNone;
      step();
      break;
    case Wait::kDrain:
    case Wait::kHang:
      end_after_client_left();
      break;
    case Wait::kTimer:
      if (dead_) advance();  // skip the rest of the sleep, nobody is listening
      break;
    case Wait::kStream:
      if (dead_) advance();
      break;
    case Wait::kFlush:
      if (dead_) after_flush(flush_then_);
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Connection: script execution

// Runs commands until one has to wait; the end of the script is an implicit drain.
void Connection::step() {
  while (!finished_ && wait_ == Wait::kNone) {
    if (pc_ == script_.size()) {
      begin_drain();
      return;
    }
    if (!run(script_[pc_])) return;
    ++pc_;
  }
}

// The current command is complete: go on with the next one.
void Connection::advance() {
  if (timer_) evtimer_del(timer_.get());
  wait_ = Wait::kNone;
  ++pc_;
  step();
}

// Starts cmd; true when it is already complete, false when the connection now waits (or ended).
bool Connection::run(const Command& cmd) {
  switch (cmd.op) {
    case Op::kSend:
      if (!dead_) {
        std::string bytes = render(cmd.text, groups_);
        bufferevent_write(bev_.get(), bytes.data(), bytes.size());
      }
      return true;
    case Op::kExpect:
      return run_expect(cmd);
    case Op::kSleep:
      return start_sleep(cmd.count);
    case Op::kRepeat:
    case Op::kGarbage:
      return start_stream(cmd);
    case Op::kTls:
    case Op::kStartTls:
    case Op::kReset:
      flush_then(cmd.op);
      return false;
    case Op::kClose:
      close_gracefully(true);
      return false;
    case Op::kCloseDirty:
      close_gracefully(false);
      return false;
    case Op::kHang:
      start_hang();
      return false;
    case Op::kDrain:
      begin_drain();
      return false;
  }
  return true;
}

bool Connection::run_expect(const Command& cmd) {
  if (std::optional<std::string> line = take_line()) return check_line(cmd, *line);
  if (input_length() > kMaxLineBytes) {
    fail(at_line() + "expected " + describe_expect(cmd) + ", got an unterminated line of over " +
         std::to_string(kMaxLineBytes) + " bytes");
    return false;
  }
  if (input_eof_) return client_gone_at_expect(cmd);
  wait_ = Wait::kLine;
  return false;
}

bool Connection::check_line(const Command& cmd, const std::string& line) {
  core_.record_line(line);
  if (!cmd.regex) {
    groups_.assign(1, line);
    return true;
  }
  if (line.size() > kMaxMatchBytes) {
    fail(at_line() + "expected " + describe_expect(cmd) + ", got a line of " +
         std::to_string(line.size()) + " bytes (longer than " + std::to_string(kMaxMatchBytes) +
         ", not matched)");
    return false;
  }
  std::smatch match;
  if (!std::regex_search(line, match, *cmd.regex)) {
    fail(at_line() + "expected " + describe_expect(cmd) + ", got '" + snippet(line) + "'");
    return false;
  }
  groups_.clear();
  for (const auto& group : match) groups_.push_back(group.matched ? group.str() : "");
  groups_[0] = line;  // $0 is the whole line, not only the matched part
  return true;
}

bool Connection::client_gone_at_expect(const Command& cmd) {
  if (cmd.optional) return true;
  core_.record_error(at_line() + "client closed before expected " + describe_expect(cmd));
  end_after_client_left();
  return false;
}

bool Connection::start_sleep(uint64_t ms) {
  if (dead_) return true;
  if (!timer_) timer_.reset(evtimer_new(core_.base(), &Connection::timer_cb, this));
  timeval tv = to_timeval(ms);
  evtimer_add(timer_.get(), &tv);
  wait_ = Wait::kTimer;
  return false;
}

bool Connection::start_stream(const Command& cmd) {
  if (dead_ || cmd.count == 0) return true;
  stream_left_ = cmd.count;
  if (cmd.op == Op::kRepeat) {
    std::string unit = render(cmd.text, groups_);
    if (unit.empty()) return true;
    stream_unit_ = unit.size();
    stream_chunk_.clear();
    for (size_t n = std::max<size_t>(1, kStreamChunk / unit.size()); n > 0; --n) {
      stream_chunk_ += unit;
    }
  } else {
    rng_.seed(cmd.seed);
  }
  fill_stream();
  if (stream_left_ == 0) return true;
  wait_ = Wait::kStream;
  return false;
}

// Queues more of the current repeat/garbage while the output holds less than kStreamHigh.
void Connection::fill_stream() {
  evbuffer* out = bufferevent_get_output(bev_.get());
  const bool repeat = script_[pc_].op == Op::kRepeat;
  while (stream_left_ > 0 && evbuffer_get_length(out) < kStreamHigh) {
    if (repeat) {
      uint64_t units = std::min<uint64_t>(stream_left_, stream_chunk_.size() / stream_unit_);
      evbuffer_add(out, stream_chunk_.data(), units * stream_unit_);
      stream_left_ -= units;
    } else {
      size_t n = static_cast<size_t>(std::min<uint64_t>(stream_left_, kStreamChunk));
      add_garbage(out, n);
      stream_left_ -= n;
    }
  }
}

void Connection::add_garbage(evbuffer* out, size_t n) {
  std::string bytes(n, '\0');
  for (size_t i = 0; i < n; i += sizeof(uint64_t)) {
    uint64_t r = rng_();
    std::memcpy(&bytes[i], &r, std::min(sizeof r, n - i));
  }
  evbuffer_add(out, bytes.data(), bytes.size());
}

// tls, starttls, every close and reset act once everything queued has been written.
void Connection::flush_then(Op op) {
  if (!dead_ && output_pending()) {
    flush_then_ = op;
    wait_ = Wait::kFlush;
    return;
  }
  after_flush(op);
}

void Connection::after_flush(Op op) {
  wait_ = Wait::kNone;
  switch (op) {
    case Op::kTls:
    case Op::kStartTls:
      start_tls(script_[pc_]);
      break;
    case Op::kClose:
      shut_down(true);
      break;
    case Op::kCloseDirty:
      shut_down(false);
      break;
    case Op::kReset:
      reset_now();
      break;
    default:
      break;
  }
}

void Connection::begin_drain() {
  if (input_eof_) {
    end_after_client_left();
    return;
  }
  wait_ = Wait::kDrain;
  drain_lines();
}

// drain keeps the lines it reads in received(); a very long unterminated line is dropped.
void Connection::drain_lines() {
  while (std::optional<std::string> line = take_line()) core_.record_line(*line);
  if (input_length() > kMaxDrainFragment) {
    evbuffer_drain(bufferevent_get_input(bev_.get()), input_length());
  }
}

// hang reads nothing (the client's data piles up in the kernel) and only watches for the
// client's FIN.  Backends without EV_CLOSED support fall back to drain.
void Connection::start_hang() {
  if (input_eof_) {
    end_after_client_left();
    return;
  }
  if (!(event_base_get_features(core_.base()) & EV_FEATURE_EARLY_CLOSE)) {
    begin_drain();
    return;
  }
  fd_watch_.reset(event_new(core_.base(), fd_.get(), EV_CLOSED, &Connection::hang_cb, this));
  event_add(fd_watch_.get(), nullptr);
  wait_ = Wait::kHang;
}

std::string Connection::at_line() const {
  return "line " + std::to_string(script_[pc_].line) + ": ";
}

// ---------------------------------------------------------------------------------------------
// Connection: I/O helpers

void Connection::use_bufferevent(bufferevent* bev) {
  bev_.reset(bev);
  bufferevent_setcb(bev, &Connection::read_cb, &Connection::write_cb, &Connection::event_cb, this);
  bufferevent_setwatermark(bev, EV_WRITE, kStreamLow, 0);
  bufferevent_enable(bev, EV_WRITE);
}

std::optional<std::string> Connection::take_line() {
  if (!bev_) return std::nullopt;
  size_t len = 0;
  std::unique_ptr<char, decltype(&std::free)> raw(
      evbuffer_readln(bufferevent_get_input(bev_.get()), &len, EVBUFFER_EOL_CRLF), &std::free);
  if (!raw) return std::nullopt;
  return std::string(raw.get(), len);
}

size_t Connection::input_length() const {
  return bev_ ? evbuffer_get_length(bufferevent_get_input(bev_.get())) : 0;
}

bool Connection::output_pending() const {
  return bev_ && evbuffer_get_length(bufferevent_get_output(bev_.get())) > 0;
}

// The socket is read only while the script waits for input, so data a client sends early stays
// in the kernel (and a STARTTLS client's handshake is not read as plain text).
void Connection::update_reading() {
  if (!bev_ || wait_ == Wait::kHandshake) return;
  const bool want = (wait_ == Wait::kLine || wait_ == Wait::kDrain) && !input_eof_;
  if (want) {
    bufferevent_enable(bev_.get(), EV_READ);
  } else {
    bufferevent_disable(bev_.get(), EV_READ);
  }
}

// ---------------------------------------------------------------------------------------------
// Connection: TLS and endings

// Replaces the plain bufferevent by a server-side TLS one on the same socket (for tls at the
// start and for starttls alike).  Plain text the client sent beyond the last expected line was
// pipelined ahead of the handshake: that is a client bug, reported as an error.
void Connection::start_tls(const Command& cmd) {
  if (dead_) {
    finish();
    return;
  }
  if (size_t pipelined = input_length()) {
    fail(at_line() + "client sent " + std::to_string(pipelined) +
         " bytes of plain text before the TLS handshake");
    return;
  }
  SslPtr ssl(SSL_new(core_.ssl_ctx(cmd.arg)));
  bev_.reset();
  bufferevent* tls =
      ssl ? bufferevent_openssl_socket_new(core_.base(), fd_.get(), ssl.get(),
                                           BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_DEFER_CALLBACKS)
          : nullptr;
  if (!tls) {
    core_.trace(id_, "cannot start TLS: " + openssl_errors());
    finish();
    return;
  }
  ssl_ = std::move(ssl);
  bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
  use_bufferevent(tls);
  wait_ = Wait::kHandshake;
  core_.trace(id_, "TLS handshake started with certificate " + cmd.arg);
}

// The client is gone (or half-closed): finish politely if we still can.
void Connection::end_after_client_left() {
  if (dead_) {
    finish();
  } else {
    close_gracefully(true);
  }
}

// close (with close_notify) and close-dirty (without), once the output is written.
void Connection::close_gracefully(bool close_notify) {
  flush_then(close_notify ? Op::kClose : Op::kCloseDirty);
}

// FIN, then read until the client's FIN so that closing never turns into an RST because of
// unread data.
void Connection::shut_down(bool close_notify) {
  if (dead_) {
    finish();
    return;
  }
  bev_.reset();
  if (ssl_ && close_notify) {
    SSL_shutdown(ssl_.get());  // the socket BIO writes the alert straight to the socket
    core_.trace(id_, "sent close_notify");
  }
  ERR_clear_error();  // the code under test shares this thread's OpenSSL error queue
  ssl_.reset();
  ::shutdown(fd_.get(), SHUT_WR);
  if (input_eof_) {
    finish();
  } else {
    start_linger();
  }
}

void Connection::start_linger() {
  wait_ = Wait::kLinger;
  fd_watch_.reset(
      event_new(core_.base(), fd_.get(), EV_READ | EV_PERSIST, &Connection::linger_cb, this));
  timeval tv = to_timeval(kLingerMs);
  event_add(fd_watch_.get(), &tv);
}

void Connection::on_linger(short what) {
  if (what & EV_TIMEOUT) {
    core_.trace(id_, "client did not close in time");
    finish();
    return;
  }
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    finish();
    return;
  }
}

void Connection::reset_now() {
  bev_.reset();
  ssl_.reset();
  linger hard{};
  hard.l_onoff = 1;
  hard.l_linger = 0;
  setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  core_.trace(id_, "reset");
  finish();
}

void Connection::fail(const std::string& message) {
  core_.record_error(message);
  end_after_client_left();
}

void Connection::finish() {
  if (finished_) return;
  fd_watch_.reset();
  timer_.reset();
  bev_.reset();
  ssl_.reset();
  fd_.reset();
  ERR_clear_error();
  wait_ = Wait::kNone;
  finished_ = true;
  core_.trace(id_, "closed");
  core_.connection_finished();
}

// ---------------------------------------------------------------------------------------------
// PeerCore

PeerCore::PeerCore(event_base* base, std::vector<Command> script, PeerOptions opts)
    : base_(base), script_(std::move(script)), opts_(std::move(opts)) {
  if (!base_) throw std::invalid_argument("ScriptedPeer: event_base is null");
  load_certificates();
  reaper_.reset(event_new(base_, -1, 0, &PeerCore::reap_cb, this));
  resume_timer_.reset(evtimer_new(base_, &PeerCore::resume_cb, this));
  if (!reaper_ || !resume_timer_) throw std::runtime_error("ScriptedPeer: event_new failed");
  listen();
}

PeerCore::~PeerCore() = default;

void PeerCore::load_certificates() {
  for (const auto& cmd : script_) {
    if (cmd.op != Op::kTls && cmd.op != Op::kStartTls) continue;
    if (!opts_.certs) {
      throw std::runtime_error("script:" + std::to_string(cmd.line) +
                               ": tls needs certificates (set PeerOptions::certs)");
    }
    if (!ssl_ctxs_.count(cmd.arg)) ssl_ctxs_[cmd.arg] = make_server_ctx(*opts_.certs, cmd.arg);
  }
}

void PeerCore::listen() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string where = opts_.bind + " port " + std::to_string(opts_.port);
  if (int rc =
          getaddrinfo(opts_.bind.c_str(), std::to_string(opts_.port).c_str(), &hints, &found)) {
    throw std::runtime_error("ScriptedPeer: bad bind address " + where + ": " + gai_strerror(rc));
  }
  AddrInfoPtr addr(found);
  listener_.reset(
      evconnlistener_new_bind(base_, &PeerCore::accept_cb, this,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                              kListenBacklog, addr->ai_addr, static_cast<int>(addr->ai_addrlen)));
  if (!listener_) {
    throw std::runtime_error("ScriptedPeer: cannot listen on " + where + ": " +
                             std::strerror(errno));
  }
  evconnlistener_set_error_cb(listener_.get(), &PeerCore::accept_error_cb);

  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(evconnlistener_get_fd(listener_.get()), reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

void PeerCore::accept_cb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* self) {
  static_cast<PeerCore*>(self)->accept(fd);
}

void PeerCore::accept(evutil_socket_t fd) {
  const int id = ++accepted_;
  ++open_;
  trace(id, "accepted");
  auto conn = std::make_unique<Connection>(*this, id, fd);
  Connection* raw = conn.get();
  conns_.emplace(id, std::move(conn));
  raw->start();
}

void PeerCore::accept_error_cb(evconnlistener*, void* self) {
  static_cast<PeerCore*>(self)->on_accept_error();
}

// Out of file descriptors (or memory): pause accepting briefly instead of spinning.
void PeerCore::on_accept_error() {
  int err = EVUTIL_SOCKET_ERROR();
  trace(0, std::string("accept failed: ") + std::strerror(err));
  if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
    evconnlistener_disable(listener_.get());
    timeval tv = to_timeval(kAcceptRetryMs);
    evtimer_add(resume_timer_.get(), &tv);
  }
}

void PeerCore::resume_cb(evutil_socket_t, short, void* self) {
  evconnlistener_enable(static_cast<PeerCore*>(self)->listener_.get());
}

void PeerCore::connection_finished() {
  --open_;
  event_active(reaper_.get(), EV_TIMEOUT, 0);
}

void PeerCore::reap_cb(evutil_socket_t, short, void* self) {
  std::erase_if(static_cast<PeerCore*>(self)->conns_,
                [](const auto& entry) { return entry.second->finished(); });
}

void PeerCore::record_error(const std::string& message) {
  errors_.push_back(message);
  trace(0, "ERROR " + message);
  if (opts_.on_error) opts_.on_error(message);
}

void PeerCore::trace(int conn, const std::string& message) const {
  if (!opts_.trace) return;
  std::fprintf(stderr, "[peer %s port %u conn %d] %s\n",
               opts_.name.empty() ? "-" : opts_.name.c_str(), port_, conn, message.c_str());
}

}  // namespace peerimpl

// ---------------------------------------------------------------------------------------------
// ScriptedPeer

ScriptedPeer::ScriptedPeer(event_base* base, const std::string& script_text, PeerOptions opts) {
  std::vector<peerimpl::Command> script = peerimpl::parse_script(script_text);
  peerimpl::ignore_sigpipe_once();
  core_ = std::make_unique<peerimpl::PeerCore>(base, std::move(script), std::move(opts));
}

ScriptedPeer ScriptedPeer::from_file(event_base* base, const std::string& path, PeerOptions opts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (opts.name.empty()) opts.name = path;
  try {
    return ScriptedPeer(base, text.str(), std::move(opts));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

ScriptedPeer::ScriptedPeer(ScriptedPeer&&) noexcept = default;
ScriptedPeer& ScriptedPeer::operator=(ScriptedPeer&&) noexcept = default;
ScriptedPeer::~ScriptedPeer() = default;

uint16_t ScriptedPeer::port() const {
  return core_->port();
}
int ScriptedPeer::connections() const {
  return core_->accepted();
}
const std::vector<std::string>& ScriptedPeer::errors() const {
  return core_->errors();
}
std::vector<std::string> ScriptedPeer::received() const {
  return core_->received();
}
int ScriptedPeer::open_connections() const {
  return core_->open_connections();
}
int ScriptedPeer::tls_handshakes() const {
  return core_->handshakes();
}

}  // namespace mwtest
