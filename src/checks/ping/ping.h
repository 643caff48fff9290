// if failed ping: ICMP echo requests to the host's address, on the event loop. An unprivileged
// ICMP datagram socket where the kernel allows it (net.ipv4.ping_group_range covers our group),
// else a raw socket (root or CAP_NET_RAW); -v says which. Requests go out 200 ms apart; the run
// passes when any reply comes back within the timeout after the last request, and fails with a
// timeout when none does. ctx.metrics: "ping_ms" (the mean round trip), "loss_percent".
#pragma once

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::ping {

Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows.
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

}  // namespace mw::checks::ping
