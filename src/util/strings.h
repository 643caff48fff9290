// Small string helpers shared by the parser, the protocols and the CLI.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mw::str {

[[nodiscard]] std::string lower(std::string_view s);
[[nodiscard]] std::string upper(std::string_view s);
[[nodiscard]] bool iequals(std::string_view a, std::string_view b);
[[nodiscard]] bool istarts_with(std::string_view s, std::string_view prefix);
[[nodiscard]] std::string_view trim(std::string_view s);
[[nodiscard]] std::vector<std::string> split_ws(std::string_view s);
[[nodiscard]] std::string join(const std::vector<std::string>& parts, std::string_view sep);
// Printable, bounded rendering of a server line for messages: always valid UTF-8; control bytes
// and invalid sequences escaped as \xHH, C1 controls and bidi overrides as \uHHHH; cut at max.
[[nodiscard]] std::string printable(std::string_view s, size_t max = 200);
// The first character of `s` that must not reach a terminal or a log line as it is (a C0 or C1
// control, DEL, a bidi override, a byte that is not UTF-8), shown escaped; nullopt when none.
[[nodiscard]] std::optional<std::string> unsafe_character(std::string_view s);
// The length of the C1 control or bidi character encoded at s[i], or 0 when there is none.
[[nodiscard]] size_t steering_length(std::string_view s, size_t i);
[[nodiscard]] size_t edit_distance(std::string_view a, std::string_view b);
[[nodiscard]] std::string base64_encode(std::string_view in);
[[nodiscard]] bool base64_decode(std::string_view in, std::string& out);
[[nodiscard]] std::string hex(const unsigned char* data, size_t len);
// A quoted IMAP/monit-style string: backslash and double quote escaped.
[[nodiscard]] std::string quote(std::string_view s);

}  // namespace mw::str
