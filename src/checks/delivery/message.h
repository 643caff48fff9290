// The delivery probe message: a unique token, the message that carries it, and the comparison
// that tells a delivered probe from one that arrived altered.
#pragma once

#include <ctime>
#include <string>

namespace mw::checks::delivery {

// The header that carries the token (searched for on the receiving side).
inline constexpr const char* kTokenHeader = "X-Mailwarden-Probe";

// 32 random bytes as 64 lower-case hex digits.
[[nodiscard]] std::string new_token();

// The body: fixed text around the token, including a line that starts with a dot (so that
// broken dot-stuffing shows as an alteration). Lines end in CRLF.
[[nodiscard]] std::string probe_body(const std::string& token);

// The whole message with its headers (From, To, Subject, Date, Message-ID, the token header).
[[nodiscard]] std::string probe_message(const std::string& from, const std::string& to,
                                        const std::string& token, time_t now);

// Why `received` is not the probe with `token`, or empty when it is: the token header must be
// there and the body must be the one sent (line ends and trailing blanks aside). Headers the
// servers add on the way (Received, Return-Path, Delivered-To) are expected.
[[nodiscard]] std::string alteration(const std::string& received, const std::string& token);

// The name of the probe as a file (drop directories, FTP): "mailwarden-TOKEN.eml".
[[nodiscard]] std::string probe_file_name(const std::string& token);

// The probe as one IRC message: "mailwarden delivery probe TOKEN".
[[nodiscard]] std::string irc_probe_line(const std::string& token);

// True when `text` carries `token` in its token header (a cheap test for files and POP).
[[nodiscard]] bool carries_token(const std::string& text, const std::string& token);

}  // namespace mw::checks::delivery
