// The port test: one protocol dialogue over one connection (`if failed port N protocol P`), the
// dialogue itself being a row of the protocol registry (protocols/registry.cc).
#pragma once

#include <string>
#include <utility>

#include "config/model.h"
#include "engine/result.h"
#include "net/task.h"

namespace mw {
class RunContext;
}

namespace mw::checks::port {

Task<void> run(RunContext& ctx);
// The checks every protocol gets, applied after a successful dialogue: certificate validity and
// fingerprint, response time.
void finish(const config::Check& check, CheckResult& r);
std::pair<std::string, std::string> labels(const config::Check& check);

}  // namespace mw::checks::port
