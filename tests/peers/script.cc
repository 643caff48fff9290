// Parser of the scripted-peer language; see README.md for the language itself.
#include "script.h"

#include <cctype>
#include <limits>
#include <stdexcept>
#include <string_view>

#include "testcerts.h"

namespace mwtest::peerimpl {
namespace {

[[noreturn]] void script_error(int line, const std::string& msg) {
  throw std::runtime_error("script:" + std::to_string(line) + ": " + msg);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_literal(Template& t, char c) {
  if (t.empty() || t.back().group >= 0) t.push_back(Piece{});
  t.back().literal += c;
}

// Splits one script line into tokens; every method throws script_error on bad input.
class LineLexer {
 public:
  LineLexer(std::string_view text, int line) : s_(text), line_(line) {}

  [[noreturn]] void error(const std::string& msg) const { script_error(line_, msg); }

  // True at the end of the line or at a comment.
  bool at_end() {
    skip_space();
    return pos_ >= s_.size() || s_[pos_] == '#';
  }

  void expect_end() {
    if (!at_end()) error("unexpected '" + std::string(s_.substr(pos_)) + "'");
  }

  bool next_is(char c) { return !at_end() && s_[pos_] == c; }

  std::string word(const char* what) {
    if (at_end()) error(std::string("missing ") + what);
    size_t start = pos_;
    while (pos_ < s_.size() && !std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  uint64_t number(const char* what) {
    std::string w = word(what);
    uint64_t value = 0;
    for (char c : w) {
      if (c < '0' || c > '9')
        error(std::string("expected a number for ") + what + ", got '" + w + "'");
      uint64_t digit = static_cast<uint64_t>(c - '0');
      if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) error("number too large");
      value = value * 10 + digit;
    }
    return value;
  }

  Template quoted() {
    if (!next_is('"')) error("expected a double-quoted string");
    ++pos_;
    Template t;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return t;
      if (c == '\\') {
        append_literal(t, escape());
      } else if (c == '$') {
        t.push_back(Piece{{}, capture_ref()});
      } else {
        append_literal(t, c);
      }
    }
    error("unterminated string");
  }

  // "/source/flags": returns the regex and sets as_written to the token as it appeared.
  std::shared_ptr<const std::regex> regex(std::string& as_written) {
    if (!next_is('/')) error("expected /regex/ or 'any'");
    size_t start = pos_++;
    std::string source;
    for (;;) {
      if (pos_ >= s_.size()) error("unterminated /regex/");
      char c = s_[pos_++];
      if (c == '/') break;
      if (c == '\\' && pos_ < s_.size()) {  // keep escapes, except that "\/" becomes "/"
        char next = s_[pos_++];
        if (next != '/') source += c;
        c = next;
      }
      source += c;
    }
    auto flags = std::regex::ECMAScript;
    while (pos_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[pos_]))) {
      char f = s_[pos_++];
      if (f != 'i') error(std::string("unknown regex flag '") + f + "' (only i is supported)");
      flags |= std::regex::icase;
    }
    as_written = std::string(s_.substr(start, pos_ - start));
    try {
      return std::make_shared<const std::regex>(source, flags);
    } catch (const std::regex_error& e) {
      error("bad regex " + as_written + ": " + e.what());
    }
  }

 private:
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }

  char escape() {
    if (pos_ >= s_.size()) error("unterminated string");
    char c = s_[pos_++];
    switch (c) {
      case 'r':
        return '\r';
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case '\\':
      case '"':
      case '$':
        return c;
      case 'x': {
        int hi = pos_ < s_.size() ? hex_digit(s_[pos_]) : -1;
        int lo = pos_ + 1 < s_.size() ? hex_digit(s_[pos_ + 1]) : -1;
        if (hi < 0 || lo < 0) error("\\x needs two hex digits");
        pos_ += 2;
        return static_cast<char>(hi * 16 + lo);
      }
      default:
        error(std::string("unknown escape \\") + c);
    }
  }

  int capture_ref() {
    if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      error("'$' must be followed by a digit 0-9 (write \\$ for a dollar sign)");
    }
    return s_[pos_++] - '0';
  }

  std::string_view s_;
  size_t pos_ = 0;
  int line_;
};

struct OpName {
  std::string_view name;
  Op op;
};

// A constant table rather than a lazily built map, so that parsing allocates nothing that
// outlives the parse (CppUTest's leak checker would blame the first test otherwise).
constexpr OpName kOpNames[] = {
    {"tls", Op::kTls},
    {"send", Op::kSend},
    {"sendline", Op::kSend},
    {"expect", Op::kExpect},
    {"expect-optional", Op::kExpect},
    {"sleep", Op::kSleep},
    {"starttls", Op::kStartTls},
    {"close", Op::kClose},
    {"close-dirty", Op::kCloseDirty},
    {"reset", Op::kReset},
    {"hang", Op::kHang},
    {"repeat", Op::kRepeat},
    {"drain", Op::kDrain},
    {"garbage", Op::kGarbage},
};

const OpName* find_op(std::string_view name) {
  for (const auto& entry : kOpNames) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

bool ends_connection(Op op) {
  return op == Op::kClose || op == Op::kCloseDirty || op == Op::kReset || op == Op::kHang ||
         op == Op::kDrain;
}

std::string cert_name(LineLexer& lex) {
  std::string name = lex.word("certificate name");
  if (!TestCerts::is_leaf_name(name)) {
    std::string known;
    for (auto n : TestCerts::kLeafNames) (known += known.empty() ? "" : "|") += n;
    lex.error("unknown certificate '" + name + "' (known: " + known + ")");
  }
  return name;
}

void parse_expect(LineLexer& lex, Command& cmd) {
  if (lex.next_is('/')) {
    cmd.regex = lex.regex(cmd.arg);
  } else if (lex.word("/regex/ or 'any'") == "any") {
    cmd.arg = "any";
  } else {
    lex.error("expected /regex/ or 'any'");
  }
}

// Parses the arguments of the command named `name` into cmd.
void parse_arguments(LineLexer& lex, const std::string& name, Command& cmd) {
  switch (cmd.op) {
    case Op::kTls:
    case Op::kStartTls:
      cmd.arg = cert_name(lex);
      break;
    case Op::kSend:
      cmd.text = lex.quoted();
      if (name == "sendline") cmd.text.push_back(Piece{"\r\n"});
      break;
    case Op::kExpect:
      cmd.optional = name == "expect-optional";
      parse_expect(lex, cmd);
      break;
    case Op::kSleep:
      cmd.count = lex.number("milliseconds");
      break;
    case Op::kRepeat:
      cmd.count = lex.number("count");
      cmd.text = lex.quoted();
      if (cmd.text.empty()) lex.error("repeat needs a non-empty string");
      break;
    case Op::kGarbage:
      cmd.count = lex.number("byte count");
      cmd.seed = lex.at_end() ? 0x6d61696cULL : lex.number("seed");
      break;
    default:
      break;  // no arguments
  }
  lex.expect_end();
}

// Checks the rules that involve more than one line.
class Validator {
 public:
  void check(const Command& cmd, bool first) {
    if (end_line_) {
      script_error(cmd.line, "unreachable: the connection already ended on line " +
                                 std::to_string(end_line_));
    }
    if (cmd.op == Op::kTls && !first) {
      script_error(cmd.line, "tls must be the first command (use starttls to upgrade later)");
    }
    if ((cmd.op == Op::kTls || cmd.op == Op::kStartTls) && tls_line_) {
      script_error(cmd.line,
                   "the connection is already TLS since line " + std::to_string(tls_line_));
    }
    if (cmd.op == Op::kTls || cmd.op == Op::kStartTls) tls_line_ = cmd.line;
    if (ends_connection(cmd.op)) end_line_ = cmd.line;
  }

 private:
  int tls_line_ = 0;
  int end_line_ = 0;
};

}  // namespace

std::vector<Command> parse_script(const std::string& text) {
  std::vector<Command> script;
  Validator validator;
  size_t start = 0;
  for (int line = 1; start <= text.size(); ++line) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view row(text.data() + start, end - start);
    start = end + 1;

    LineLexer lex(row, line);
    if (lex.at_end()) continue;
    std::string name = lex.word("command");
    const OpName* op = find_op(name);
    if (!op) lex.error("unknown command '" + name + "'");
    Command cmd;
    cmd.op = op->op;
    cmd.line = line;
    parse_arguments(lex, name, cmd);
    validator.check(cmd, script.empty());
    script.push_back(std::move(cmd));
  }
  return script;
}

std::string describe_expect(const Command& cmd) {
  return cmd.arg;
}

std::string render(const Template& text, const std::vector<std::string>& groups) {
  std::string out;
  for (const auto& piece : text) {
    if (piece.group < 0) {
      out += piece.literal;
    } else if (static_cast<size_t>(piece.group) < groups.size()) {
      out += groups[static_cast<size_t>(piece.group)];
    }
  }
  return out;
}

bool uses_tls(const std::vector<Command>& script) {
  for (const auto& cmd : script) {
    if (cmd.op == Op::kTls || cmd.op == Op::kStartTls) return true;
  }
  return false;
}

}  // namespace mwtest::peerimpl
