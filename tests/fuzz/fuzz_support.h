// What the fuzz harnesses share: a private scratch directory, a file writer without fsync (a
// harness runs millions of times), and a scripted-by-the-input server for the reply readers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/result.h"
#include "net/endpoint.h"
#include "net/io_context.h"
#include "net/task.h"

namespace mwfuzz {

// A private directory for this process (on /dev/shm when it exists), created on first use.
[[nodiscard]] const std::string& scratch();
// Writes `data` to scratch()/name with `mode` (no fsync); returns the path.
std::string write_scratch(const std::string& name, std::string_view data, int mode = 0600);

// Runs the port test `rule` (what follows "if failed unixsocket PATH") once against a server
// that sends `server_bytes` as soon as the client connects, then half-closes and reads whatever
// the client sends. Every parsed rule is kept, so a harness may pick among a few per input.
mw::CheckResult run_against(const std::string& rule, std::string_view server_bytes);

// The body of a reply-reader harness: the input's first byte picks one of `rules`, the rest is
// what the server sends. A result must be a verdict (ok, or a failure with a class and a message).
int fuzz_replies(const std::vector<std::string>& rules, const uint8_t* data, size_t size);

// For clients that are not a port test (director-admin, Alertmanager): runs the dialogue made
// by `make` on the harness's loop until it ends, while the server says `server_bytes` to
// whoever connects to unix_endpoint() or tcp_endpoint() (a loopback port), then half-closes.
// The dialogue handles its own errors; one escaping it aborts (a broken harness).
void drive(std::string_view server_bytes,
           const std::function<mw::Task<void>(mw::IoContext&)>& make);
[[nodiscard]] const mw::Endpoint& unix_endpoint();
[[nodiscard]] const mw::Endpoint& tcp_endpoint();

}  // namespace mwfuzz
