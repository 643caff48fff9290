#include "protocols/imap_client.h"

#include <cctype>

#include "net/failure.h"
#include "util/strings.h"

namespace mw::imap {
namespace {

constexpr int kMaxReplyLines = 2'000'000;  // a LIST of every mailbox of a large server fits

// "{123}" or "{123+}" at the end of a line announces a literal of that many bytes.
bool literal_size(const std::string& line, size_t& n) {
  if (line.empty() || line.back() != '}') return false;
  size_t open = line.rfind('{');
  if (open == std::string::npos) return false;
  std::string digits = line.substr(open + 1, line.size() - open - 2);
  if (!digits.empty() && digits.back() == '+') digits.pop_back();
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  n = std::stoul(digits);
  return true;
}

// Splits "TAG STATUS text" of a tagged line.
bool tagged_status(const std::string& line, const std::string& tag, std::string& status) {
  if (line.size() <= tag.size() + 1 || line.compare(0, tag.size(), tag) != 0 ||
      line[tag.size()] != ' ')
    return false;
  auto words = str::split_ws(line.substr(tag.size() + 1));
  if (words.empty()) return false;
  status = str::lower(words[0]) == "ok"    ? "OK"
           : str::lower(words[0]) == "no"  ? "NO"
           : str::lower(words[0]) == "bad" ? "BAD"
                                           : "";
  return !status.empty();
}

void parse_capabilities(const std::string& text, std::set<std::string>& caps) {
  caps.clear();
  for (const auto& w : str::split_ws(text)) {
    std::string cap = w;
    if (!cap.empty() && cap.back() == ']') cap.pop_back();
    caps.insert(str::lower(cap));
  }
}

// A parsed piece of a response line: an atom (NIL included), a string (quoted or literal) or a
// parenthesized list.
struct Value {
  enum class Kind { atom, string, list } kind = Kind::atom;
  std::string text;
  std::vector<Value> items;
};

// A small reader over one response line with its literals inlined ("{N}\r\n" + N bytes).
class Reader {
 public:
  explicit Reader(const std::string& s, size_t pos = 0) : s_(s), pos_(pos) {}

  bool value(Value& out, int depth = 0) {
    skip_spaces();
    if (pos_ >= s_.size() || depth > 16) return false;
    char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      out = Value{Value::Kind::list, {}, {}};
      for (;;) {
        skip_spaces();
        if (pos_ >= s_.size()) return false;
        if (s_[pos_] == ')') {
          ++pos_;
          return true;
        }
        Value item;
        if (!value(item, depth + 1)) return false;
        out.items.push_back(std::move(item));
      }
    }
    if (c == '"') return quoted(out);
    if (c == '{') return literal(out);
    if (c == ')') return false;
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ' ' && s_[pos_] != '(' && s_[pos_] != ')' &&
           s_[pos_] != '"')
      ++pos_;
    out = Value{Value::Kind::atom, s_.substr(start, pos_ - start), {}};
    return !out.text.empty();
  }
  bool word(const char* expected) {
    Value v;
    return value(v) && v.kind == Value::Kind::atom && str::iequals(v.text, expected);
  }
  [[nodiscard]] bool at_end() {
    skip_spaces();
    return pos_ >= s_.size();
  }

 private:
  void skip_spaces() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  bool quoted(Value& out) {
    out = Value{Value::Kind::string, {}, {}};
    for (++pos_; pos_ < s_.size(); ++pos_) {
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c == '\\') {
        if (++pos_ >= s_.size()) return false;
        c = s_[pos_];
      }
      out.text += c;
    }
    return false;
  }
  bool literal(Value& out) {
    size_t close = s_.find('}', pos_);
    if (close == std::string::npos) return false;
    std::string digits = s_.substr(pos_ + 1, close - pos_ - 1);
    if (!digits.empty() && digits.back() == '+') digits.pop_back();
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      return false;
    size_t n = std::stoul(digits);
    if (s_.compare(close + 1, 2, "\r\n") != 0 || close + 3 + n > s_.size()) return false;
    out = Value{Value::Kind::string, s_.substr(close + 3, n), {}};
    pos_ = close + 3 + n;
    return true;
  }

  const std::string& s_;
  size_t pos_;
};

bool is_nil(const Value& v) {
  return v.kind == Value::Kind::atom && str::iequals(v.text, "NIL");
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 20 && s.find_first_not_of("0123456789") == std::string::npos;
}

// The name of an untagged response: "CAPABILITY" for "* CAPABILITY ...", "EXISTS" for
// "* 3 EXISTS".
std::string response_name(const std::string& line) {
  auto words = str::split_ws(std::string_view(line).substr(0, 64));
  if (words.size() < 2) return "";
  if (words.size() >= 3 && all_digits(words[1])) return str::upper(words[2]);
  return str::upper(words[1]);
}

// The command's verb: "UID SEARCH ..." -> "SEARCH", "LOGIN ..." -> "LOGIN".
std::string command_verb(const std::string& text) {
  auto words = str::split_ws(std::string_view(text).substr(0, 64));
  if (words.empty()) return "";
  if (str::iequals(words[0], "UID") && words.size() > 1) return str::upper(words[1]);
  return str::upper(words[0]);
}

// Whether a reply to `verb` keeps the untagged response `line`. Commands this client does not
// know keep everything (within the byte bound).
bool wanted(const std::string& verb, const std::string& line) {
  std::string name = response_name(line);
  if (verb == "CAPABILITY" || verb == "LOGIN" || verb == "AUTHENTICATE")
    return name == "CAPABILITY";
  if (verb == "LIST") return name == "LIST" || name == "STATUS";
  if (verb == "STATUS") return name == "STATUS";
  if (verb == "SEARCH") return name == "SEARCH";
  if (verb == "FETCH") return name == "FETCH";
  if (verb == "NAMESPACE") return name == "NAMESPACE";
  if (verb == "SELECT" || verb == "EXAMINE")
    return name == "FLAGS" || name == "EXISTS" || name == "RECENT" ||
           ((name == "OK" || name == "NO") && line.find('[') != std::string::npos);
  if (verb == "STORE" || verb == "EXPUNGE" || verb == "APPEND" || verb == "LOGOUT" ||
      verb == "STARTTLS" || verb == "IDLE" || verb == "NOOP" || verb == "CLOSE")
    return false;
  return true;
}

std::string uid_set(const std::vector<uint32_t>& uids) {
  std::string out;
  for (uint32_t u : uids) out += (out.empty() ? "" : ",") + std::to_string(u);
  return out;
}

}  // namespace

bool ListEntry::selectable() const {
  for (const auto& f : flags)
    if (str::iequals(f, "\\Noselect") || str::iequals(f, "\\NonExistent")) return false;
  return true;
}

std::optional<std::string> StatusEntry::get(const std::string& item) const {
  for (const auto& [k, v] : items)
    if (k == item) return v;
  return std::nullopt;
}

bool parse_list_response(const std::string& line, ListEntry& out) {
  Reader r(line);
  Value flags, delimiter, name;
  if (!r.word("*") || !r.word("LIST")) return false;
  if (!r.value(flags) || flags.kind != Value::Kind::list) return false;
  if (!r.value(delimiter) || (delimiter.kind != Value::Kind::string && !is_nil(delimiter)))
    return false;
  if (!r.value(name) || name.kind == Value::Kind::list) return false;
  // Extended LIST data (RFC 5258: "(CHILDINFO ...)") may follow; it is not needed here.
  out = ListEntry{};
  for (const auto& f : flags.items) {
    if (f.kind != Value::Kind::atom) return false;
    out.flags.push_back(f.text);
  }
  out.delimiter = is_nil(delimiter) ? "" : delimiter.text;
  out.name = name.text;
  return true;
}

bool parse_status_response(const std::string& line, StatusEntry& out) {
  Reader r(line);
  Value name, items;
  if (!r.word("*") || !r.word("STATUS")) return false;
  if (!r.value(name) || name.kind == Value::Kind::list) return false;
  if (!r.value(items) || items.kind != Value::Kind::list || items.items.size() % 2 != 0)
    return false;
  if (!r.at_end()) return false;
  out = StatusEntry{name.text, {}};
  for (size_t i = 0; i < items.items.size(); i += 2) {
    const Value& k = items.items[i];
    const Value& v = items.items[i + 1];
    if (k.kind != Value::Kind::atom || v.kind != Value::Kind::atom || !all_digits(v.text))
      return false;
    out.items.emplace_back(str::upper(k.text), v.text);
  }
  return true;
}

bool parse_namespace_response(const std::string& line, Namespace& personal) {
  Reader r(line);
  Value personal_list, other, shared;
  if (!r.word("*") || !r.word("NAMESPACE")) return false;
  if (!r.value(personal_list) || !r.value(other) || !r.value(shared)) return false;
  personal = Namespace{};
  if (is_nil(personal_list)) return true;
  if (personal_list.kind != Value::Kind::list || personal_list.items.empty()) return false;
  const Value& first = personal_list.items[0];
  // Each namespace is ("prefix" "delimiter" [extensions]).
  if (first.kind != Value::Kind::list || first.items.size() < 2 ||
      first.items[0].kind != Value::Kind::string ||
      (first.items[1].kind != Value::Kind::string && !is_nil(first.items[1])))
    return false;
  personal.prefix = first.items[0].text;
  personal.delimiter = is_nil(first.items[1]) ? "" : first.items[1].text;
  return true;
}

bool parse_search_response(const std::string& line, std::vector<uint32_t>& out) {
  if (!str::istarts_with(line, "* SEARCH")) return false;
  if (line.size() > 8 && line[8] != ' ') return false;
  out.clear();
  for (const auto& w : str::split_ws(line.substr(8))) {
    if (!all_digits(w) || w.size() > 10) return false;
    unsigned long long n = std::stoull(w);
    if (n == 0 || n > UINT32_MAX) return false;
    out.push_back(static_cast<uint32_t>(n));
  }
  return true;
}

std::optional<uint32_t> response_code_number(const Reply& reply, const std::string& code) {
  std::string needle = "[" + str::upper(code) + " ";
  auto scan = [&](const std::string& line) -> std::optional<uint32_t> {
    std::string up = str::upper(line.substr(0, 200));
    auto at = up.find(needle);
    if (at == std::string::npos) return std::nullopt;
    size_t start = at + needle.size();
    size_t end = up.find(']', start);
    if (end == std::string::npos) return std::nullopt;
    std::string digits = up.substr(start, end - start);
    if (!all_digits(digits) || digits.size() > 10) return std::nullopt;
    unsigned long long n = std::stoull(digits);
    if (n > UINT32_MAX) return std::nullopt;
    return static_cast<uint32_t>(n);
  };
  for (const auto& u : reply.untagged)
    if (auto n = scan(u)) return n;
  return scan(reply.line);
}

bool quote(const std::string& s, std::string& out) {
  out = "\"";
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return true;
}

std::string Session::next_tag() {
  return "mw" + std::to_string(++tag_counter_);
}

Task<std::string> Session::read_response_line() {
  std::string line = co_await conn_.read_line();
  size_t n = 0;
  int literals = 0;
  while (literal_size(line, n)) {
    if (++literals > 1000)
      throw ProbeError(FailureClass::protocol, "response with more than 1000 literals");
    if (line.size() + n > keep_limit_)
      throw ProbeError(FailureClass::protocol,
                       "response with a literal of " + std::to_string(n) + " bytes, more than " +
                           std::to_string(keep_limit_) + " in all");
    line += "\r\n";
    line += co_await conn_.read_exact(n);
    line += co_await conn_.read_line();
  }
  co_return line;
}

Task<void> Session::greeting() {
  std::string line = co_await read_response_line();
  if (str::istarts_with(line, "* OK")) {
    preauth_ = false;
    take_capability_code(line);
  } else if (str::istarts_with(line, "* PREAUTH")) {
    preauth_ = true;
    take_capability_code(line);
  } else if (str::istarts_with(line, "* BYE")) {
    throw ProbeError(FailureClass::rejected, "server refused the session: " + str::printable(line),
                     line);
  } else {
    throw ProbeError(FailureClass::protocol,
                     "unexpected IMAP greeting: \"" + str::printable(line) + "\"", line);
  }
}

Task<Reply> Session::collect(const std::string& tag) {
  Reply reply;
  std::string verb;
  if (auto it = verbs_.find(tag); it != verbs_.end()) {
    verb = it->second;
    verbs_.erase(it);
  }
  size_t kept = 0;
  // Bounded by the connection's byte limit, and by a line count for replies of tiny lines.
  for (int lines = 0;; ++lines) {
    if (lines > kMaxReplyLines)
      throw ProbeError(FailureClass::protocol,
                       "reply longer than " + std::to_string(kMaxReplyLines) + " lines");
    std::string line = co_await read_response_line();
    std::string status;
    if (tagged_status(line, tag, status)) {
      reply.status = status;
      reply.line = line;
      co_return reply;
    }
    if (line.rfind("* ", 0) == 0) {
      if (str::istarts_with(line, "* BYE"))
        throw ProbeError(FailureClass::rejected,
                         "server closed the session: " + str::printable(line), line);
      if (!wanted(verb, line)) continue;  // read, counted by the connection, not kept
      kept += line.size() + sizeof(std::string);
      if (kept > keep_limit_)
        throw ProbeError(FailureClass::protocol,
                         "reply too large: more than " + std::to_string(keep_limit_ / 1024) +
                             " KiB of " + (verb.empty() ? "untagged" : verb) + " responses");
      reply.untagged.push_back(std::move(line));
      continue;
    }
    if (line.rfind("+", 0) == 0) {
      throw ProbeError(FailureClass::protocol,
                       "unexpected continuation request: \"" + str::printable(line) + "\"", line);
    }
    throw ProbeError(FailureClass::protocol,
                     "unexpected IMAP response: \"" + str::printable(line) + "\"", line);
  }
}

Task<Reply> Session::command(const std::string& text) {
  std::string tag = next_tag();
  verbs_[tag] = command_verb(text);
  conn_.send(tag + " " + text + "\r\n");
  co_return co_await collect(tag);
}

Task<Reply> Session::command_secret(const std::string& text, const std::string& shown) {
  std::string tag = next_tag();
  verbs_[tag] = command_verb(text);
  conn_.send_secret(tag + " " + text + "\r\n", tag + " " + shown);
  co_return co_await collect(tag);
}

Task<void> Session::capability() {
  Reply r = co_await command("CAPABILITY");
  if (r.status != "OK")
    throw ProbeError(FailureClass::protocol, "CAPABILITY failed: " + str::printable(r.line),
                     r.line);
  for (const auto& u : r.untagged)
    if (str::istarts_with(u, "* CAPABILITY ")) parse_capabilities(u.substr(13), caps_);
  caps_current_ = true;
}

bool Session::take_capability_code(const std::string& line) {
  auto open = str::lower(line.substr(0, 64)).find("[capability ");
  if (open == std::string::npos) return false;
  auto close = line.find(']', open);
  if (close == std::string::npos) return false;
  parse_capabilities(line.substr(open + 12, close - open - 12), caps_);
  caps_current_ = true;
  return true;
}

bool Session::has_capability(const std::string& cap) const {
  return caps_.count(str::lower(cap)) > 0;
}

Task<void> Session::starttls_command() {
  if (preauth_)
    throw ProbeError(FailureClass::missing_feature,
                     "server greeted with PREAUTH, so STARTTLS is not possible");
  if (!has_capability("STARTTLS"))
    throw ProbeError(FailureClass::missing_feature, "server does not offer STARTTLS");
  Reply r = co_await command("STARTTLS");
  if (r.status != "OK")
    throw ProbeError(FailureClass::rejected, "STARTTLS refused: " + str::printable(r.line), r.line);
}

Task<void> Session::login(const Login& login) {
  if (preauth_) co_return;  // already authenticated by the server's own means
  bool master = !login.authcid.empty();
  if (has_capability("LOGINDISABLED") && !conn_.tls_active())
    throw ProbeError(FailureClass::missing_feature,
                     "server advertises LOGINDISABLED: it takes no password on this unencrypted "
                     "connection (use starttls or imaps)");
  if (has_capability("LOGINDISABLED") && !has_capability("AUTH=PLAIN"))
    throw ProbeError(FailureClass::missing_feature,
                     "server offers neither LOGIN (LOGINDISABLED) nor AUTH=PLAIN");
  Reply r;
  std::string who = master ? login.username + " (as " + login.authcid + ")" : login.username;
  if (master || has_capability("AUTH=PLAIN")) {
    if (!has_capability("AUTH=PLAIN"))
      throw ProbeError(FailureClass::missing_feature,
                       "server does not offer AUTH=PLAIN, needed to log in as another user");
    std::string authzid = master ? login.username : "";
    std::string authcid = master ? login.authcid : login.username;
    std::string blob = str::base64_encode(authzid + '\0' + authcid + '\0' + login.password);
    conn_.add_secrets(login.password, blob);
    if (has_capability("SASL-IR")) {
      r = co_await command_secret("AUTHENTICATE PLAIN " + blob, "AUTHENTICATE PLAIN <" + who + ">");
    } else {
      std::string tag = next_tag();
      verbs_[tag] = "AUTHENTICATE";
      conn_.send(tag + " AUTHENTICATE PLAIN\r\n");
      std::string cont = co_await read_response_line();
      if (cont.rfind("+", 0) != 0) {
        std::string status;
        if (tagged_status(cont, tag, status))
          throw ProbeError(FailureClass::missing_feature,
                           "AUTHENTICATE PLAIN refused: " + str::printable(cont), cont);
        throw ProbeError(
            FailureClass::protocol,
            "expected a continuation for AUTHENTICATE, got \"" + str::printable(cont) + "\"", cont);
      }
      conn_.send_secret(blob + "\r\n", "<credentials of " + who + ">");
      r = co_await collect(tag);
    }
  } else {
    std::string user, pass;
    if (!quote(login.username, user) || !quote(login.password, pass))
      throw ProbeError(FailureClass::internal, "user name or password contains CR, LF or NUL");
    conn_.add_secrets(login.password);
    r = co_await command_secret("LOGIN " + user + " " + pass, "LOGIN " + user + " ****");
  }
  if (r.status == "NO")
    throw ProbeError(FailureClass::auth, "login as " + who + " failed: " + str::printable(r.line),
                     r.line);
  if (r.status != "OK")
    throw ProbeError(FailureClass::protocol,
                     "login as " + who + " answered: " + str::printable(r.line), r.line);
  // Capabilities change with the login (RFC 9051 7.1): current only if the OK says them.
  caps_current_ = false;
  take_capability_code(r.line);
  for (const auto& u : r.untagged)
    if (str::istarts_with(u, "* CAPABILITY ")) {
      parse_capabilities(u.substr(13), caps_);
      caps_current_ = true;
    }
}

Task<Reply> Session::select(const std::string& mailbox) {
  std::string name;
  if (!quote(mailbox, name))
    throw ProbeError(FailureClass::internal, "mailbox name contains CR, LF or NUL");
  Reply r = co_await command("SELECT " + name);
  if (r.status != "OK")
    throw ProbeError(FailureClass::rejected,
                     "cannot select " + mailbox + ": " + str::printable(r.line), r.line);
  co_return r;
}

Task<void> Session::logout() {
  std::string tag = next_tag();
  conn_.send(tag + " LOGOUT\r\n");
  for (int lines = 0; lines < 100; ++lines) {
    auto line = co_await conn_.read_line_or_close();
    if (!line) co_return;  // a close (with or without "* BYE" before it) ends the session
    std::string status;
    if (tagged_status(*line, tag, status)) {
      if (status == "OK") co_return;
      throw ProbeError(status == "NO" ? FailureClass::rejected : FailureClass::protocol,
                       "LOGOUT answered " + status + ": " + str::printable(*line), *line);
    }
    if (line->rfind("* ", 0) == 0) continue;  // * BYE, or an untagged update before it
    throw ProbeError(FailureClass::protocol,
                     "unexpected reply to LOGOUT: \"" + str::printable(*line) + "\"", *line);
  }
  throw ProbeError(FailureClass::protocol, "more than 100 lines in reply to LOGOUT");
}

}  // namespace mw::imap

namespace mw::imap {

std::string Session::send(const std::string& text) {
  std::string tag = next_tag();
  verbs_[tag] = command_verb(text);
  conn_.send(tag + " " + text + "\r\n");
  return tag;
}

Task<Reply> Session::reply(const std::string& tag) {
  co_return co_await collect(tag);
}

std::string Session::list_command(const std::string& pattern,
                                  const std::vector<std::string>& status_items) {
  std::string quoted;
  if (!quote(pattern, quoted))
    throw ProbeError(FailureClass::internal, "mailbox pattern contains CR, LF or NUL");
  std::string cmd = "LIST \"\" " + quoted;
  if (!status_items.empty()) cmd += " RETURN (STATUS (" + str::join(status_items, " ") + "))";
  return cmd;
}

std::string Session::status_command(const std::string& mailbox,
                                    const std::vector<std::string>& items) {
  std::string quoted;
  if (!quote(mailbox, quoted))
    throw ProbeError(FailureClass::internal, "mailbox name contains CR, LF or NUL");
  return "STATUS " + quoted + " (" + str::join(items, " ") + ")";
}

Task<std::vector<ListEntry>> Session::list(const std::string& pattern) {
  Reply r = co_await command(list_command(pattern));
  if (r.status != "OK")
    throw ProbeError(FailureClass::rejected, "LIST refused: " + str::printable(r.line), r.line);
  std::vector<ListEntry> out;
  for (const auto& u : r.untagged) {
    ListEntry e;
    if (parse_list_response(u, e)) {
      out.push_back(std::move(e));
    } else if (str::istarts_with(u, "* LIST")) {
      throw ProbeError(FailureClass::protocol,
                       "malformed LIST response: \"" + str::printable(u) + "\"", u);
    }
  }
  co_return out;
}

Task<std::vector<uint32_t>> Session::uid_search(const std::string& criteria) {
  Reply r = co_await command("UID SEARCH " + criteria);
  if (r.status != "OK")
    throw ProbeError(FailureClass::rejected, "SEARCH refused: " + str::printable(r.line), r.line);
  std::vector<uint32_t> out;
  for (const auto& u : r.untagged) {
    std::vector<uint32_t> part;
    if (parse_search_response(u, part)) {
      out.insert(out.end(), part.begin(), part.end());
    } else if (str::istarts_with(u, "* SEARCH")) {
      throw ProbeError(FailureClass::protocol,
                       "malformed SEARCH response: \"" + str::printable(u) + "\"", u);
    }
  }
  co_return out;
}

Task<std::optional<std::string>> Session::uid_fetch_message(uint32_t uid) {
  Reply r = co_await command("UID FETCH " + std::to_string(uid) + " (BODY.PEEK[])");
  if (r.status != "OK")
    throw ProbeError(FailureClass::rejected, "FETCH refused: " + str::printable(r.line), r.line);
  // "* N FETCH (UID u BODY[] {len}\r\n...)": the literal of the response that names this UID.
  for (const auto& u : r.untagged) {
    Reader rd(u);
    Value star, seq, verb, data;
    if (!rd.value(star) || !rd.value(seq) || !rd.value(verb) || !str::iequals(verb.text, "FETCH"))
      continue;
    if (!rd.value(data) || data.kind != Value::Kind::list)
      throw ProbeError(FailureClass::protocol,
                       "malformed FETCH response: \"" + str::printable(u) + "\"", u);
    std::optional<std::string> body;
    bool this_uid = false;
    for (size_t i = 0; i + 1 < data.items.size(); i += 2) {
      const Value& k = data.items[i];
      const Value& v = data.items[i + 1];
      if (str::iequals(k.text, "UID") && v.text == std::to_string(uid)) this_uid = true;
      if (str::iequals(k.text, "BODY[]") && v.kind == Value::Kind::string) body = v.text;
    }
    if (this_uid && body) co_return body;
  }
  co_return std::nullopt;
}

Task<void> Session::uid_delete(const std::vector<uint32_t>& uids) {
  if (uids.empty()) co_return;
  std::string set = uid_set(uids);
  // Pipelined: the STORE and the EXPUNGE go out together.
  std::string store = send("UID STORE " + set + " +FLAGS.SILENT (\\Deleted)");
  std::string expunge = send(has_capability("UIDPLUS") ? "UID EXPUNGE " + set : "EXPUNGE");
  Reply s = co_await reply(store);
  Reply e = co_await reply(expunge);
  if (s.status != "OK")
    throw ProbeError(FailureClass::rejected, "STORE \\Deleted refused: " + str::printable(s.line),
                     s.line);
  if (e.status != "OK")
    throw ProbeError(FailureClass::rejected, "EXPUNGE refused: " + str::printable(e.line), e.line);
}

Task<Reply> Session::append(const std::string& mailbox, const std::string& message) {
  std::string name;
  if (!quote(mailbox, name))
    throw ProbeError(FailureClass::internal, "mailbox name contains CR, LF or NUL");
  bool plus = has_capability("LITERAL+");
  std::string tag = next_tag();
  verbs_[tag] = "APPEND";
  std::string head =
      tag + " APPEND " + name + " {" + std::to_string(message.size()) + (plus ? "+" : "") + "}\r\n";
  conn_.send(head);
  if (!plus) {
    std::string cont = co_await read_response_line();
    if (cont.rfind("+", 0) != 0) {
      std::string status;
      if (tagged_status(cont, tag, status)) co_return Reply{status, cont, {}};
      throw ProbeError(FailureClass::protocol,
                       "expected a continuation for APPEND, got \"" + str::printable(cont) + "\"",
                       cont);
    }
  }
  conn_.send(message + "\r\n");
  co_return co_await collect(tag);
}

Task<void> Session::idle_start() {
  idle_tag_ = next_tag();
  verbs_[idle_tag_] = "IDLE";
  conn_.send(idle_tag_ + " IDLE\r\n");
  for (int lines = 0; lines < 1000; ++lines) {
    std::string line = co_await read_response_line();
    if (line.rfind("+", 0) == 0) co_return;
    std::string status;
    if (tagged_status(line, idle_tag_, status))
      throw ProbeError(FailureClass::rejected, "IDLE refused: " + str::printable(line), line);
    if (line.rfind("* ", 0) != 0)
      throw ProbeError(FailureClass::protocol,
                       "unexpected reply to IDLE: \"" + str::printable(line) + "\"", line);
  }
  throw ProbeError(FailureClass::protocol, "more than 1000 lines before the IDLE go-ahead");
}

Task<std::optional<std::string>> Session::idle_wait(int64_t ms, const Scope& scope) {
  int64_t saved = conn_.timeout_ms();
  conn_.set_timeout_ms(ms);
  std::optional<std::string> line;
  bool timed_out = false;
  try {
    line = co_await read_response_line();
  } catch (const ProbeError& e) {
    // A quiet mailbox is no error; a cancelled run (deadline) or a broken connection is.
    if (e.cls() != FailureClass::timeout || scope.cancelled()) {
      conn_.set_timeout_ms(saved);
      throw;
    }
    timed_out = true;
  }
  conn_.set_timeout_ms(saved);
  if (timed_out) co_return std::nullopt;
  if (str::istarts_with(*line, "* BYE"))
    throw ProbeError(FailureClass::rejected, "server ended the IDLE: " + str::printable(*line),
                     *line);
  co_return line;
}

Task<void> Session::idle_done() {
  conn_.send("DONE\r\n");
  Reply r = co_await collect(idle_tag_);
  if (r.status != "OK")
    throw ProbeError(FailureClass::rejected, "IDLE ended with: " + str::printable(r.line), r.line);
}

}  // namespace mw::imap
