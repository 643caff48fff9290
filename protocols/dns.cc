// protocol dns, over TCP (RFC 1035 4.2.2, RFC 7766): a query for the root's NS records,
// recursion desired. The answer must carry the query's id and the response bit. NOERROR,
// NXDOMAIN and REFUSED (an authoritative-only server asked about the root) show a server that
// answers; SERVFAIL (a resolver that cannot resolve) fails as rejected, other codes as protocol.
#include <openssl/rand.h>

#include <string>

#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/wire.h"

namespace mw::protocols {

Task<void> dns_dialogue(Probe& probe) {
  Connection& conn = probe.conn();
  uint16_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1) id = 0x6d77;
  std::string query = wire::dns_query(id, ".", 2 /* NS */);
  std::string framed{static_cast<char>(query.size() >> 8), static_cast<char>(query.size() & 0xff)};
  conn.send(framed + query);
  std::string length = co_await conn.read_exact(2);
  size_t n = static_cast<uint8_t>(length[0]) << 8 | static_cast<uint8_t>(length[1]);
  if (n < 12)
    throw ProbeError(FailureClass::protocol,
                     "not a DNS answer (a message of " + std::to_string(n) + " bytes)");
  std::string message = co_await conn.read_exact(n);
  wire::DnsAnswer a;
  if (!wire::dns_header(message, a) || !a.is_response)
    throw ProbeError(FailureClass::protocol, "not a DNS answer (the response bit is not set)");
  if (a.id != id)
    throw ProbeError(FailureClass::protocol, "DNS answer for another query (id " +
                                                 std::to_string(a.id) + ", sent " +
                                                 std::to_string(id) + ")");
  if (a.rcode == 0 || a.rcode == 3 || a.rcode == 5) co_return;
  throw ProbeError(a.rcode == 2 ? FailureClass::rejected : FailureClass::protocol,
                   "DNS query for . NS answered " + wire::dns_rcode_name(a.rcode));
}

}  // namespace mw::protocols
