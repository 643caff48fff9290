// The POP3 client's reply reader (greeting, CAPA, STLS, USER/PASS, AUTH PLAIN, QUIT), fed by a
// server that says the input.
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> rules = {
      "protocol pop",
      "protocol pop username \"alice\" password \"pw\" allow plaintext",
      "protocol pop username \"alice\" masteruser \"master\" password \"pw\" allow plaintext",
      "protocol pop starttls",
  };
  return mwfuzz::fuzz_replies(rules, data, size);
}
