#include "checks/delivery/transports.h"

#include "net/failure.h"

namespace mw::checks::delivery {

using config::MailUrl;

void require_encryption(const Connection& conn, const MailUrl& url, bool allow_plaintext) {
  if (!url.password.empty() && !conn.tls_active() && !allow_plaintext)
    throw ProbeError(FailureClass::missing_feature,
                     "not sending the password of " +
                         (url.username.empty() ? std::string("the server") : url.username) +
                         " over an unencrypted connection to " + url.shown +
                         " (use a TLS scheme, or 'allow plaintext')");
}

Task<FtpLink> open_ftp(RunContext& ctx, const MailUrl& u, bool allow_plaintext,
                       const std::string& label) {
  FtpLink link;
  link.conn = co_await ctx.open(u.endpoint, config::TlsMode::none, u.tls, label);
  ftp::DataChannel data;
  data.make = [&ctx, label] { return ctx.connection(label + " data"); };
  data.tls = u.tls;
  data.host = u.endpoint.host;
  link.ftp = std::make_unique<ftp::Session>(*link.conn, std::move(data));
  co_await link.ftp->greeting();
  if (u.tls_mode == config::TlsMode::starttls) {
    co_await link.ftp->auth_tls_command();
    co_await link.conn->start_tls(u.tls, u.endpoint.host);
  }
  require_encryption(*link.conn, u, allow_plaintext);
  co_await link.ftp->login(u.username, u.password);
  if (u.tls_mode == config::TlsMode::starttls) co_await link.ftp->protect();
  co_await link.ftp->enter(u.path);
  co_return link;
}

Task<IrcLink> open_irc(RunContext& ctx, const MailUrl& u, bool allow_plaintext,
                       const std::string& label, const std::string& default_nick) {
  IrcLink link;
  link.conn = co_await ctx.open(u.endpoint, u.tls_mode, u.tls, label);
  link.irc = std::make_unique<irc::Session>(*link.conn);
  require_encryption(*link.conn, u, allow_plaintext);
  co_await link.irc->register_as(u.username.empty() ? default_nick : u.username, u.password);
  co_await link.irc->join(u.path);
  co_return link;
}

}  // namespace mw::checks::delivery
