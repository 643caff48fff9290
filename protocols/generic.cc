// The port test without a protocol (monit's and check_tcp's generic test): the engine's base has
// connected (and, with ssl, done the TLS handshake); then each send/expect step runs in order.
// As in monit, an expect matches against what the server sent since the previous step: each
// line in turn, then the whole reply once it has ended (a line tagged like the command sent, a
// final numeric line, a close, or 300 ms of silence after the last bytes). A mismatch fails
// then, not at the timeout, and shows the lines received. With `within N bytes` lines are read
// until one matches, at most N bytes. \0..\9 in a send are the last match and its captures. A
// starttls step upgrades the connection in place at that point.
#include <array>
#include <cctype>
#include <deque>
#include <string>

#include "engine/probe.h"
#include "net/failure.h"
#include "util/handles.h"
#include "util/strings.h"

namespace mw::protocols {
namespace {

constexpr int kMaxGroups = 10;  // \0 .. \9
// Silence after the last bytes that ends a reply whose end the dialogue cannot see.
constexpr int64_t kQuietMs = 300;
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

// Where a reply ends, as far as a generic dialogue can tell: a line tagged like the command
// just sent (IMAP "a1 OK ..."), or the last line of a numeric reply (SMTP, FTP, NNTP "250 ...").
bool ends_reply(const std::string& line, const std::string& tag) {
  if (!tag.empty() && line.size() > tag.size() && line.compare(0, tag.size(), tag) == 0 &&
      line[tag.size()] == ' ')
    return true;
  bool numeric = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                 std::isdigit(static_cast<unsigned char>(line[1])) &&
                 std::isdigit(static_cast<unsigned char>(line[2]));
  return numeric && (line.size() == 3 || line[3] == ' ');
}

// The tag a reply to `sent` would carry: its first word, when more follows on the line.
std::string tag_of(const std::string& sent) {
  auto space = sent.find(' ');
  if (space == std::string::npos || space == 0 || space > 32) return {};
  std::string word = sent.substr(0, space);
  for (char c : word)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') return {};
  return word;
}

// The lines of one reply an expect has read without a match: bounded in bytes, the oldest
// dropped first (they were already tried one by one).
class Reply {
 public:
  void add(std::string line) {
    ++count_;
    bytes_ += line.size();
    lines_.push_back(std::move(line));
    while (bytes_ > kKeptBytes && lines_.size() > 1) {
      bytes_ -= lines_.front().size();
      lines_.pop_front();
    }
  }
  [[nodiscard]] bool empty() const { return count_ == 0; }
  [[nodiscard]] std::string joined() const {
    std::string out;
    for (const auto& l : lines_) out += l + "\r\n";
    return out;
  }
  [[nodiscard]] const std::string& last() const { return lines_.back(); }
  // "\"a\"" or "3 lines: \"a\" \"b\" \"c\"", the last few, each cut short.
  [[nodiscard]] std::string shown() const {
    if (count_ == 1) return "\"" + str::printable(lines_.back()) + "\"";
    std::string out = std::to_string(count_) + " lines";
    size_t from = lines_.size() > kShownLines ? lines_.size() - kShownLines : 0;
    out += from > 0 || count_ > lines_.size() ? ", the last " + std::to_string(kShownLines) + ":"
                                              : ":";
    for (size_t i = from; i < lines_.size(); ++i) out += " \"" + str::printable(lines_[i]) + "\"";
    return out;
  }

 private:
  static constexpr size_t kKeptBytes = 64 * 1024;
  static constexpr size_t kShownLines = 5;
  std::deque<std::string> lines_;
  size_t bytes_ = 0;
  size_t count_ = 0;
};

// Reads the server's reply line by line until one line (or, once the reply has ended, all of
// it) matches. Without `within N bytes` a mismatch fails as soon as the reply has ended: a
// tagged or final numeric line, a close, or a short silence after the last bytes.
Task<void> expect(Connection& conn, const config::Step& step, Captures& captures,
                  const std::string& tag) {
  const std::string shown = "\"" + str::printable(step.regex.source) + "\"";
  const bool within = step.max_bytes > 0;
  Reply reply;
  size_t read = 0;
  auto mismatch = [&] {
    return ProbeError(FailureClass::content, "expected " + shown + ", got " + reply.shown(),
                      reply.last());
  };
  for (;;) {
    auto got = co_await conn.read_line_until_quiet(kQuietMs, !within && !reply.empty());
    using Kind = Connection::Received::Kind;
    if (got.kind == Kind::closed) {
      if (!reply.empty() && matches(step.regex, reply.joined(), captures)) co_return;
      if (reply.empty() || within)
        throw ProbeError(FailureClass::protocol,
                         "server closed the connection before a line matching " + shown +
                             (reply.empty() ? "" : " (received " + reply.shown() + ")"));
      throw mismatch();
    }
    bool ended = got.kind == Kind::quiet;
    if (!got.text.empty()) {
      if (matches(step.regex, got.text, captures)) co_return;
      read += got.text.size() + 2;
      ended = ended || ends_reply(got.text, tag);
      reply.add(std::move(got.text));
    }
    if (within) {
      if (read >= step.max_bytes)
        throw ProbeError(FailureClass::content,
                         "no line matching " + shown + " within " + std::to_string(step.max_bytes) +
                             " bytes (last line: \"" + str::printable(reply.last()) + "\")",
                         reply.last());
      continue;
    }
    if (!ended || reply.empty()) continue;
    if (matches(step.regex, reply.joined(), captures)) co_return;
    throw mismatch();
  }
}

}  // namespace

Task<void> generic_dialogue(Probe& probe) {
  Captures captures;
  std::string tag;
  for (const auto& step : probe.options().steps) {
    // (if/else rather than a switch: each co_await stays a plain statement, see net/task.h)
    if (step.kind == config::Step::Kind::send) {
      std::string text = fill_in(step, captures);
      tag = tag_of(text);
      probe.conn().send(text);
    } else if (step.kind == config::Step::Kind::expect) {
      co_await expect(probe.conn(), step, captures, tag);
    } else {
      co_await probe.starttls();
    }
  }
}

}  // namespace mw::protocols
