// The ManageSieve client's reply reader (capability lines, STARTTLS, AUTHENTICATE, LOGOUT), fed
// by a server that says the input.
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> rules = {
      "protocol sieve",
      "protocol sieve username \"alice\" password \"pw\" allow plaintext",
      "protocol sieve starttls",
  };
  return mwfuzz::fuzz_replies(rules, data, size);
}
