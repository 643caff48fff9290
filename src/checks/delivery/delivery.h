// check delivery: sends a probe message carrying a unique token (SMTP with STARTTLS/AUTH, or a
// drop directory), watches the receiving side (IMAP with IDLE or polling, POP3, a directory)
// until the token arrives or `within` passes, checks that it arrived once and unaltered, and
// deletes it unless told to keep it. Each step is timed in milliseconds: connect (the receiving
// side, ready before anything is sent), send (the sending server, from its connection to the
// accepted message), wait, found (read and compared), clean (deleted, logged out); the delivery
// time runs from the start of the send to the probe being seen.
#pragma once

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::delivery {

// One run. Sets ctx.metrics ("latency_ms" once delivered), ctx.details (steps_ms, delivery_ms,
// token, failed_step) and ctx.memory (probes of earlier runs still to clean up), and throws a
// ProbeError naming the failed step.
Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows.
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

}  // namespace mw::checks::delivery
