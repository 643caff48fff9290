#include "protocols/registry.h"

#include "util/strings.h"

namespace mw::protocols {

// One declaration and one row per protocol file.
Task<void> imap_dialogue(Probe& probe);
Task<void> pop_dialogue(Probe& probe);
Task<void> smtp_dialogue(Probe& probe);
Task<void> lmtp_dialogue(Probe& probe);
Task<void> sieve_dialogue(Probe& probe);
Task<void> generic_dialogue(Probe& probe);

const std::vector<ProtocolInfo>& all() {
  using config::TlsMode;
  static const std::vector<ProtocolInfo> rows = {
      {"imap", 143, TlsMode::none, 0, true, kLogin | kMasterUser | kMailbox, &imap_dialogue,
       "IMAP4rev1: greeting, CAPABILITY, [STARTTLS], [LOGIN/AUTHENTICATE PLAIN], [SELECT], LOGOUT"},
      {"imaps", 993, TlsMode::implicit, 143, true, kLogin | kMasterUser | kMailbox, &imap_dialogue,
       "IMAP over TLS from the first byte (on port 143: STARTTLS)"},
      {"pop", 110, TlsMode::none, 0, true, kLogin | kMasterUser, &pop_dialogue,
       "POP3: greeting, CAPA, [STLS], [USER/PASS or AUTH PLAIN], QUIT"},
      {"pops", 995, TlsMode::implicit, 110, true, kLogin | kMasterUser, &pop_dialogue,
       "POP3 over TLS from the first byte (on port 110: STLS)"},
      {"smtp", 25, TlsMode::none, 0, true, kLogin | kMasterUser | kEnvelope | kHelo, &smtp_dialogue,
       "SMTP: greeting, EHLO, [STARTTLS], [AUTH], [MAIL/RCPT, RSET], QUIT"},
      {"smtps", 465, TlsMode::implicit, 0, true, kLogin | kMasterUser | kEnvelope | kHelo,
       &smtp_dialogue, "SMTP over TLS from the first byte"},
      {"submission", 587, TlsMode::starttls, 0, true, kLogin | kMasterUser | kEnvelope | kHelo,
       &smtp_dialogue, "SMTP submission: STARTTLS required, then AUTH when a login is given"},
      {"lmtp", 24, TlsMode::none, 0, true, kEnvelope | kHelo, &lmtp_dialogue,
       "LMTP: greeting, LHLO, [STARTTLS], [MAIL/RCPT, RSET], QUIT; TCP or a unix socket"},
      {"sieve", 4190, TlsMode::none, 0, true, kLogin | kMasterUser, &sieve_dialogue,
       "ManageSieve: capabilities, [STARTTLS], [AUTHENTICATE PLAIN], LOGOUT"},
      {"tcp", 0, TlsMode::none, 0, false, kSteps, &generic_dialogue,
       "a TCP connection (with ssl: TLS), then its send/expect steps, if any"},
  };
  return rows;
}

const ProtocolInfo* find(std::string_view name) {
  for (const auto& row : all())
    if (str::iequals(row.name, name)) return &row;
  return nullptr;
}

}  // namespace mw::protocols
