#include "actions/mail_message.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "util/clock.h"
#include "util/strings.h"

namespace mw::actions::mail {

const char* const kDefaultFrom = "mailwarden@$HOST";
const char* const kDefaultSubject = "mailwarden alert --  $EVENT $SERVICE";
const char* const kDefaultMessage =
    "$EVENT Service $SERVICE\n"
    "\n"
    "        Date:        $DATE\n"
    "        Action:      $ACTION\n"
    "        Host:        $HOST\n"
    "        Description: $DESCRIPTION\n"
    "\n"
    "Your faithful employee,\n"
    "mailwarden\n";

namespace {

constexpr size_t kFoldAt = 78;        // RFC 5322: lines SHOULD stay within 78 bytes
constexpr size_t kLongestWord = 900;  // longer runs without a space are encoded (and so split)
constexpr size_t kEncodedChunk = 36;  // bytes per encoded-word: 48 base64 chars, 60 in all
constexpr size_t kMaxLine = 998;      // RFC 5322: lines MUST stay within 998 bytes
constexpr size_t kQpLine = 75;        // quoted-printable: 76 with the soft break's "="

bool is_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

// Control bytes (CR and LF included) become spaces: a header stays one header.
std::string one_line(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  return out;
}

bool is_address_header(const std::string& name) {
  return str::iequals(name, "From") || str::iequals(name, "To") || str::iequals(name, "Reply-To");
}

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> words;
  size_t start = 0;
  for (;;) {
    size_t sp = s.find(' ', start);
    words.push_back(s.substr(start, sp == std::string::npos ? std::string::npos : sp - start));
    if (sp == std::string::npos) return words;
    start = sp + 1;
  }
}

// "Name: w1 w2 ...", folded before a word that would pass 78 bytes. Folding replaces one of the
// spaces between words, so unfolding gives the value back exactly.
std::string fold(const std::string& name, const std::vector<std::string>& words) {
  std::string out = name + ":";
  size_t line = out.size();
  for (const auto& w : words) {
    if (line + 1 + w.size() > kFoldAt && !w.empty() && line > name.size() + 1) {
      out += "\r\n";
      line = 0;
    }
    out += " " + w;
    line += 1 + w.size();
  }
  return out;
}

// RFC 2047 B encoded-words, each whole UTF-8 characters only.
std::vector<std::string> encoded_words(const std::string& text) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size()) {
    size_t n = std::min(kEncodedChunk, text.size() - i);
    // Never split a character: back off while the next byte is a continuation byte.
    while (n > 1 && i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80)
      --n;
    words.push_back("=?UTF-8?B?" + str::base64_encode(text.substr(i, n)) + "?=");
    i += n;
  }
  if (words.empty()) words.push_back("");
  return words;
}

// A display name with characters that have a meaning in an address goes in quotes.
std::string quote_display_name(const std::string& value) {
  auto open = value.rfind('<');
  if (open == std::string::npos || value.back() != '>') return value;
  std::string name(str::trim(value.substr(0, open)));
  if (name.empty() || name.front() == '"') return value;
  if (name.find_first_of("()<>[]:;@\\,.\"") == std::string::npos) return value;
  return str::quote(name) + " " + value.substr(open);
}

}  // namespace

std::string expand(const std::string& text, const Variables& v) {
  const std::pair<const char*, const std::string*> vars[] = {
      {"EVENT", &v.event}, {"SERVICE", &v.service},         {"DATE", &v.date},
      {"HOST", &v.host},   {"DESCRIPTION", &v.description}, {"ACTION", &v.action}};
  std::string out;
  out.reserve(text.size() + 128);
  for (size_t i = 0; i < text.size(); ++i) {
    bool replaced = false;
    if (text[i] == '$') {
      for (const auto& [name, value] : vars) {
        size_t len = strlen(name);
        if (text.compare(i + 1, len, name) == 0) {
          out += *value;
          i += len;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += text[i];
  }
  return out;
}

Parts compose(const config::MailFormat& global, const config::AlertRecipient& to,
              const Variables& v, const std::string& date, const std::string& message_id) {
  auto pick = [](const std::optional<std::string>& own, const std::optional<std::string>& all,
                 const char* fallback) -> std::string {
    if (own) return *own;
    if (all) return *all;
    return fallback;
  };
  Parts p;
  p.from = expand(pick(to.format.from, global.from, kDefaultFrom), v);
  p.to = to.address;
  p.reply_to = expand(pick(to.format.reply_to, global.reply_to, ""), v);
  p.subject = expand(pick(to.format.subject, global.subject, kDefaultSubject), v);
  p.body = expand(pick(to.format.message, global.message, kDefaultMessage), v);
  p.date = date;
  p.message_id = message_id;
  return p;
}

std::string header(const std::string& name, const std::string& raw) {
  std::string value = one_line(raw);
  if (is_address_header(name)) {
    if (is_ascii(value)) return fold(name, split_spaces(quote_display_name(value)));
    // A non-ASCII display name is encoded; the address itself must be ASCII (no SMTPUTF8).
    auto open = value.rfind('<');
    std::string address = open == std::string::npos ? address_of(value) : value.substr(open);
    std::string display(str::trim(open == std::string::npos ? "" : value.substr(0, open)));
    if (display.size() >= 2 && display.front() == '"' && display.back() == '"')
      display = display.substr(1, display.size() - 2);
    for (char& c : address)
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
    auto words = display.empty() ? std::vector<std::string>{} : encoded_words(display);
    words.push_back(address);
    return fold(name, words);
  }
  auto words = split_spaces(value);
  bool long_word = false;
  for (const auto& w : words) long_word = long_word || w.size() > kLongestWord;
  if (is_ascii(value) && !long_word) return fold(name, words);
  return fold(name, encoded_words(value));
}

std::string quoted_printable(const std::string& text) {
  std::string out;
  size_t start = 0;
  static const char* hex = "0123456789ABCDEF";
  while (start < text.size()) {
    size_t end = text.find("\r\n", start);
    if (end == std::string::npos) end = text.size();
    size_t line = 0;
    for (size_t i = start; i < end; ++i) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      bool last = i + 1 == end;
      std::string enc;
      if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
        enc = std::string(1, static_cast<char>(c));
      } else {
        enc = {'=', hex[c >> 4], hex[c & 15]};
      }
      if (line + enc.size() > kQpLine) {
        out += "=\r\n";
        line = 0;
      }
      out += enc;
      line += enc.size();
    }
    out += "\r\n";
    start = end + 2;
  }
  return out;
}

std::string build(const Parts& p) {
  // The body with CRLF line ends, ending in one.
  std::string body;
  bool seven_bit = true;
  size_t start = 0;
  while (start < p.body.size()) {
    size_t nl = p.body.find('\n', start);
    std::string line =
        p.body.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > kMaxLine) seven_bit = false;
    for (unsigned char c : line)
      if ((c < 0x20 && c != '\t') || c >= 0x7f) seven_bit = false;
    body += line + "\r\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::string m;
  auto add = [&m](const std::string& name, const std::string& value) {
    m += header(name, value) + "\r\n";
  };
  add("Date", p.date);
  add("From", p.from);
  add("To", p.to);
  if (!p.reply_to.empty()) add("Reply-To", p.reply_to);
  add("Subject", p.subject);
  add("Message-ID", p.message_id);
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=UTF-8\r\n";
  m += std::string("Content-Transfer-Encoding: ") + (seven_bit ? "7bit" : "quoted-printable") +
       "\r\n";
  m += "Auto-Submitted: auto-generated\r\n";  // RFC 3834: no vacation replies to alerts
  m += "\r\n";
  m += seven_bit ? body : quoted_printable(body);
  return m;
}

std::string rfc5322_date(time_t t) {
  return clock::format_rfc5322(t);
}

std::string new_message_id(const std::string& host) {
  static std::atomic<uint64_t> counter{0};
  static const uint32_t salt = std::random_device{}();
  std::string domain;
  for (char c : host)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') domain += c;
  if (domain.empty()) domain = "localhost";
  char buf[96];
  snprintf(buf, sizeof buf, "<%lld.%d.%llu.%08x@", static_cast<long long>(time(nullptr)),
           static_cast<int>(getpid()), static_cast<unsigned long long>(++counter), salt);
  return buf + domain + ">";
}

std::string address_of(const std::string& value) {
  auto open = value.rfind('<');
  auto close = value.rfind('>');
  if (open != std::string::npos && close != std::string::npos && close > open)
    return value.substr(open + 1, close - open - 1);
  return std::string(str::trim(value));
}

}  // namespace mw::actions::mail
