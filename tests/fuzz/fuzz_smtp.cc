// The SMTP client's reply reader (greeting, multi-line EHLO, STARTTLS, AUTH, MAIL/RCPT, QUIT),
// the one client that also sends alerts and delivery probes, fed by a server that says the input.
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> rules = {
      "protocol smtp",
      "protocol smtp mail from \"probe@example.test\" rcpt to \"postmaster@example.test\"",
      "protocol smtp mail from \"\" rcpt to \"x@elsewhere.test\" expect reject",
      "protocol smtp username \"alice\" password \"pw\" allow plaintext",
      "protocol smtp starttls",
      "protocol lmtp rcpt to \"alice@example.test\"",
  };
  return mwfuzz::fuzz_replies(rules, data, size);
}
