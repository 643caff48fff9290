#include "checks/delivery/message.h"

#include <openssl/rand.h>

#include <stdexcept>
#include <vector>

#include "util/clock.h"
#include "util/strings.h"

namespace mw::checks::delivery {
namespace {

// Lines without their line ends; trailing white space and trailing empty lines dropped, so
// that the transports' CRLF/LF conversions and padding do not count as alterations.
std::vector<std::string> normalized_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    out.push_back(std::move(line));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// Splits at the first empty line: the header block and the body.
void split_message(const std::string& text, std::string& headers, std::string& body) {
  size_t crlf = text.find("\r\n\r\n");
  size_t lf = text.find("\n\n");
  size_t cut = std::string::npos, skip = 0;
  if (crlf != std::string::npos && (lf == std::string::npos || crlf < lf)) {
    cut = crlf;
    skip = 4;
  } else if (lf != std::string::npos) {
    cut = lf;
    skip = 2;
  }
  if (cut == std::string::npos) {
    headers = text;
    body.clear();
    return;
  }
  headers = text.substr(0, cut);
  body = text.substr(cut + skip);
}

// The values of header `name` (unfolded), case-insensitively.
std::vector<std::string> header_values(const std::string& headers, const std::string& name) {
  std::vector<std::string> out;
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= headers.size()) {
    size_t nl = headers.find('\n', start);
    std::string line =
        headers.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !lines.empty()) {
      lines.back() += " " + std::string(str::trim(line));
    } else {
      lines.push_back(line);
    }
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  for (const auto& l : lines) {
    auto colon = l.find(':');
    if (colon == std::string::npos) continue;
    if (str::iequals(str::trim(std::string_view(l).substr(0, colon)), name))
      out.emplace_back(str::trim(std::string_view(l).substr(colon + 1)));
  }
  return out;
}

}  // namespace

std::string new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    throw std::runtime_error("cannot draw random bytes for the probe token");
  return str::hex(bytes, sizeof bytes);
}

std::string probe_body(const std::string& token) {
  return "This message was sent by mailwarden to check that mail is delivered.\r\n"
         "It is deleted as soon as it has been found.\r\n"
         "\r\n"
         "probe " +
         token +
         "\r\n"
         ".a line that starts with a dot\r\n";
}

std::string probe_message(const std::string& from, const std::string& to, const std::string& token,
                          time_t now) {
  return "From: <" + from + ">\r\nTo: <" + to + ">\r\nSubject: mailwarden delivery probe " +
         token.substr(0, 16) + "\r\nDate: " + clock::format_rfc5322(now) + "\r\nMessage-ID: <" +
         token + "@mailwarden.invalid>\r\n" + kTokenHeader + ": " + token +
         "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
         probe_body(token);
}

std::string probe_file_name(const std::string& token) {
  return "mailwarden-" + token + ".eml";
}

std::string irc_probe_line(const std::string& token) {
  return "mailwarden delivery probe " + token;
}

bool carries_token(const std::string& text, const std::string& token) {
  std::string headers, body;
  split_message(text, headers, body);
  for (const auto& v : header_values(headers, kTokenHeader))
    if (v == token) return true;
  return false;
}

std::string alteration(const std::string& received, const std::string& token) {
  std::string headers, body;
  split_message(received, headers, body);
  auto values = header_values(headers, kTokenHeader);
  if (values.empty()) return std::string("its ") + kTokenHeader + " header is missing";
  if (values.size() > 1 || values[0] != token)
    return std::string("its ") + kTokenHeader + " header was changed";
  auto want = normalized_lines(probe_body(token));
  auto got = normalized_lines(body);
  for (size_t i = 0; i < want.size() || i < got.size(); ++i) {
    if (i >= got.size())
      return "its body is cut short after line " + std::to_string(got.size()) + " of " +
             std::to_string(want.size());
    if (i >= want.size())
      return "its body has " + std::to_string(got.size() - want.size()) +
             " more line(s) than was sent, from line " + std::to_string(i + 1) + ": \"" +
             str::printable(got[i], 80) + "\"";
    if (got[i] != want[i])
      return "body line " + std::to_string(i + 1) + " is \"" + str::printable(got[i], 80) +
             "\" instead of \"" + str::printable(want[i], 80) + "\"";
  }
  return {};
}

}  // namespace mw::checks::delivery
