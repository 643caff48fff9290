// The IMAP client's reply reader (greeting, CAPABILITY, LOGIN / AUTHENTICATE, SELECT, LOGOUT),
// fed by a server that says the input.
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> rules = {
      "protocol imap",
      "protocol imap username \"alice\" password \"pw\" allow plaintext",
      "protocol imap username \"alice\" password \"pw\" allow plaintext select \"INBOX\"",
      "protocol imap username \"alice\" masteruser \"master\" password \"pw\" allow plaintext",
      "protocol imap starttls",
  };
  return mwfuzz::fuzz_replies(rules, data, size);
}
