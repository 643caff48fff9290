// The check-kind registry: a kind of check is one folder under src/checks/<kind>/ and one row in
// registry.cc. The parser asks it which service types exist (`check KEYWORD`) and how to read
// them; the engine asks it how to run a check; every face of the status asks it how a check's
// details read. Nothing else in the tree switches on the kind.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/model.h"
#include "engine/result.h"
#include "net/task.h"

namespace mw {
class RunContext;
}
namespace mw::config::parsing {
class Parser;
}

namespace mw::checks {

// "label  value" rows a kind adds to the text and HTML status of one of its checks.
using DetailRows = std::vector<std::pair<std::string, std::string>>;

struct Kind {
  std::string_view name{};  // shown in status and metrics: "port", "replication", ...
  // `check KEYWORD NAME ...`: the service type this kind reads, and the hook that reads the
  // statement after KEYWORD. Empty/null for kinds that only appear inside another type's body
  // (port tests inside `check host`).
  std::string_view keyword{};
  void (*parse)(config::parsing::Parser&) = nullptr;
  // One attempt of a check of this kind; throws ProbeError to fail it.
  Task<void> (*run)(RunContext&) = nullptr;
  // Optional: settles the result of a finished attempt (port: certificate age, response time).
  void (*finish)(const config::Check&, CheckResult&) = nullptr;
  // Optional: what the protocol and the target of a check are, for status and metric labels.
  std::pair<std::string, std::string> (*labels)(const config::Check&) = nullptr;
  // Optional: the rows its details add to the text and HTML status.
  void (*rows)(const CheckResult&, DetailRows&) = nullptr;
};

[[nodiscard]] const std::vector<Kind>& all();
// The row named `name` (a kind's name, not a keyword); aborts on a name not in the table, which
// is a bug in the caller.
[[nodiscard]] const Kind& get(std::string_view name);
// The row that reads `check KEYWORD`, or null.
[[nodiscard]] const Kind* by_keyword(std::string_view keyword);

}  // namespace mw::checks
