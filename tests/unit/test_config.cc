// The parser's tests are data: every tests/unit/config/NAME.rc is parsed and the output (the
// diagnostics, or "Control file syntax OK" and a canonical dump of the model) must equal
// NAME.expected. Run with MW_UPDATE_EXPECTED=1 to rewrite the .expected files after a reviewed
// change.
#include <CppUTest/TestHarness.h>

#include <string>

#include "config_cases.h"
#include "support.h"

TEST_GROUP(ConfigCases){};

TEST(ConfigCases, EveryCaseMatchesItsExpectedOutput) {
  size_t cases = 0;
  std::string failures = mwtest::check_config_cases("", &mwtest::describe, cases);
  CHECK_TEXT(cases >= 20, "the parser case folder is missing or nearly empty");
  if (!failures.empty()) FAIL(failures.c_str());
}
