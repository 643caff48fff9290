// Helpers shared by the unit tests: temporary files, a private event loop, parsing control text,
// running one check to completion, and a canonical dump of a parsed model.
#pragma once

#include <memory>
#include <string>

#include "config/model.h"
#include "config/parser.h"
#include "engine/result.h"
#include "net/io_context.h"
#include "net/tls.h"
#include "util/handles.h"

namespace mwtest {

// The source tree (for data files such as tests/unit/config/*.rc).
[[nodiscard]] std::string srcdir();
// A private temporary directory for this test process, created on first use.
[[nodiscard]] std::string tmpdir();
// Writes `content` to tmpdir()/name with `mode`; returns the path.
std::string write_file(const std::string& name, const std::string& content, int mode = 0600);

struct Loop {
  Loop();
  mw::EventBasePtr base;
  mw::EvdnsBasePtr dns;
  mw::TlsContextCache tls;
  mw::IoContext io;
};

// Parses control text; on errors the returned config is null and `errors` has one line each.
std::shared_ptr<const mw::config::Config> parse_text(const std::string& text,
                                                     std::string* errors = nullptr);

// Runs check `index` of the first service once (with its retries) and returns the result.
// `memory` is what earlier runs left (a composite check resumes from it; see result.memory).
mw::CheckResult run_check(Loop& loop, const std::shared_ptr<const mw::config::Config>& config,
                          size_t index = 0, nlohmann::json memory = nullptr);

// A stable text form of a model, for the parser's data-driven tests.
[[nodiscard]] std::string describe(const mw::config::Config& config);

}  // namespace mwtest
