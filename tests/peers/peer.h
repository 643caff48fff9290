// ScriptedPeer: a TCP (optionally TLS) server that plays a small script on every accepted
// connection, on the caller's libevent loop, without ever blocking it.  The script language is
// documented in README.md in this directory; scripts/*.peer are examples.
//
//   mwtest::TestCerts certs = mwtest::TestCerts::create(tmpdir);
//   mwtest::ScriptedPeer peer(base, "tls good\nsendline \"* OK ready\"\nexpect any\nclose\n",
//                             {.certs = &certs});
//   ... point the code under test at 127.0.0.1:peer.port(), run base ...
//   CHECK(peer.errors().empty());
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "testcerts.h"

struct event_base;

namespace mwtest {

namespace peerimpl {
class PeerCore;
}

struct PeerOptions {
  std::string bind = "127.0.0.1";    // numeric IPv4 or IPv6 address
  uint16_t port = 0;                 // 0: a free port, see ScriptedPeer::port()
  const TestCerts* certs = nullptr;  // needed by scripts that use tls/starttls; must outlive peer
  // Additions:
  std::string name{};  // shown in trace output (from_file uses the path)
  bool trace = false;  // log connection events to stderr
  std::function<void(const std::string&)> on_error{};  // called with each new errors() entry
};

class ScriptedPeer {
 public:
  // Parses the script text and starts listening; throws std::runtime_error("script:LINE: message")
  // on a bad script, and std::runtime_error for listen or certificate failures.  The first peer
  // also sets SIGPIPE to SIG_IGN if it is still SIG_DFL (writes to closed sockets must not kill
  // the test process).
  ScriptedPeer(event_base* base, const std::string& script_text, PeerOptions opts = {});
  // Same, with the script read from a file; errors are prefixed with the path.
  static ScriptedPeer from_file(event_base* base, const std::string& path, PeerOptions opts = {});

  ScriptedPeer(ScriptedPeer&&) noexcept;
  ScriptedPeer& operator=(ScriptedPeer&&) noexcept;
  ~ScriptedPeer();  // closes the listener and all connections (abruptly, no lingering)

  uint16_t port() const;
  int connections() const;  // accepted so far

  // Expectation mismatches, in the order they happened, e.g.
  //   "line 4: expected /^\S+ LOGOUT$/i, got 'a2 NOOP'"
  //   "line 4: client closed before expected /^\S+ LOGOUT$/i"
  const std::vector<std::string>& errors() const;
  // Every line read (by expect, drain or the implicit drain), in order, over all connections.
  std::vector<std::string> received() const;

  // Additions:
  int open_connections() const;  // accepted and not yet closed by the peer
  int tls_handshakes() const;    // TLS handshakes (tls or starttls) that completed

 private:
  std::unique_ptr<peerimpl::PeerCore> core_;
};

}  // namespace mwtest
