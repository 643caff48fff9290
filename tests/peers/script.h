// Parser of the scripted-peer language (see README.md in this directory).
#pragma once

#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <vector>

namespace mwtest::peerimpl {

enum class Op {
  kTls,         // tls CERT (first command only)
  kSend,        // send "..." and sendline "..." (CRLF already appended)
  kExpect,      // expect /re/ | expect any | expect-optional ...
  kSleep,       // sleep MS
  kStartTls,    // starttls CERT
  kClose,       // close
  kCloseDirty,  // close-dirty
  kReset,       // reset
  kHang,        // hang
  kRepeat,      // repeat N "..."
  kDrain,       // drain
  kGarbage,     // garbage N [SEED]
};

// A piece of text to send: a literal, or a reference ($0..$9) to a capture group of the last
// line matched by an expect on the same connection.
struct Piece {
  std::string literal;
  int group = -1;  // >= 0: a capture-group reference, literal is empty
};
using Template = std::vector<Piece>;

struct Command {
  Op op = Op::kSend;
  int line = 0;                             // 1-based line in the script text
  Template text;                            // send/sendline payload, repeat unit
  std::string arg;                          // certificate name, or expect's /re/flags as written
  std::shared_ptr<const std::regex> regex;  // expect; null for "expect any"
  bool optional = false;                    // expect-optional
  uint64_t count = 0;                       // sleep ms, repeat count, garbage bytes
  uint64_t seed = 0;                        // garbage
};

// Parses a whole script; throws std::runtime_error("script:LINE: message") on the first error.
std::vector<Command> parse_script(const std::string& text);

// "/re/" or "any": how an expect is shown in error messages.
std::string describe_expect(const Command& cmd);

// Renders a template with the capture groups of the last matched line ($0 is the whole line;
// a group that is missing or did not participate renders as "").
std::string render(const Template& text, const std::vector<std::string>& groups);

// True when the script needs certificates (uses tls or starttls).
bool uses_tls(const std::vector<Command>& script);

}  // namespace mwtest::peerimpl
