// Tokens of the control file language. Hand-written: words (keywords, names, paths, addresses),
// numbers, quoted strings, punctuation and comparison operators; '#' starts a comment. Noise
// words (with, and, has, using, ...) are dropped here, as monit does, so "with timeout 5
// seconds" and "timeout 5 seconds" read the same.
#pragma once

#include <string>
#include <vector>

#include "config/diagnostics.h"
#include "config/model.h"

namespace mw::config {

struct Token {
  enum class Kind { word, number, string, lbrace, rbrace, comma, colon, op, end };
  Kind kind = Kind::end;
  std::string text;  // words and operators as written; strings without quotes, escapes kept
  long long number = 0;
  Location where;
  // Which include put this token in the stream (the parser's table; 0: the control file), so
  // that an include cycle is found even though includes are spliced in as tokens.
  int origin = 0;
};

[[nodiscard]] const char* token_kind_name(Token::Kind k);
// How a token is shown in messages: 'word', "string", end of file.
[[nodiscard]] std::string describe(const Token& t);

// A string as a plain value (path, name, password): "\\" becomes one backslash, other
// backslashes stay as written.
[[nodiscard]] std::string unescape_plain(const std::string& raw);
// A string that is sent to a server: \r \n \t \\ \xHH become bytes. Returns false on a bad
// escape, with `error` naming it.
[[nodiscard]] bool unescape_send(const std::string& raw, std::string& out, std::string& error);

// Splits `text` (the content of `file`) into tokens; errors go to `diags`. The last token is
// always Kind::end.
[[nodiscard]] std::vector<Token> lex(const std::string& file, const std::string& text,
                                     Diagnostics& diags);

}  // namespace mw::config
