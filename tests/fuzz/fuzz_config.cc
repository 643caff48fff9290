// The control-file parser: lexer, every statement, the semantic checks, and the -t output of a
// file that parses. Errors are expected; a crash, a hang or unbounded memory is not.
#include <cstdlib>

#include "config/parser.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path =
      mwfuzz::write_scratch("control.rc", {reinterpret_cast<const char*>(data), size});
  auto parsed = mw::config::parse_file(path);
  for (const auto& d : parsed.diagnostics.items()) {
    // Every error names where it is and what was expected.
    if (d.str().empty()) abort();
  }
  if (!parsed.config && parsed.diagnostics.count() == 0) abort();  // refused without a reason
  return 0;
}
