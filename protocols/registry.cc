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
Task<void> connect_only_dialogue(Probe& probe);
Task<void> http_dialogue(Probe& probe);
Task<void> ssh_dialogue(Probe& probe);
Task<void> ftp_dialogue(Probe& probe);
Task<void> nntp_dialogue(Probe& probe);
Task<void> rsync_dialogue(Probe& probe);
Task<void> mysql_dialogue(Probe& probe);
Task<void> redis_dialogue(Probe& probe);
Task<void> memcache_dialogue(Probe& probe);
Task<void> clamav_dialogue(Probe& probe);
Task<void> spamassassin_dialogue(Probe& probe);
Task<void> postfix_policy_dialogue(Probe& probe);
Task<void> pgsql_dialogue(Probe& probe);
Task<void> ldap2_dialogue(Probe& probe);
Task<void> ldap3_dialogue(Probe& probe);
Task<void> dns_dialogue(Probe& probe);

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
      {"generic", 0, TlsMode::none, 0, false, kSteps, &generic_dialogue, "monit's name for tcp"},
      {"default", 0, TlsMode::none, 0, false, kSteps, &generic_dialogue, "monit's name for tcp"},
      // ---- web: autoconfig, webmail, MTA-STS policies
      {"http", 80, TlsMode::none, 0, false, kLogin | kHttp, &http_dialogue,
       "HTTP/1.1: GET the request path, check the status, optionally the body's content or "
       "checksum"},
      {"https", 443, TlsMode::implicit, 0, false, kLogin | kHttp, &http_dialogue,
       "HTTP/1.1 over TLS (SNI and name check: the hostheader, else the host)"},
      // ---- other services a mail host runs: a short dialogue that proves the server speaks
      {"ssh", 22, TlsMode::none, 0, false, 0, &ssh_dialogue,
       "SSH: the server's identification line SSH-2.0-... (or SSH-1.99-...)"},
      {"ftp", 21, TlsMode::none, 0, false, 0, &ftp_dialogue, "FTP: 220 greeting, QUIT"},
      {"nntp", 119, TlsMode::none, 0, false, 0, &nntp_dialogue, "NNTP: 200/201 greeting, QUIT"},
      {"rsync", 873, TlsMode::none, 0, false, 0, &rsync_dialogue, "rsync daemon: @RSYNCD greeting"},
      {"mysql", 3306, TlsMode::none, 0, false, 0, &mysql_dialogue,
       "MySQL/MariaDB: the server's handshake packet (protocol 10), no login"},
      {"redis", 6379, TlsMode::none, 0, false, 0, &redis_dialogue, "Redis: PING, +PONG"},
      {"memcache", 11211, TlsMode::none, 0, false, 0, &memcache_dialogue,
       "memcached: version, VERSION ..."},
      {"clamav", 3310, TlsMode::none, 0, false, 0, &clamav_dialogue,
       "clamd: PING, PONG; TCP or a unix socket"},
      {"spamassassin", 783, TlsMode::none, 0, false, 0, &spamassassin_dialogue,
       "spamd: PING SPAMC/1.2, SPAMD/... PONG"},
      {"postfix-policy", 0, TlsMode::none, 0, false, 0, &postfix_policy_dialogue,
       "a Postfix policy service: one smtpd_access_policy request, an action= reply"},
      {"pgsql", 5432, TlsMode::none, 0, false, 0, &pgsql_dialogue,
       "PostgreSQL: an SSLRequest, answered S or N (no login)"},
      {"ldap3", 389, TlsMode::none, 0, false, 0, &ldap3_dialogue,
       "LDAPv3: anonymous simple bind, success, unbind"},
      {"ldap2", 389, TlsMode::none, 0, false, 0, &ldap2_dialogue,
       "LDAPv2: anonymous simple bind, success, unbind"},
      {"dns", 53, TlsMode::none, 0, false, 0, &dns_dialogue,
       "DNS over TCP: a query for the root's NS records; the answer's id and rcode"},
      // ---- names monit knows, without a dialogue here: the connection is the test
      {"apache-status", 80, TlsMode::none, 0, false, 0, &connect_only_dialogue,
       "monit's Apache mod_status test", true},
      {"dwp", 80, TlsMode::none, 0, false, 0, &connect_only_dialogue, "monit's DWP test", true},
      {"fail2ban", 0, TlsMode::none, 0, false, 0, &connect_only_dialogue,
       "monit's fail2ban test (its unix socket)", true},
      {"gps", 2947, TlsMode::none, 0, false, 0, &connect_only_dialogue, "monit's gpsd test", true},
      {"mongodb", 27017, TlsMode::none, 0, false, 0, &connect_only_dialogue, "monit's MongoDB test",
       true},
      {"mqtt", 1883, TlsMode::none, 0, false, 0, &connect_only_dialogue, "monit's MQTT test", true},
      {"mysqls", 3306, TlsMode::none, 0, false, 0, &connect_only_dialogue,
       "monit's MySQL test with TLS negotiated in the protocol", true},
      {"ntp3", 123, TlsMode::none, 0, false, 0, &connect_only_dialogue,
       "monit's NTP test (NTP servers speak UDP; this is a TCP connect)", true},
      {"radius", 1812, TlsMode::none, 0, false, 0, &connect_only_dialogue,
       "monit's RADIUS test (RADIUS servers speak UDP; this is a TCP connect)", true},
      {"rdate", 37, TlsMode::none, 0, false, 0, &connect_only_dialogue, "monit's rdate test", true},
      {"sip", 5060, TlsMode::none, 0, false, 0, &connect_only_dialogue, "monit's SIP test", true},
      {"tns", 1521, TlsMode::none, 0, false, 0, &connect_only_dialogue, "monit's Oracle TNS test",
       true},
      {"websocket", 80, TlsMode::none, 0, false, 0, &connect_only_dialogue,
       "monit's WebSocket test", true},
      {"ws", 80, TlsMode::none, 0, false, 0, &connect_only_dialogue,
       "monit's WebSocket test (short name)", true},
  };
  return rows;
}

const ProtocolInfo* find(std::string_view name) {
  for (const auto& row : all())
    if (str::iequals(row.name, name)) return &row;
  return nullptr;
}

}  // namespace mw::protocols
