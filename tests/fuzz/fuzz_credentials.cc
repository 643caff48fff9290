// The credentials file (libconfig syntax, dovemon's fields): load and look up.
#include <cstdlib>

#include "config/credentials.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path =
      mwfuzz::write_scratch("accounts.cfg", {reinterpret_cast<const char*>(data), size});
  mw::config::Location at;
  std::string error;
  auto creds = mw::config::CredentialsFile::load(path, at, error);
  if (!creds && error.empty()) abort();  // refused without a reason
  if (creds) (void)creds->find("probe");
  return 0;
}
