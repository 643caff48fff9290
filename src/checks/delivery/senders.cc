#include "checks/delivery/senders.h"

#include "checks/delivery/message.h"
#include "checks/delivery/receivers.h"
#include "checks/delivery/transports.h"
#include "net/failure.h"
#include "protocols/smtp_client.h"
#include "util/clock.h"
#include "util/strings.h"

namespace mw::checks::delivery {
namespace {

using config::DeliveryCheck;
using config::MailUrl;

// The exact success code of the step (RFC 5321): 250 (251 for RCPT), nothing else.
void require_positive(const smtp::Reply& r, const std::string& what, int also = 250) {
  if (r.code == 250 || r.code == also) return;
  throw ProbeError(
      r.code / 100 == 4 || r.code / 100 == 5 ? FailureClass::rejected : FailureClass::protocol,
      what + " refused: " + str::printable(r.last_line), r.last_line);
}

class SmtpSender : public Sender {
 public:
  SmtpSender(RunContext& ctx, const DeliveryCheck& dc) : ctx_(ctx), dc_(dc) {}

  Task<void> send(const std::string& token) override {
    const MailUrl& u = dc_.send;
    auto conn = co_await ctx_.open(u.endpoint, u.tls_mode, u.tls, "send " + u.shown);
    smtp::Session smtp(*conn);
    co_await smtp.greeting();
    std::string helo = smtp::default_hello_name();
    co_await smtp.hello(helo);
    if (u.tls_mode == config::TlsMode::starttls) {
      co_await smtp.starttls_command();
      co_await conn->start_tls(u.tls, u.endpoint.host);
      co_await smtp.hello(helo);
    }
    if (!u.username.empty()) {
      if (!conn->tls_active() && !dc_.allow_plaintext)
        throw ProbeError(FailureClass::missing_feature,
                         "not sending the password of " + u.username +
                             " over an unencrypted connection to " + u.shown);
      if (u.masteruser.empty()) {
        co_await smtp.auth(u.username, u.password);
      } else {
        co_await smtp.auth(u.masteruser, u.password, u.username);
      }
    }
    std::string message = probe_message(dc_.from, dc_.to, token, clock::wall());
    smtp::Reply r = co_await smtp.mail_from(dc_.from);
    require_positive(r, "MAIL FROM:<" + dc_.from + ">");
    r = co_await smtp.rcpt_to(dc_.to);
    require_positive(r, "RCPT TO:<" + dc_.to + ">", 251);
    r = co_await smtp.data(message);
    require_positive(r, "the message (DATA)");
    co_await smtp.quit();
    conn->close();
  }

 private:
  RunContext& ctx_;
  const DeliveryCheck& dc_;
};

class FileSender : public Sender {
 public:
  explicit FileSender(const DeliveryCheck& dc) : dc_(dc) {}
  Task<void> send(const std::string& token) override {
    drop_file(dc_.send.path, token, probe_message(dc_.from, dc_.to, token, clock::wall()));
    co_return;
  }

 private:
  const DeliveryCheck& dc_;
};

// The probe message as a file, written under a hidden name and renamed into place, so that a
// reader of the directory sees all of it or nothing (as the drop directory sender does).
class FtpSender : public Sender {
 public:
  FtpSender(RunContext& ctx, const DeliveryCheck& dc) : ctx_(ctx), dc_(dc) {}
  Task<void> send(const std::string& token) override {
    FtpLink link = co_await open_ftp(ctx_, dc_.send, dc_.allow_plaintext, "send " + dc_.send.shown);
    co_await link.ftp->store(".mailwarden-" + token + ".tmp",
                             probe_message(dc_.from, dc_.to, token, clock::wall()),
                             probe_file_name(token));
    co_await link.ftp->quit();
  }

 private:
  RunContext& ctx_;
  const DeliveryCheck& dc_;
};

// One PRIVMSG to the channel. The QUIT waits for the server's goodbye: a server may drop the
// commands of a client that has gone (ngIRCd delays a new client's commands by its penalty).
class IrcSender : public Sender {
 public:
  IrcSender(RunContext& ctx, const DeliveryCheck& dc) : ctx_(ctx), dc_(dc) {}
  Task<void> send(const std::string& token) override {
    IrcLink link =
        co_await open_irc(ctx_, dc_.send, dc_.allow_plaintext, "send " + dc_.send.shown, "mwsend");
    link.irc->privmsg(dc_.send.path, irc_probe_line(token));
    co_await link.irc->quit();
  }

 private:
  RunContext& ctx_;
  const DeliveryCheck& dc_;
};

}  // namespace

std::unique_ptr<Sender> make_sender(RunContext& ctx, const DeliveryCheck& dc) {
  if (dc.send.is_file()) return std::make_unique<FileSender>(dc);
  if (dc.send.is_ftp()) return std::make_unique<FtpSender>(ctx, dc);
  if (dc.send.is_irc()) return std::make_unique<IrcSender>(ctx, dc);
  return std::make_unique<SmtpSender>(ctx, dc);
}

}  // namespace mw::checks::delivery
