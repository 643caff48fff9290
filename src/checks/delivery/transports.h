// The FTP and IRC sessions of the delivery check's senders and receivers, opened the same way on
// both sides: connected (TLS from the first byte for irctls, AUTH TLS for ftps), logged in
// (FTP: in the URL's directory; IRC: registered and joined to the URL's channel).
#pragma once

#include <memory>
#include <string>

#include "config/model.h"
#include "engine/run_context.h"
#include "net/task.h"
#include "protocols/ftp_client.h"
#include "protocols/irc_client.h"

namespace mw::checks::delivery {

// Refuses to send `url`'s password over a connection without TLS unless allowed.
void require_encryption(const Connection& conn, const config::MailUrl& url, bool allow_plaintext);

struct FtpLink {
  std::unique_ptr<Connection> conn;
  std::unique_ptr<ftp::Session> ftp;
};
Task<FtpLink> open_ftp(RunContext& ctx, const config::MailUrl& url, bool allow_plaintext,
                       const std::string& label);

struct IrcLink {
  std::unique_ptr<Connection> conn;
  std::unique_ptr<irc::Session> irc;
};
// The nick is the URL's user, else `default_nick`; the URL's password is the server's (PASS).
Task<IrcLink> open_irc(RunContext& ctx, const config::MailUrl& url, bool allow_plaintext,
                       const std::string& label, const std::string& default_nick);

}  // namespace mw::checks::delivery
