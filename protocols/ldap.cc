// protocol ldap3 / ldap2 (RFC 4511): an anonymous simple bind with message id 1 must succeed;
// then an unbind, and the connection closes. With ssl: LDAPS.
#include <string>

#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/wire.h"
#include "util/strings.h"

namespace mw::protocols {
namespace {

constexpr size_t kMaxMessage = 64 * 1024;

Task<std::string> read_message(Connection& conn) {
  std::string head = co_await conn.read_exact(2);
  if (head[0] != 0x30)  // an LDAPMessage is a SEQUENCE
    throw ProbeError(FailureClass::protocol,
                     "not an LDAP answer (it starts with \"" + str::printable(head) + "\")");
  std::optional<wire::BerHead> h;
  try {
    while (!(h = wire::ber_head(head, kMaxMessage))) head += co_await conn.read_exact(1);
  } catch (const std::runtime_error& e) {
    throw ProbeError(FailureClass::protocol, std::string("not an LDAP answer: ") + e.what());
  }
  co_return head + co_await conn.read_exact(h->length);
}

Task<void> bind(Probe& probe, int version) {
  Connection& conn = probe.conn();
  conn.send(wire::ldap_anonymous_bind(version));
  std::string message = co_await read_message(conn);
  wire::BindResult r;
  if (!wire::ldap_bind_response(message, r) || r.message_id != 1)
    throw ProbeError(FailureClass::protocol,
                     "not an LDAP bind response (" + std::to_string(message.size()) + " bytes)");
  if (r.result_code != 0)
    throw ProbeError(FailureClass::rejected,
                     "anonymous bind refused: " + wire::ldap_result_name(r.result_code) +
                         (r.diagnostic.empty() ? "" : " (" + str::printable(r.diagnostic) + ")"),
                     r.diagnostic);
  conn.send(wire::ldap_unbind());
}

}  // namespace

Task<void> ldap3_dialogue(Probe& probe) {
  co_await bind(probe, 3);
}

Task<void> ldap2_dialogue(Probe& probe) {
  co_await bind(probe, 2);
}

}  // namespace mw::protocols
