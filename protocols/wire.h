// Encoders and decoders of the binary dialogues (LDAP's BER, DNS), kept apart from their
// dialogues so that unit tests can feed them bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mw::protocols::wire {

// LDAP (RFC 4511): an anonymous simple BindRequest with message id 1.
[[nodiscard]] std::string ldap_anonymous_bind(int version);
// An UnbindRequest with message id 2.
[[nodiscard]] std::string ldap_unbind();
// The length of the BER element whose first bytes are `head` (tag, length octets); nullopt
// when more bytes are needed; throws on a length form LDAP does not use or one over `max`.
struct BerHead {
  size_t header = 0;  // tag + length octets
  size_t length = 0;  // content octets
};
[[nodiscard]] std::optional<BerHead> ber_head(const std::string& head, size_t max);
struct BindResult {
  int message_id = -1;
  int result_code = -1;
  std::string diagnostic;
};
// Decodes an LDAPMessage holding a BindResponse; false when it is not one.
[[nodiscard]] bool ldap_bind_response(const std::string& message, BindResult& out);
[[nodiscard]] std::string ldap_result_name(int code);

// DNS (RFC 1035): a query for `name` (dotted, "." = the root) of `type`, recursion desired.
[[nodiscard]] std::string dns_query(uint16_t id, const std::string& name, uint16_t type);
struct DnsAnswer {
  uint16_t id = 0;
  bool is_response = false;
  int rcode = -1;
  int answers = 0;
};
// Decodes the header of a DNS message; false when it is shorter than a header.
[[nodiscard]] bool dns_header(const std::string& message, DnsAnswer& out);
[[nodiscard]] std::string dns_rcode_name(int rcode);

}  // namespace mw::protocols::wire
