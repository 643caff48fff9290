// The binary encoders and decoders of the monit protocols (LDAP's BER, DNS) and the HTTP
// status line, fed bytes directly: well-formed, truncated and hostile.
#include "scenarios.h"  // before CppUTest: its new macros break STL headers

#include <CppUTest/TestHarness.h>

#include <stdexcept>
#include <string>

#include "protocols/http_client.h"
#include "protocols/wire.h"

namespace wire = mw::protocols::wire;

TEST_GROUP(Wire){};

TEST(Wire, LdapBindRequestIsTheRfc4511Encoding) {
  const std::string want{0x30,
                         0x0c,
                         0x02,
                         0x01,
                         0x01,
                         0x60,
                         0x07,
                         0x02,
                         0x01,
                         0x03,
                         0x04,
                         0x00,
                         static_cast<char>(0x80),
                         0x00};
  CHECK(want == wire::ldap_anonymous_bind(3));
  CHECK_EQUAL(2, wire::ldap_anonymous_bind(2)[9]);
  CHECK(std::string({0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00}) == wire::ldap_unbind());
}

TEST(Wire, LdapBindResponses) {
  wire::BindResult r;
  const std::string ok{0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07,
                       0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00};
  CHECK(wire::ldap_bind_response(ok, r));
  LONGS_EQUAL(1, r.message_id);
  LONGS_EQUAL(0, r.result_code);
  // Long-form lengths, a diagnostic message.
  std::string refused{0x30, static_cast<char>(0x81),
                      0x13, 0x02,
                      0x01, 0x01,
                      0x61, 0x0e,
                      0x0a, 0x01,
                      0x31, 0x04,
                      0x00, 0x04,
                      0x07};
  refused += "no anon";
  wire::BindResult r2;
  CHECK(wire::ldap_bind_response(refused, r2));
  LONGS_EQUAL(49, r2.result_code);
  STRCMP_EQUAL("no anon", r2.diagnostic.c_str());
  STRCMP_EQUAL("invalidCredentials", wire::ldap_result_name(49).c_str());
  // Truncated, wrong tags, a search result instead of a bind response.
  wire::BindResult r3;
  CHECK_FALSE(wire::ldap_bind_response(ok.substr(0, 9), r3));
  CHECK_FALSE(wire::ldap_bind_response("SSH-2.0-x", r3));
  std::string search = ok;
  search[5] = 0x65;
  CHECK_FALSE(wire::ldap_bind_response(search, r3));
  CHECK_FALSE(wire::ldap_bind_response("", r3));
}

TEST(Wire, BerHeadIsBounded) {
  CHECK(!wire::ber_head(std::string{0x30}, 100));
  auto h = wire::ber_head(std::string{0x30, 0x0c}, 100);
  CHECK(h.has_value());
  LONGS_EQUAL(2, h->header);
  LONGS_EQUAL(12, h->length);
  CHECK(!wire::ber_head(std::string{0x30, static_cast<char>(0x82), 0x01}, 100));
  auto big = std::string{0x30, static_cast<char>(0x84), 0x7f, 0x00, 0x00, 0x00};
  CHECK_THROWS(std::runtime_error, (void)wire::ber_head(big, 65536));
  auto indefinite = std::string{0x30, static_cast<char>(0x80)};
  CHECK_THROWS(std::runtime_error, (void)wire::ber_head(indefinite, 65536));
}

TEST(Wire, DnsQueryForTheRootAndForAName) {
  std::string root = wire::dns_query(0x1234, ".", 2);
  const std::string want_root{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                              0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
  CHECK(want_root == root);
  std::string q = wire::dns_query(1, "mail.example.net.", 1);
  std::string labels = q.substr(12, q.size() - 16);
  CHECK(std::string("\x04mail\x07"
                    "example\x03net",
                    17) +
            std::string(1, '\0') ==
        labels);
  CHECK_THROWS(std::runtime_error, (void)wire::dns_query(1, "a..b", 1));
  CHECK_THROWS(std::runtime_error, (void)wire::dns_query(1, std::string(64, 'x') + ".net", 1));
}

TEST(Wire, DnsHeader) {
  wire::DnsAnswer a;
  CHECK_FALSE(wire::dns_header("short", a));
  const std::string refused{0x12,
                            0x34,
                            static_cast<char>(0x81),
                            static_cast<char>(0x85),
                            0x00,
                            0x01,
                            0x00,
                            0x00,
                            0x00,
                            0x00,
                            0x00,
                            0x00};
  CHECK(wire::dns_header(refused, a));
  LONGS_EQUAL(0x1234, a.id);
  CHECK(a.is_response);
  LONGS_EQUAL(5, a.rcode);
  STRCMP_EQUAL("REFUSED", wire::dns_rcode_name(a.rcode).c_str());
  STRCMP_EQUAL("rcode 12", wire::dns_rcode_name(12).c_str());
}

TEST(Wire, HttpStatusLines) {
  mw::http_probe::Response r;
  CHECK(mw::http_probe::parse_status_line("HTTP/1.1 200 OK", r));
  LONGS_EQUAL(200, r.status);
  STRCMP_EQUAL("OK", r.reason.c_str());
  CHECK(mw::http_probe::parse_status_line("HTTP/1.0 404", r));
  LONGS_EQUAL(404, r.status);
  CHECK(mw::http_probe::parse_status_line("HTTP/1.1 301 Moved Permanently", r));
  STRCMP_EQUAL("Moved Permanently", r.reason.c_str());
  CHECK_FALSE(mw::http_probe::parse_status_line("HTTP/2 200", r));
  CHECK_FALSE(mw::http_probe::parse_status_line("HTTP/1.1 20 OK", r));
  CHECK_FALSE(mw::http_probe::parse_status_line("HTTP/1.1 2000 OK", r));
  CHECK_FALSE(mw::http_probe::parse_status_line("SSH-2.0-OpenSSH_9.2p1", r));
  CHECK_FALSE(mw::http_probe::parse_status_line("HTTP/1.1 099 Weird", r));
  CHECK_FALSE(mw::http_probe::parse_status_line("", r));
}
