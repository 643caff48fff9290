#include "protocols/http_client.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "net/failure.h"
#include "util/strings.h"

namespace mw::http_probe {
namespace {

constexpr int kMaxInterim = 8;  // 100 Continue, 103 Early Hints, ... before the final response

[[noreturn]] void garbage(const std::string& what, const std::string& line) {
  throw ProbeError(FailureClass::protocol, what + ": \"" + str::printable(line) + "\"", line);
}

// A chunk-size line: hex digits, optionally followed by ";extensions".
size_t chunk_size(const std::string& line) {
  std::string_view hex = str::trim(std::string_view(line).substr(0, line.find(';')));
  size_t n = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), n, 16);
  if (hex.empty() || ec != std::errc() || end != hex.data() + hex.size())
    garbage("bad chunk size line", line);
  return n;
}

void keep(Response& r, const std::string& data, size_t cap) {
  size_t room = cap - r.body.size();
  r.body.append(data, 0, std::min(room, data.size()));
  if (data.size() > room) r.truncated = true;
}

}  // namespace

const std::string* Response::field(std::string_view name) const {
  for (const auto& [n, v] : fields)
    if (str::iequals(n, name)) return &v;
  return nullptr;
}

bool parse_status_line(const std::string& line, Response& r) {
  // HTTP/1.1 200 OK  (the reason may be empty, even without its space)
  if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ') return false;
  if (!std::isdigit(static_cast<unsigned char>(line[7]))) return false;
  for (size_t i = 9; i < 12; ++i)
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return false;
  if (line.size() > 12 && line[12] != ' ') return false;
  r.version = line.substr(0, 8);
  r.status = std::stoi(line.substr(9, 3));
  r.reason = line.size() > 13 ? line.substr(13) : "";
  r.status_line = line;
  return r.status >= 100;
}

Task<Response> read_head(Connection& conn) {
  for (int interim = 0;; ++interim) {
    Response r;
    std::string line = co_await conn.read_line();
    if (!parse_status_line(line, r)) garbage("not an HTTP status line", line);
    size_t bytes = 0;
    for (;;) {
      std::string field = co_await conn.read_line();
      if (field.empty()) break;
      bytes += field.size() + 2;
      if (r.fields.size() == kMaxHeaderFields || bytes > kMaxHeaderBytes)
        throw ProbeError(FailureClass::protocol,
                         "more than " + std::to_string(kMaxHeaderFields) + " header fields or " +
                             std::to_string(kMaxHeaderBytes) + " bytes of header");
      auto colon = field.find(':');
      if (colon == std::string::npos || colon == 0) garbage("not an HTTP header field", field);
      r.fields.emplace_back(field.substr(0, colon),
                            std::string(str::trim(std::string_view(field).substr(colon + 1))));
    }
    if (r.status >= 200 || interim == kMaxInterim) co_return r;
  }
}

Task<void> read_body(Connection& conn, Response& r, size_t cap) {
  const std::string* te = r.field("Transfer-Encoding");
  if (te && str::lower(*te).find("chunked") != std::string::npos) {
    for (;;) {
      std::string line = co_await conn.read_line();
      size_t n = chunk_size(line);
      if (n == 0) break;
      if (n > cap - r.body.size()) {
        // Only what fits is read; the rest is left unread on a connection about to close.
        if (r.body.size() < cap) keep(r, co_await conn.read_exact(cap - r.body.size()), cap);
        r.truncated = true;
        co_return;
      }
      keep(r, co_await conn.read_exact(n), cap);
      std::string end = co_await conn.read_line();
      if (!end.empty()) garbage("chunk not followed by CRLF", end);
    }
    // Trailer fields, then the empty line (bounded like the header).
    for (size_t n = 0;; ++n) {
      auto trailer = co_await conn.read_line_or_close();
      if (!trailer || trailer->empty()) break;
      if (n == kMaxHeaderFields)
        throw ProbeError(FailureClass::protocol, "too many trailer fields");
    }
    co_return;
  }
  if (const std::string* cl = r.field("Content-Length")) {
    size_t n = 0;
    std::string_view v = str::trim(*cl);
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size())
      garbage("bad Content-Length", *cl);
    if (n > cap) {
      keep(r, co_await conn.read_exact(cap), cap);
      r.truncated = true;
      co_return;
    }
    keep(r, co_await conn.read_exact(n), cap);
    co_return;
  }
  // No length: the body ends with the connection.
  for (;;) {
    auto data = co_await conn.read_some(cap - r.body.size() + 1);
    if (!data) co_return;
    keep(r, *data, cap);
    if (r.truncated) co_return;
  }
}

}  // namespace mw::http_probe
