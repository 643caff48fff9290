#include "protocols/wire.h"

#include <stdexcept>

namespace mw::protocols::wire {
namespace {

// One BER element at a time, inside the bounds [pos, end) of its parent.
struct BerReader {
  const std::string& s;
  size_t pos;
  size_t end;

  // Reads the next element's tag and the bounds of its content.
  bool next(uint8_t& tag, size_t& start, size_t& len) {
    if (pos + 2 > end) return false;
    tag = static_cast<uint8_t>(s[pos]);
    auto first = static_cast<uint8_t>(s[pos + 1]);
    size_t at = pos + 2;
    if (first < 0x80) {
      len = first;
    } else {
      size_t octets = first & 0x7f;
      if (octets == 0 || octets > 4 || at + octets > end) return false;
      len = 0;
      for (size_t i = 0; i < octets; ++i) len = len << 8 | static_cast<uint8_t>(s[at + i]);
      at += octets;
    }
    if (at + len > end) return false;
    start = at;
    pos = at + len;
    return true;
  }
  int integer(size_t start, size_t len) const {
    if (len == 0 || len > 4) return -1;
    long v = static_cast<int8_t>(s[start]);
    for (size_t i = 1; i < len; ++i) v = v << 8 | static_cast<uint8_t>(s[start + i]);
    return static_cast<int>(v);
  }
};

}  // namespace

std::string ldap_anonymous_bind(int version) {
  // SEQUENCE { INTEGER 1, [APPLICATION 0] { INTEGER version, OCTET STRING "", [0] "" } }
  return std::string{0x30,
                     0x0c,
                     0x02,
                     0x01,
                     0x01,
                     0x60,
                     0x07,
                     0x02,
                     0x01,
                     static_cast<char>(version),
                     0x04,
                     0x00,
                     static_cast<char>(0x80),
                     0x00};
}

std::string ldap_unbind() {
  // SEQUENCE { INTEGER 2, [APPLICATION 2] NULL }
  return std::string{0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00};
}

std::optional<BerHead> ber_head(const std::string& head, size_t max) {
  if (head.size() < 2) return std::nullopt;
  auto first = static_cast<uint8_t>(head[1]);
  BerHead h;
  if (first < 0x80) {
    h.header = 2;
    h.length = first;
  } else {
    size_t octets = first & 0x7f;
    if (octets == 0 || octets > 4) throw std::runtime_error("a BER length form LDAP does not use");
    if (head.size() < 2 + octets) return std::nullopt;
    h.header = 2 + octets;
    for (size_t i = 0; i < octets; ++i)
      h.length = h.length << 8 | static_cast<uint8_t>(head[2 + i]);
  }
  if (h.length > max)
    throw std::runtime_error("an LDAP message of " + std::to_string(h.length) + " bytes");
  return h;
}

bool ldap_bind_response(const std::string& message, BindResult& out) {
  BerReader top{message, 0, message.size()};
  uint8_t tag = 0;
  size_t start = 0, len = 0;
  if (!top.next(tag, start, len) || tag != 0x30) return false;
  BerReader msg{message, start, start + len};
  if (!msg.next(tag, start, len) || tag != 0x02) return false;
  out.message_id = msg.integer(start, len);
  if (!msg.next(tag, start, len) || tag != 0x61) return false;  // [APPLICATION 1] BindResponse
  BerReader op{message, start, start + len};
  if (!op.next(tag, start, len) || tag != 0x0a) return false;  // resultCode ENUMERATED
  out.result_code = op.integer(start, len);
  if (!op.next(tag, start, len) || tag != 0x04) return out.result_code >= 0;  // matchedDN
  if (op.next(tag, start, len) && tag == 0x04) out.diagnostic = message.substr(start, len);
  return out.result_code >= 0;
}

std::string ldap_result_name(int code) {
  switch (code) {
    case 0:
      return "success";
    case 1:
      return "operationsError";
    case 2:
      return "protocolError";
    case 7:
      return "authMethodNotSupported";
    case 8:
      return "strongerAuthRequired";
    case 13:
      return "confidentialityRequired";
    case 48:
      return "inappropriateAuthentication";
    case 49:
      return "invalidCredentials";
    case 50:
      return "insufficientAccessRights";
    case 51:
      return "busy";
    case 52:
      return "unavailable";
    case 53:
      return "unwillingToPerform";
    default:
      return "result " + std::to_string(code);
  }
}

std::string dns_query(uint16_t id, const std::string& name, uint16_t type) {
  std::string q;
  q += static_cast<char>(id >> 8);
  q += static_cast<char>(id & 0xff);
  q += std::string{0x01, 0x00};                    // RD
  q += std::string{0x00, 0x01, 0, 0, 0, 0, 0, 0};  // one question
  size_t from = 0;
  if (name == ".") from = 1;  // the root: no labels
  while (from < name.size()) {
    size_t dot = name.find('.', from);
    if (dot == std::string::npos) dot = name.size();
    size_t n = dot - from;
    if (n == 0 || n > 63) throw std::runtime_error("bad DNS name '" + name + "'");
    q += static_cast<char>(n);
    q += name.substr(from, n);
    from = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(type >> 8);
  q += static_cast<char>(type & 0xff);
  q += std::string{0x00, 0x01};  // class IN
  return q;
}

bool dns_header(const std::string& m, DnsAnswer& out) {
  if (m.size() < 12) return false;
  auto b = [&](size_t i) { return static_cast<uint8_t>(m[i]); };
  out.id = static_cast<uint16_t>(b(0) << 8 | b(1));
  out.is_response = (b(2) & 0x80) != 0;
  out.rcode = b(3) & 0x0f;
  out.answers = b(6) << 8 | b(7);
  return true;
}

std::string dns_rcode_name(int rcode) {
  static const char* const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                      "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                      "NXRRSET", "NOTAUTH", "NOTZONE"};
  if (rcode >= 0 && rcode < 11) return names[rcode];
  return "rcode " + std::to_string(rcode);
}

}  // namespace mw::protocols::wire
