// check replication: logs in as each user on every server by proxy authorization (the admin
// authenticates, the user is the authorization identity), lists the user's mailboxes with
// their STATUS (LIST-STATUS where offered, else pipelined STATUS commands), and compares each
// replica with the reference (the first server). Users are checked concurrently up to a cap,
// one connection per server per user; a time budget ends a run early and the next run resumes
// where it stopped (progress.h).
#pragma once

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::replication {

// One run. Sets ctx.metrics ("out_of_sync", "invalid_users"), ctx.details and ctx.memory, and
// throws a ProbeError (class content) when mailboxes are out of sync.
Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows.
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

}  // namespace mw::checks::replication
