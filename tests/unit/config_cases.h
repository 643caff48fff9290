// Parser tests as data: every NAME.rc of a folder under tests/unit/config is parsed, and the
// diagnostics (or "Control file syntax OK" and a dump of the model) must equal NAME.expected.
// With MW_UPDATE_EXPECTED=1 the .expected files are rewritten instead (review them by eye).
#pragma once

#include <cstddef>
#include <string>

#include "config/model.h"

namespace mwtest {

using ModelDump = std::string (*)(const mw::config::Config&);

// `folder` is relative to tests/unit/config ("" for the folder itself); returns the
// mismatches (empty when every case matches) and sets `cases` to how many were run.
[[nodiscard]] std::string check_config_cases(const std::string& folder, ModelDump dump,
                                             size_t& cases);

}  // namespace mwtest
