// The port test without a protocol (monit's and check_tcp's generic test): the engine's base has
// connected (and, with ssl, done the TLS handshake); then each send/expect step runs in order.
// An expect reads the next line and its regex must match; with `within N bytes` lines are read
// until one matches, at most N bytes. \0..\9 in a send are the last match and its captures. A
// starttls step upgrades the connection in place at that point.
#include <array>
#include <string>

#include "engine/probe.h"
#include "net/failure.h"
#include "util/handles.h"
#include "util/strings.h"

namespace mw::protocols {
namespace {

constexpr int kMaxGroups = 10;  // \0 .. \9
using Captures = std::array<std::string, kMaxGroups>;

std::string fill_in(const config::Step& step, const Captures& captures) {
  std::string out;
  size_t from = 0;
  for (const auto& [at, group] : step.captures) {
    out.append(step.text, from, at - from);
    out += captures[static_cast<size_t>(group)];
    from = at;
  }
  out.append(step.text, from, std::string::npos);
  return out;
}

// Matches `line`; on success the captures of this match replace the previous ones.
bool matches(const config::Regex& re, const std::string& line, Captures& captures) {
  Pcre2MatchDataPtr md(pcre2_match_data_create_from_pattern(re.code.get(), nullptr));
  if (!md) throw ProbeError(FailureClass::internal, "out of memory for a regex match");
  int rc = pcre2_match(re.code.get(), reinterpret_cast<PCRE2_SPTR>(line.data()), line.size(), 0, 0,
                       md.get(), nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR text[256];
    pcre2_get_error_message(rc, text, sizeof text);
    throw ProbeError(FailureClass::internal,
                     "matching /" + re.source + "/ failed: " + reinterpret_cast<const char*>(text));
  }
  PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md.get());
  uint32_t pairs = pcre2_get_ovector_count(md.get());
  for (size_t g = 0; g < kMaxGroups; ++g) {
    captures[g].clear();
    if (g >= pairs || ovector[2 * g] == PCRE2_UNSET) continue;
    captures[g] = line.substr(ovector[2 * g], ovector[2 * g + 1] - ovector[2 * g]);
  }
  return true;
}

Task<void> expect(Connection& conn, const config::Step& step, Captures& captures) {
  const std::string shown = "\"" + str::printable(step.regex.source) + "\"";
  size_t read = 0;
  std::string last;
  for (;;) {
    auto line = co_await conn.read_line_or_close();
    if (!line)
      throw ProbeError(FailureClass::protocol,
                       "server closed the connection before a line matching " + shown +
                           (last.empty() ? "" : " (last line: \"" + str::printable(last) + "\")"));
    if (matches(step.regex, *line, captures)) co_return;
    if (step.max_bytes == 0)
      throw ProbeError(FailureClass::content,
                       "expected " + shown + ", got \"" + str::printable(*line) + "\"", *line);
    read += line->size() + 2;
    last = std::move(*line);
    if (read >= step.max_bytes)
      throw ProbeError(FailureClass::content,
                       "no line matching " + shown + " within " + std::to_string(step.max_bytes) +
                           " bytes (last line: \"" + str::printable(last) + "\")",
                       last);
  }
}

}  // namespace

Task<void> generic_dialogue(Probe& probe) {
  Captures captures;
  for (const auto& step : probe.options().steps) {
    // (if/else rather than a switch: each co_await stays a plain statement, see net/task.h)
    if (step.kind == config::Step::Kind::send) {
      probe.conn().send(fill_in(step, captures));
    } else if (step.kind == config::Step::Kind::expect) {
      co_await expect(probe.conn(), step, captures);
    } else {
      co_await probe.starttls();
    }
  }
}

}  // namespace mw::protocols
