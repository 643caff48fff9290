// Clauses that belong to one protocol: http/https (request, status, content, hostheader,
// checksum, http headers), as monit writes them. parse_port_test() offers every clause it does
// not know to parse_protocol_clause(); finish_port_test() asks check_protocol_clauses() whether
// the test's protocol takes them.
#include <algorithm>

#include "config/parser_impl.h"
#include "protocols/registry.h"
#include "util/strings.h"

namespace mw::config::parsing {
namespace {

constexpr size_t kMaxHeaders = 32;
constexpr size_t kMaxHeaderBytes = 1024;

bool is_status_op(const Token& t) {
  static const char* const ops[] = {"=", "==", "!=", "<", ">", "<=", ">="};
  return t.kind == Token::Kind::op &&
         std::any_of(std::begin(ops), std::end(ops), [&](const char* o) { return t.text == o; });
}

bool has_space_or_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char ch) { return static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f; });
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out(1);
  for (char ch : s) {
    if (ch == ',') {
      out.emplace_back();
    } else {
      out.back() += ch;
    }
  }
  return out;
}

}  // namespace

std::string Parser::protocol_did_you_mean(const std::string& word,
                                          const std::vector<std::string>& names) {
  // One letter away and nothing else as close: a protocol name two letters away is usually a
  // different protocol (https is not smtps).
  std::string best;
  int close = 0;
  for (const auto& n : names)
    if (str::edit_distance(word, n) == 1) {
      best = n;
      ++close;
    }
  return close == 1 ? "; did you mean '" + best + "'?" : "";
}

bool Parser::parse_protocol_clause(const std::string& k, const Location& at, PortCheck& pc,
                                   PortClauses& c) {
  // Made on the first HTTP clause: checks of other protocols carry none.
  auto note = [&]() -> HttpOptions& {
    if (!c.http_at) c.http_at = at;
    return pc.options.http.ensure();
  };
  if (k == "request") {
    HttpOptions& h = note();
    Location where = peek().where;
    h.path = value("the request path (\"/path\")");
    if (h.path.empty() || h.path[0] != '/' || has_space_or_control(h.path))
      fail(where, "a request path starts with '/' and has no spaces or control characters");
    return true;
  }
  if (k == "status") {
    HttpOptions& h = note();
    h.status_op = "=";
    if (is_status_op(peek())) h.status_op = next().text;
    if (h.status_op == "==") h.status_op = "=";
    h.status = static_cast<int>(number("an HTTP status code", 100, 599));
    return true;
  }
  if (k == "content") {
    HttpOptions& h = note();
    const Token& op = peek();
    if (op.kind != Token::Kind::op || (op.text != "=" && op.text != "==" && op.text != "!="))
      fail_expected("'=' or '!=' after 'content'");
    h.content_negate = next().text == "!=";
    const Token& t = peek();
    if (t.kind != Token::Kind::string)
      fail_expected("a regular expression in double quotes after 'content " + op.text + "'");
    Location where = t.where;
    std::string source = unescape_plain(next().text);
    h.content = compile_regex(source, where);
    return true;
  }
  if (k == "hostheader") {
    HttpOptions& h = note();
    Location where = peek().where;
    h.hostheader = value("a host name after 'hostheader'");
    if (h.hostheader.empty() || has_space_or_control(h.hostheader))
      fail(where, "a host header is one word without control characters");
    return true;
  }
  if (k == "checksum") {
    HttpOptions& h = note();
    std::string type;
    for (const char* t : {"md5", "sha1", "sha256"})
      if (accept(t)) type = t;
    if (peek().kind == Token::Kind::op && (peek().text == "=" || peek().text == "==")) next();
    Location where = peek().where;
    std::string hex = str::lower(value("the body's checksum (hex)"));
    if (hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      fail(where, "a checksum is hex digits");
    if (type.empty())
      type = hex.size() == 32   ? "md5"
             : hex.size() == 40 ? "sha1"
             : hex.size() == 64 ? "sha256"
                                : "";
    size_t want = type == "md5" ? 32 : type == "sha1" ? 40 : 64;
    if (type.empty() || hex.size() != want)
      fail(where, "a checksum is an MD5 (32 hex digits), SHA-1 (40) or SHA-256 (64), got " +
                      std::to_string(hex.size()) + " digits");
    h.checksum_type = type;
    h.checksum_hex = hex;
    return true;
  }
  // Clauses monit's own dialogues of these protocols take; read and kept out of the model.
  static const struct {
    const char* clause;
    const char* protocol;
    bool number;
  } monit_only[] = {{"origin", "websocket", false},
                    {"version", "websocket", true},
                    {"secret", "radius", false},
                    {"target", "sip", false},
                    {"maxforward", "sip", true}};
  for (const auto& m : monit_only) {
    if (k != m.clause) continue;
    if (m.number) {
      (void)number(std::string("a number after '") + m.clause + "'", 0, 1000000);
    } else {
      (void)value(std::string("a value after '") + m.clause + "'");
    }
    c.monit_only.push_back({at, m.clause, m.protocol});
    return true;
  }
  if (k == "http") {
    HttpOptions& h = note();
    expect_kw("headers", "after 'http' (http headers [Name: value, ...])");
    Location where = peek().where;
    size_t first = pos_;
    const Token& open = peek();
    if (!((open.kind == Token::Kind::word || open.kind == Token::Kind::string) &&
          !open.text.empty() && open.text[0] == '['))
      fail_expected("'[' after 'http headers'");
    // The list as written, up to the token that ends with ']'.
    for (size_t n = 0;; ++n) {
      const Token& t = peek();
      if (t.kind == Token::Kind::end || n > 4 * kMaxHeaders)
        fail(where, "'http headers [' is not closed with ']'");
      next();
      if ((t.kind == Token::Kind::word || t.kind == Token::Kind::string) && !t.text.empty() &&
          t.text.back() == ']')
        break;
    }
    std::string list(str::trim(source_text(first, pos_ - 1)));
    list = list.substr(1, list.size() - 2);
    for (std::string item : split_commas(list)) {
      item = std::string(str::trim(item));
      if (item.size() >= 2 && (item.front() == '"' || item.front() == '\'') &&
          item.back() == item.front())
        item = item.substr(1, item.size() - 2);
      auto colon = item.find(':');
      if (item.empty()) continue;
      if (colon == std::string::npos || colon == 0 || has_space_or_control(item.substr(0, colon)))
        fail(where, "an HTTP header is 'Name: value', got '" + str::printable(item, 80) + "'");
      if (item.size() > kMaxHeaderBytes || item.find_first_of("\r\n") != std::string::npos)
        fail(where,
             "an HTTP header is one line of at most " + std::to_string(kMaxHeaderBytes) + " bytes");
      if (h.headers.size() == kMaxHeaders)
        fail(where, "at most " + std::to_string(kMaxHeaders) + " HTTP headers");
      std::string name = item.substr(0, colon);
      std::string value_part(str::trim(item.substr(colon + 1)));
      if (str::iequals(name, "Host")) {
        h.hostheader = value_part;  // monit: the Host header names the virtual host
        continue;
      }
      h.headers.push_back(name + ": " + value_part);
    }
    return true;
  }
  return false;
}

void Parser::check_protocol_clauses(PortCheck& pc, const PortClauses& c) {
  // What monit would use and mailwarden does not: named in the test's one warning.
  std::vector<std::string> unused;
  for (const auto& m : c.monit_only) {
    if (pc.protocol_name != m.protocol && !(m.protocol == "websocket" && pc.protocol_name == "ws"))
      fail(m.where, "'" + m.clause + "' belongs to protocol " + m.protocol);
    unused.push_back("'" + m.clause + "'");
  }
  if ((pc.protocol->accepts & protocols::kLoginUnused) &&
      (pc.options.has_login() || !pc.options.password.empty())) {
    unused.emplace_back("username/password");
    pc.options.username.clear();
    pc.options.password.clear();
  }
  const bool web = pc.protocol_name == "websocket" || pc.protocol_name == "ws" ||
                   pc.protocol_name == "apache-status";
  if (c.http_at && !(pc.protocol->accepts & protocols::kHttp)) {
    // monit's websocket and apache-status tests send a request; here they only connect.
    if (!web)
      fail(*c.http_at, "protocol '" + pc.protocol_name +
                           "' does not take HTTP clauses (request, status, content, hostheader, "
                           "checksum, http headers); use protocol http or https");
    unused.emplace_back("the HTTP clauses");
    pc.options.http.reset();
  }
  if (!pc.protocol->connect_only && unused.empty()) return;
  std::string what =
      pc.protocol->connect_only ? "only the connection is checked" : "only its greeting is checked";
  std::string list;
  for (size_t i = 0; i < unused.size(); ++i)
    list += (i == 0 ? "" : i + 1 == unused.size() ? " and " : ", ") + unused[i];
  if (!list.empty()) list = " (" + list + " accepted for monit compatibility, no effect)";
  d_.warning(c.protocol_at.value_or(Location{}),
             "protocol " + pc.protocol_name + ": " + what + list);
}

}  // namespace mw::config::parsing
