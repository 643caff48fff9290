// The director-admin client (VERSION handshake, HOST-LIST, HOST-UP/DOWN/FLUSH/RESET-USERS with
// the retries of "Ring sync timed out" and "host is already being updated"), fed by a director
// that says the input. The first byte picks the commands, as the check director and the
// `director ...` actions send them; the rest is what the director says. The client talks to
// the harness's unix socket only: no backend listed is ever polled.
#include <cstdio>
#include <cstdlib>

#include "fuzz_support.h"
#include "net/connection.h"
#include "net/failure.h"
#include "net/scope.h"
#include "protocols/director_client.h"

namespace {

using mw::director::Client;

enum class Plan { list, list_then_down, down_then_flush, up, down_then_reset };
constexpr int kPlans = 5;

// A verdict must be classified and say why.
void check_error(const mw::ProbeError& e) {
  if (getenv("MW_FUZZ_SHOW")) fprintf(stderr, "director: %s\n", e.what());
  if (e.cls() == mw::FailureClass::none || std::string(e.what()).empty()) abort();
}

mw::Task<void> dialogue(mw::IoContext& io, Plan plan) {
  mw::Scope scope(io.base);
  scope.set_deadline(5000);
  mw::ConnectionOptions opts;
  opts.timeout_ms = 2000;
  opts.log_prefix = "fuzz director-admin";
  mw::Connection conn(io, scope, std::move(opts));
  // Short backoffs: the retry path is what is fuzzed, not the waiting.
  Client client(conn, scope, mw::director::RetryPolicy{4, 1});
  try {
    co_await conn.connect(mwfuzz::unix_endpoint());
    co_await client.handshake();
    std::string ip = "127.0.0.2";
    if (plan == Plan::list || plan == Plan::list_then_down) {
      std::vector<mw::director::Host> hosts = co_await client.host_list();
      if (hosts.size() > Client::kMaxHosts) abort();
      for (const auto& h : hosts)
        if (h.ip.empty() || h.vhosts < 0 || h.users < 0 || h.changed_at < 0) abort();
      if (plan == Plan::list) co_return;
      if (!hosts.empty()) ip = hosts.front().ip;
    }
    if (plan == Plan::up) {
      (void)co_await client.host_up(ip);
    } else {
      mw::director::Reply r = co_await client.host_down(ip);
      if (client.last_retries() >= 4) abort();
      if (r == mw::director::Reply::ok) {
        if (plan == Plan::down_then_reset) {
          (void)co_await client.host_reset_users(ip);
        } else {
          (void)co_await client.host_flush(ip);
        }
      }
    }
    if (client.last_retries() >= 4) abort();
    if (getenv("MW_FUZZ_SHOW"))
      fprintf(stderr, "director: ok, %d retries\n", client.last_retries());
  } catch (const mw::ProbeError& e) {
    check_error(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto plan = static_cast<Plan>(data[0] % kPlans);
  mwfuzz::drive({reinterpret_cast<const char*>(data) + 1, size - 1},
                [plan](mw::IoContext& io) { return dialogue(io, plan); });
  return 0;
}
