// A small HTTP/1.1 response reader over the one Connection type: the status line, the header
// fields (bounded in number and size), and a body sent with Content-Length, chunked, or until
// the close, of which at most a given number of bytes is kept.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/connection.h"
#include "net/task.h"

namespace mw::http_probe {

constexpr size_t kMaxHeaderFields = 100;
constexpr size_t kMaxHeaderBytes = 64 * 1024;

struct Response {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::string reason;
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> fields;  // names as sent
  std::string body;                                         // at most the cap given to read_body
  bool truncated = false;  // the body was longer than the cap; the rest was not read

  // The first field with that name (case-insensitive), or null.
  [[nodiscard]] const std::string* field(std::string_view name) const;
};

// Parses "HTTP/1.x NNN reason"; false when the line is not an HTTP status line.
[[nodiscard]] bool parse_status_line(const std::string& line, Response& r);

// The status line and header fields of the final response (1xx interim responses skipped).
Task<Response> read_head(Connection& conn);
// The body, by Content-Length, chunked transfer coding, or until the close; keeps at most `cap`
// bytes and stops reading there (truncated = true).
Task<void> read_body(Connection& conn, Response& r, size_t cap);

}  // namespace mw::http_probe
