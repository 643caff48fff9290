#include "config/lexer.h"

#include <cctype>
#include <set>
#include <string_view>

#include "util/strings.h"

namespace mw::config {
namespace {

const std::set<std::string>& noise_words() {
  static const std::set<std::string> words = {"with", "and",  "has", "using", "use",
                                              "is",   "as",   "are", "on",    "only",
                                              "the",  "than", "was", "of",    "to"};
  return words;
}

// Characters that end a word. Parentheses, '!' and an apostrophe inside a word are word
// characters, so that free text (a mail-format message, "don't") needs no quoting.
bool is_word_char(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (std::isspace(u)) return false;
  switch (c) {
    case '{':
    case '}':
    case ',':
    case '"':
    case '#':
    case '<':
    case '>':
    case '=':
      return false;
    default:
      return u >= 0x21;
  }
}

class Lexer {
 public:
  Lexer(const std::string& file, const std::string& text, Diagnostics& diags, size_t max_tokens)
      : file_(file), text_(text), diags_(diags), max_tokens_(max_tokens) {}

  // Counts the tokens only (no diagnostics, nothing kept): the first pass, so that the
  // second one fills a vector of exactly the right size. A large file's tokens then live in one
  // block that goes back to the system when the parser is done with them, instead of growing
  // by doubling (three times their size at once) or in pieces that stay in the heap.
  size_t count() {
    Diagnostics scratch;
    Lexer quiet(file_, text_, scratch, max_tokens_);
    quiet.counting_ = true;
    std::vector<Token> none;
    quiet.run_into(none);
    return quiet.counted_;
  }

  std::vector<Token> run() {
    std::vector<Token> out;
    out.reserve(count());
    run_into(out);
    return out;
  }

 private:
  void emit(std::vector<Token>& out, Token&& t) {
    ++counted_;
    if (!counting_) out.push_back(std::move(t));
  }

  void run_into(std::vector<Token>& out) {
    for (;;) {
      skip_space_and_comments();
      Token t;
      t.where = here();
      if (counted_ >= max_tokens_ && pos_ < text_.size()) {
        // What the parser keeps is bounded, not only what it reads.
        diags_.error(t.where, "more than " + std::to_string(max_tokens_) +
                                  " words and symbols in the control files; split them up or "
                                  "remove what is not needed");
        pos_ = text_.size();
      }
      if (pos_ >= text_.size()) {
        t.kind = Token::Kind::end;
        emit(out, std::move(t));
        return;
      }
      char c = text_[pos_];
      if (c == '{' || c == '}' || c == ',') {
        t.kind = c == '{'   ? Token::Kind::lbrace
                 : c == '}' ? Token::Kind::rbrace
                            : Token::Kind::comma;
        t.text = std::string(1, c);
        advance();
      } else if (c == '"' || c == '\'') {
        if (!read_string(t)) continue;
      } else if (c == '<' || c == '>' || c == '=' ||
                 (c == '!' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '=')) {
        t.kind = Token::Kind::op;
        t.text = std::string(1, c);
        advance();
        if (pos_ < text_.size() && text_[pos_] == '=') {
          t.text += '=';
          advance();
        }
      } else if (size_t bad = steering_length(); bad > 0) {
        diags_.error(t.where, "unexpected character " + str::printable(text_.substr(pos_, bad)) +
                                  " (control and bidi characters are not allowed)");
        for (size_t k = 0; k < bad; ++k) advance();
        continue;
      } else if (!is_word_char(c)) {
        // A control byte: no token starts with it. Reported and skipped, so that the lexer
        // always moves on (an empty word here would never advance).
        diags_.error(t.where, "unexpected character " + str::printable(std::string(1, c)) +
                                  " (control characters belong in quoted strings as escapes)");
        advance();
        continue;
      } else {
        bool trailing_colon = read_word(t);
        bool noise = t.kind == Token::Kind::word && noise_words().count(str::lower(t.text));
        Location colon_at = t.where;
        colon_at.col += static_cast<int>(t.text.size());
        if (!noise) emit(out, std::move(t));
        if (trailing_colon) emit(out, Token{Token::Kind::colon, ":", 0, colon_at, 0});
        continue;
      }
      emit(out, std::move(t));
    }
  }

  Location here() const { return Location{file_, line_, col_}; }

  // The length of a C1 control or bidi character starting at pos_, or 0: such characters would
  // reach terminals and log lines wherever the value is printed.
  size_t steering_length() const { return str::steering_length(text_, pos_); }

  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++pos_;
  }

  void skip_space_and_comments() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') advance();
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        advance();
      } else {
        break;
      }
    }
  }

  // Strings keep their backslash escapes; the parser resolves them for the context (a send
  // string turns \r\n into bytes, a regex keeps \d). Only the quote itself is unescaped here.
  bool read_string(Token& t) {
    char quote = text_[pos_];
    t.kind = Token::Kind::string;
    advance();
    std::string value;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_];
      if (c == '\n') break;
      unsigned char u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f || steering_length() > 0) {
        // A CR, ESC or BEL in a name or message would split or forge the lines it is printed on.
        size_t n = u < 0x80 ? 1 : steering_length();
        Location at = here();
        diags_.error(at, "control character " + str::printable(text_.substr(pos_, n)) +
                             " in a quoted string (write \\r, \\n, \\xHH where a send "
                             "string needs one)");
        for (size_t k = 0; k < n; ++k) advance();
        continue;
      }
      if (c == '\\' && pos_ + 1 < text_.size()) {
        char next = text_[pos_ + 1];
        if (next == quote) {
          value += next;
          advance();
          advance();
          continue;
        }
        value += c;
        value += next;
        advance();
        advance();
        continue;
      }
      value += c;
      advance();
    }
    if (pos_ >= text_.size() || text_[pos_] != quote) {
      diags_.error(t.where, std::string("unterminated string: a ") + quote +
                                " opened here is not closed on the same line");
      return false;
    }
    advance();
    t.text = std::move(value);
    return true;
  }

  // Returns true when a trailing colon was split off the word.
  bool read_word(Token& t) {
    size_t start = pos_;
    while (pos_ < text_.size() && is_word_char(text_[pos_]) && steering_length() == 0) advance();
    std::string word = text_.substr(start, pos_ - start);
    // "verify:" and "subject:" end in a colon that belongs to the block syntax, while "::1" and
    // "imaps://host:993" keep theirs: a trailing colon is split off.
    bool colon = false;
    if (word.size() > 1 && word.back() == ':' && word[word.size() - 2] != ':') {
      word.pop_back();
      t.kind = Token::Kind::word;
      t.text = word;
      colon = true;
    } else if (word == ":") {
      t.kind = Token::Kind::colon;
      t.text = word;
      return false;
    } else {
      t.kind = Token::Kind::word;
      t.text = word;
    }
    bool digits = !word.empty();
    for (char c : word) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    if (digits) {
      t.kind = word.size() > 12 ? Token::Kind::word : Token::Kind::number;
      if (t.kind == Token::Kind::number) t.number = std::stoll(word);
    }
    return colon;
  }

  FileName file_;
  const std::string& text_;
  Diagnostics& diags_;
  size_t max_tokens_;
  bool counting_ = false;
  size_t counted_ = 0;
  size_t pos_ = 0;
  int line_ = 1;
  int col_ = 1;
};

}  // namespace

const char* token_kind_name(Token::Kind k) {
  switch (k) {
    case Token::Kind::word:
      return "word";
    case Token::Kind::number:
      return "number";
    case Token::Kind::string:
      return "string";
    case Token::Kind::lbrace:
      return "'{'";
    case Token::Kind::rbrace:
      return "'}'";
    case Token::Kind::comma:
      return "','";
    case Token::Kind::colon:
      return "':'";
    case Token::Kind::op:
      return "operator";
    case Token::Kind::end:
      return "end of file";
  }
  return "token";
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Token::Kind::end:
      return "end of file";
    case Token::Kind::string:
      return "\"" + str::printable(t.text, 60) + "\"";
    default:
      return "'" + str::printable(t.text, 60) + "'";
  }
}

std::string unescape_plain(const std::string& raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == '\\') ++i;
    out += raw[i];
  }
  return out;
}

bool unescape_send(const std::string& raw, std::string& out, std::string& error) {
  out.clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i + 1 >= raw.size()) {
      error = "a backslash ends the string";
      return false;
    }
    char e = raw[++i];
    switch (e) {
      case 'r':
        out += '\r';
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '\\':
        out += '\\';
        break;
      case '"':
        out += '"';
        break;
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7':
      case '8':
      case '9':
        // \1..\9 refer to captures of the last expect; kept for the dialogue to fill in.
        out += '\\';
        out += e;
        break;
      case 'x': {
        if (i + 2 >= raw.size() || !std::isxdigit(static_cast<unsigned char>(raw[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
          error = "\\x must be followed by two hex digits";
          return false;
        }
        out += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
        i += 2;
        break;
      }
      default:
        error = std::string("unknown escape \\") + e + " (use \\r \\n \\t \\\\ \\xHH)";
        return false;
    }
  }
  return true;
}

std::vector<Token> lex(const std::string& file, const std::string& text, Diagnostics& diags,
                       size_t max_tokens) {
  return Lexer(file, text, diags, max_tokens).run();
}

}  // namespace mw::config
