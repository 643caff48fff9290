// check director: lists the backends of a Dovecot director (HOST-LIST), polls each one with the
// protocol dialogues of the port tests, and takes a dead backend out of the pool the way
// dovemon does (after `retry` failed polls in a row, `rapid_rounds` quick polls of which
// `rapid_fails` must fail: HOST-DOWN, then HOST-RESET-USERS or HOST-FLUSH), within safety
// limits (max down, never the last up backend of a tag, nothing when every backend fails at
// once). It brings up only the backends it took down itself; that ownership is kept in the
// check's memory (the state file), so it survives restarts.
#pragma once

#include <string>
#include <utility>

#include "checks/registry.h"
#include "engine/run_context.h"
#include "net/task.h"

namespace mw::checks::director {

// One run: one regular poll of every backend, then rapid mode for the backends that reached
// `retry` failures, then the director commands. Fills ctx.details ("backends", "events"),
// ctx.metrics and ctx.memory; throws when the director does not answer, when every backend
// failed at once, when a dead backend is held back by a safety limit, or when a poll is
// misconfigured.
Task<void> run(RunContext& ctx);
// For the registry row: the status and metric labels of a check, and its detail rows (one block
// per backend: what HOST-LIST said, who took it down and when, the last polls with their
// latencies, rapid mode's progress, the last action).
std::pair<std::string, std::string> labels(const config::Check& check);
void rows(const CheckResult& r, DetailRows& out);

}  // namespace mw::checks::director
