#include "protocols/registry.h"

#include "util/strings.h"

namespace mw::protocols {

// One declaration and one row per protocol file.
Task<void> imap_dialogue(Probe& probe);

const std::vector<ProtocolInfo>& all() {
  using config::TlsMode;
  static const std::vector<ProtocolInfo> rows = {
      {"imap", 143, TlsMode::none, 0, true, kLogin | kMasterUser | kMailbox, &imap_dialogue,
       "IMAP4rev1: greeting, CAPABILITY, [STARTTLS], [LOGIN/AUTHENTICATE PLAIN], [SELECT], LOGOUT"},
      {"imaps", 993, TlsMode::implicit, 143, true, kLogin | kMasterUser | kMailbox, &imap_dialogue,
       "IMAP over TLS from the first byte (on port 143: STARTTLS)"},
  };
  return rows;
}

const ProtocolInfo* find(std::string_view name) {
  for (const auto& row : all())
    if (str::iequals(row.name, name)) return &row;
  return nullptr;
}

}  // namespace mw::protocols
