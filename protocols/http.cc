// protocol http / https, as monit has them: GET the request path over HTTP/1.1 (Host: the
// hostheader, else the test's host), then check the status (by default any status below 400;
// redirects are not followed, their status is the result), and, when the rule asks, the body's
// content (a regex) or checksum. The body is read only then, and at most 1 MiB of it: content
// is matched against the first 1 MiB, a checksum needs the whole body within 1 MiB.
#include <openssl/evp.h>

#include <string>

#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/http_client.h"
#include "util/handles.h"
#include "util/log.h"
#include "util/strings.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

namespace mw::protocols {
namespace {

constexpr size_t kMaxBody = 1024 * 1024;

bool has_field(const config::HttpOptions& h, std::string_view name) {
  for (const auto& line : h.headers)
    if (line.size() > name.size() && line[name.size()] == ':' &&
        str::iequals(std::string_view(line).substr(0, name.size()), name))
      return true;
  return false;
}

std::string host_field(const Probe& probe) {
  const auto& h = probe.options().http_request();
  if (!h.hostheader.empty()) return h.hostheader;
  const Endpoint& ep = probe.port().endpoint;
  if (!ep.unix_path.empty()) return "localhost";
  std::string host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
  uint16_t usual = probe.port().tls_mode == config::TlsMode::implicit ? 443 : 80;
  return ep.port == usual ? host : host + ":" + std::to_string(ep.port);
}

bool status_ok(const std::string& op, int want, int got) {
  if (op.empty()) return got < 400;
  if (op == "=") return got == want;
  if (op == "!=") return got != want;
  if (op == "<") return got < want;
  if (op == ">") return got > want;
  if (op == "<=") return got <= want;
  return got >= want;
}

std::string hex_digest(const std::string& type, const std::string& data) {
  const EVP_MD* md = type == "md5" ? EVP_md5() : type == "sha1" ? EVP_sha1() : EVP_sha256();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1)
    throw ProbeError(FailureClass::internal, "cannot compute the " + type + " checksum");
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += digits[out[i] >> 4];
    hex += digits[out[i] & 15];
  }
  return hex;
}

bool body_matches(const config::Regex& re, const std::string& body) {
  Pcre2MatchDataPtr md(pcre2_match_data_create_from_pattern(re.code.get(), nullptr));
  if (!md) throw ProbeError(FailureClass::internal, "out of memory for a regex match");
  int rc = pcre2_match(re.code.get(), reinterpret_cast<PCRE2_SPTR>(body.data()), body.size(), 0, 0,
                       md.get(), nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) throw ProbeError(FailureClass::internal, "matching /" + re.source + "/ failed");
  return true;
}

}  // namespace

Task<void> http_dialogue(Probe& probe) {
  const auto& o = probe.options();
  const auto& h = o.http_request();
  Connection& conn = probe.conn();
  std::string request = "GET " + h.path + " HTTP/1.1\r\nHost: " + host_field(probe) + "\r\n";
  if (!has_field(h, "User-Agent")) request += "User-Agent: mailwarden/" PACKAGE_VERSION "\r\n";
  if (!has_field(h, "Accept")) request += "Accept: */*\r\n";
  request += "Connection: close\r\n";
  for (const auto& line : h.headers) request += line + "\r\n";
  conn.send(request);
  if (o.has_login()) {
    probe.require_password_allowed("https");
    conn.send_secret(
        "Authorization: Basic " + str::base64_encode(o.username + ":" + o.password) + "\r\n",
        "Authorization: Basic <" + o.username + ":password>");
  }
  conn.send("\r\n");

  http_probe::Response r = co_await http_probe::read_head(conn);
  if (const std::string* where = r.field("Location"); where && r.status / 100 == 3)
    log::debug("%s %s: redirect to %s (not followed)", probe.host().c_str(), h.path.c_str(),
               str::printable(*where).c_str());
  if (!status_ok(h.status_op, h.status, r.status)) {
    if (h.status_op.empty())
      throw ProbeError(FailureClass::rejected,
                       "GET " + h.path + " answered " + str::printable(r.status_line),
                       r.status_line);
    throw ProbeError(FailureClass::content,
                     "GET " + h.path + " answered " + str::printable(r.status_line) +
                         " (the rule wants status " + h.status_op + " " + std::to_string(h.status) +
                         ")",
                     r.status_line);
  }
  if (!h.needs_body()) co_return;
  co_await http_probe::read_body(conn, r, kMaxBody);
  if (h.content) {
    bool found = body_matches(*h.content, r.body);
    std::string cut = r.truncated ? " (in its first 1 MiB)" : "";
    if (found == h.content_negate)
      throw ProbeError(FailureClass::content, "GET " + h.path + ": the body" + cut +
                                                  (found ? " matches \"" : " does not match \"") +
                                                  str::printable(h.content->source) + "\"");
  }
  if (!h.checksum_hex.empty()) {
    if (r.truncated)
      throw ProbeError(
          FailureClass::content,
          "GET " + h.path + ": the body is larger than 1 MiB; its checksum is not computed");
    std::string got = hex_digest(h.checksum_type, r.body);
    if (got != h.checksum_hex)
      throw ProbeError(FailureClass::content, "GET " + h.path + ": the body's " + h.checksum_type +
                                                  " checksum is " + got + ", expected " +
                                                  h.checksum_hex);
  }
}

}  // namespace mw::protocols
