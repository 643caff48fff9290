// "set httpd ..." (the HTTP interface) and "set alertmanager ..." (where alert events are posted).
#include "config/parser_impl.h"
#include "util/strings.h"

namespace mw::config::parsing {
namespace {

bool is_loopback(const std::string& address) {
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

}  // namespace

// MINIMAL form of monit's statement, enough for the HTTP interface and its tests:
//   set httpd port N [and use address A] [allow USER:PASSWORD [read-only]]... [read-only]
// The full statement (ssl, htpasswd files, hosts and nets, unix socket) is parsed elsewhere;
// this method maps onto the same fields and is meant to be replaced by it.
void Parser::set_httpd() {
  auto& s = cfg_.settings.httpd;
  s = http::HttpdSettings{};
  Location at = prev().where;
  s.where = at.str();
  s.enabled = true;
  expect_kw("port", "after 'set httpd' (set httpd port N [address A] allow USER:PASSWORD)");
  s.port = static_cast<uint16_t>(number("the HTTP port", 1, 65535));
  for (;;) {
    if (accept("address")) {
      s.address = value("an address to listen on");
    } else if (accept("allow")) {
      Location where = peek().where;
      std::string spec = value("USER:PASSWORD after 'allow'");
      // USER:"a password with spaces" (the lexer gives USER, ':' and the string)
      if (!spec.empty() && spec.back() == ':' && peek().kind == Token::Kind::string) {
        spec += string_value("the password");
      } else if (peek().kind == Token::Kind::colon) {
        next();
        spec += ":" + value("the password after 'USER:'");
      }
      auto colon = spec.find(':');
      if (colon == std::string::npos || colon == 0)
        fail(where,
             "expected USER:PASSWORD after 'allow' (hosts, nets and htpasswd files "
             "are not supported here yet)");
      http::User u{spec.substr(0, colon), spec.substr(colon + 1), false};
      if (u.password.empty()) fail(where, "the password of user '" + u.name + "' is empty");
      if (accept("read-only") || accept("readonly")) u.read_only = true;
      note_secret(where);
      s.users.push_back(std::move(u));
    } else if (accept("read-only") || accept("readonly")) {
      s.read_only = true;
    } else {
      break;
    }
  }
  check_statement_end("set httpd", {"address", "allow", "read-only"});
  if (s.has_users() && !is_loopback(s.address))
    d_.warning(at, "the HTTP interface listens on " + s.address +
                       " without TLS: its passwords cross the network in the clear");
}

// set alertmanager "URL"[, "URL"...] [username "U" password "P" | credentials "NAME"]
//     [with ssl options { ... }]
void Parser::set_alertmanager() {
  auto& am = cfg_.settings.alertmanager;
  am.urls.clear();
  for (;;) {
    Location where = peek().where;
    std::string url = value("an Alertmanager URL (http://host:9093)");
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      fail(where, "an Alertmanager URL starts with http:// or https://, got '" + url + "'");
    auto host_at = url.find("://") + 3;
    if (url.find('@', host_at) != std::string::npos)
      fail(where,
           "put the Alertmanager's user and password in 'username' and 'password' (or "
           "'credentials'), not in the URL");
    while (url.size() > host_at && url.back() == '/') url.pop_back();
    if (url.size() <= host_at) fail(where, "the Alertmanager URL has no host");
    am.urls.push_back(url);
    if (peek().kind != Token::Kind::comma) break;
    next();
  }
  for (;;) {
    if (accept("username")) {
      am.username = value("the Alertmanager user name");
    } else if (accept("password")) {
      note_secret(prev().where);
      am.password = value("the Alertmanager password");
    } else if (accept("credentials")) {
      Location where = prev().where;
      std::string name = value("the name of an entry of the credentials file");
      use_credentials(name, where, [this](const Credential& c) {
        cfg_.settings.alertmanager.username = c.username;
        cfg_.settings.alertmanager.password = c.password;
      });
    } else if (accept("ssl")) {
      accept("options");
      parse_tls_block(alertmanager_tls_);
    } else {
      break;
    }
  }
  check_statement_end("set alertmanager", {"username", "password", "credentials", "ssl"});
  if (!am.password.empty() && am.username.empty())
    fail(prev().where, "an Alertmanager password needs a 'username'");
  for (const auto& url : am.urls)
    if (!am.password.empty() && url.rfind("http://", 0) == 0 &&
        !is_loopback(url.substr(7, url.find_first_of(":/", 7) - 7)))
      d_.warning(prev().where, "the Alertmanager password crosses the network in the clear to " +
                                   url + "; use https://");
}

}  // namespace mw::config::parsing
