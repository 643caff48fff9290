// "set alertmanager ..." (where alert events are posted); set httpd is in parse_httpd.cc.
#include "config/parser_impl.h"
#include "util/strings.h"

namespace mw::config::parsing {
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
