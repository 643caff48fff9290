#include "actions/mailer.h"

#include <algorithm>

#include "net/connection.h"
#include "net/failure.h"
#include "net/scope.h"
#include "net/task.h"
#include "protocols/smtp_client.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw::actions {
namespace {

constexpr size_t kDefaultLimit = 10000;  // mails that may wait without `slots`
constexpr int64_t kBatchMs = 100;        // mails made within this share a round
constexpr size_t kMailsPerSession = 25;  // a round opens one session per this many mails ...
constexpr size_t kMaxSessions = 4;       // ... up to this many

}  // namespace

// One SMTP session of a delivery round: connect, greeting, EHLO, STARTTLS (required, or when
// offered), AUTH, then one transaction per mail until the round has no more, then QUIT.
class Mailer::Session {
 public:
  Session(Mailer& mailer, const config::MailServer& server)
      : mailer_(mailer),
        server_(server),
        scope_(mailer.io_.base),
        finish_(evtimer_new(mailer.io_.base, &Session::on_finish, this)) {}

  void start() {
    start_detached(run(), [this](std::exception_ptr e) { on_done(e); });
  }
  // Ends the session at once (mailwarden is going away): the coroutine finishes synchronously.
  void cancel() { scope_.cancel(ProbeError(FailureClass::internal, "mailwarden is stopping")); }

 private:
  Task<void> run() {
    ConnectionOptions opts;
    opts.timeout_ms = server_.timeout_ms;
    opts.max_line = 4096;
    opts.log_prefix = "mail " + server_.describe();
    conn_ = std::make_unique<Connection>(mailer_.io_, scope_, std::move(opts));
    // Setting up the session, and each mail after it, gets a few timeouts' worth of time.
    scope_.set_deadline(server_.timeout_ms * 4);
    Endpoint endpoint;
    endpoint.host = server_.host;
    endpoint.port = server_.port;
    co_await conn_->connect(endpoint);
    if (server_.tls_mode == config::TlsMode::implicit)
      co_await conn_->start_tls(server_.tls, server_.host);
    smtp::Session smtp(*conn_);
    co_await smtp.greeting();
    const std::string helo = server_.helo.empty() ? mailer_.helo_ : server_.helo;
    co_await smtp.hello(helo);
    if (!conn_->tls_active() &&
        (server_.tls_mode == config::TlsMode::starttls || smtp.has_extension("STARTTLS"))) {
      co_await smtp.starttls_command();
      co_await conn_->start_tls(server_.tls, server_.host);
      co_await smtp.hello(helo);
    }
    if (!server_.username.empty()) {
      if (!conn_->tls_active() && !server_.allow_plaintext)
        throw ProbeError(FailureClass::missing_feature,
                         "the connection is not encrypted; mailwarden does not send the "
                         "password of " +
                             server_.username + " in clear text (say 'allow plaintext')");
      co_await smtp.auth(server_.username, server_.password);
    }
    for (;;) {
      Outgoing* mail = mailer_.next_mail(key_);
      if (!mail) break;
      in_flight_ = true;
      scope_.set_deadline(server_.timeout_ms * 4);
      Sent sent = co_await send_one(smtp, *mail);
      in_flight_ = false;
      mailer_.record(key_, sent, server_.describe());
      if (sent.outcome == Outcome::broken)
        throw ProbeError(FailureClass::rejected, "server is closing the session: " + sent.line,
                         sent.line);
    }
    try {
      co_await smtp.quit();
    } catch (const ProbeError& e) {
      // Every mail of the session is already accounted for; a rough goodbye changes nothing.
      log::debug("mail %s: %s", server_.describe().c_str(), e.what());
    }
  }

  Task<Sent> send_one(smtp::Session& smtp, const Outgoing& mail) {
    smtp::Reply r = co_await smtp.mail_from(mail.mail_from);
    if (r.cls() == 2) {
      r = co_await smtp.rcpt_to(mail.rcpt_to);
      if (r.cls() == 2) {
        r = co_await smtp.data(mail.message);
        if (r.cls() == 2) {
          Sent sent{Outcome::accepted, r.last_line};
          co_return sent;
        }
      }
    }
    Sent sent{r.cls() == 5 ? Outcome::permanent : Outcome::temporary, r.last_line};
    if (r.code == 421) {
      sent.outcome = Outcome::broken;
      co_return sent;
    }
    // Whatever step failed, the next mail starts from a clean transaction.
    smtp::Reply reset = co_await smtp.rset();
    if (reset.cls() != 2)
      sent.outcome = sent.outcome == Outcome::permanent ? Outcome::permanent : Outcome::broken;
    co_return sent;
  }

  void on_done(std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const ProbeError& pe) {
        error_ = std::string(failure_class_name(pe.cls())) + ": " + pe.what();
      } catch (const std::exception& ex) {
        error_ = std::string("internal: ") + ex.what();
      }
    }
    // Leave the coroutine's callback stack before the session (its scope, its connection) goes.
    timeval now{0, 0};
    evtimer_add(finish_.get(), &now);
  }

  static void on_finish(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Session*>(arg);
    self->conn_.reset();
    self->mailer_.session_done(self, self->error_, self->in_flight_, self->key_);  // deletes self
  }

  Mailer& mailer_;
  const config::MailServer server_;
  Scope scope_;
  std::unique_ptr<Connection> conn_;
  EventPtr finish_;
  uint64_t key_ = 0;
  bool in_flight_ = false;
  std::string error_;
};

Mailer::Mailer(IoContext& io)
    : io_(io),
      helo_(smtp::default_hello_name()),
      soon_(evtimer_new(io.base, &Mailer::on_soon, this)),
      persist_(evtimer_new(io.base, &Mailer::on_persist, this)),
      drain_timer_(evtimer_new(io.base, &Mailer::on_drain_timeout, this)) {}

Mailer::~Mailer() {
  destroying_ = true;
  for (auto& [raw, session] : sessions_) session->cancel();
  sessions_.clear();
  queue_.sync();
}

void Mailer::configure(const config::Config& config) {
  const auto& s = config.settings;
  servers_ = s.mailservers;
  if (servers_.empty()) {
    config::MailServer local;
    local.host = "localhost";
    local.tls = s.tls;
    servers_.push_back(local);
  }
  tls_ = s.tls;
  limit_ = s.eventqueue.slots > 0 ? static_cast<size_t>(s.eventqueue.slots) : kDefaultLimit;
  if (queue_tried_) {
    if (s.eventqueue.dir != queue_dir_)
      log::warning(
          "the event queue directory changed to '%s'; it takes effect when mailwarden "
          "restarts",
          s.eventqueue.dir.c_str());
    return;
  }
  queue_tried_ = true;
  queue_dir_ = s.eventqueue.dir;
  if (queue_dir_.empty()) return;
  std::vector<Outgoing> found;
  std::vector<std::string> problems;
  std::string error;
  if (!queue_.open(queue_dir_, found, problems, error)) {
    log::error("%s; alert mails no server takes wait in memory only", error.c_str());
    return;
  }
  for (const auto& p : problems) log::error("%s", p.c_str());
  if (!found.empty())
    log::info("event queue %s: %zu alert mail(s) waiting from before", queue_dir_.c_str(),
              found.size());
  for (auto& m : found) waiting_.emplace(++order_, std::move(m));
  if (!waiting_.empty()) schedule();
}

bool Mailer::submit(Outgoing mail) {
  if (waiting_.size() >= limit_) {
    ++dropped_;
    log::error("alert mail to %s dropped: %zu mails already wait for a mail server (%s): %s",
               mail.rcpt_to.c_str(), waiting_.size(),
               queue_.is_open() ? "the event queue is full" : "the limit in memory",
               mail.summary.c_str());
    return false;
  }
  if (queue_.is_open()) {
    std::string error;
    if (queue_.put(mail, error)) {
      if (!evtimer_pending(persist_.get(), nullptr)) {
        timeval now{0, 0};
        evtimer_add(persist_.get(), &now);
      }
    } else {
      log::error("%s; the alert mail to %s is kept in memory only", error.c_str(),
                 mail.rcpt_to.c_str());
    }
  }
  waiting_.emplace(++order_, std::move(mail));
  schedule();
  return true;
}

void Mailer::schedule() {
  if (flushing_ || stopping_ || evtimer_pending(soon_.get(), nullptr)) return;
  timeval tv{0, static_cast<suseconds_t>(kBatchMs * 1000)};
  evtimer_add(soon_.get(), &tv);
}

void Mailer::on_soon(evutil_socket_t, short, void* arg) {
  static_cast<Mailer*>(arg)->start_flush();
}

void Mailer::on_persist(evutil_socket_t, short, void* arg) {
  static_cast<Mailer*>(arg)->persist();
}

void Mailer::retry() {
  if (!flushing_ && !waiting_.empty()) start_flush();
}

void Mailer::start_flush() {
  evtimer_del(soon_.get());
  if (flushing_ || stopping_ || waiting_.empty()) return;
  flushing_ = true;
  ++flush_id_;
  queue_.sync();  // the renames of the new mails are durable before any is sent
  batch_.clear();
  refusals_.clear();
  for (auto& [key, mail] : waiting_) {
    batch_.push_back(key);
    mail.flush = flush_id_;
    mail.temporary = false;
  }
  server_index_ = 0;
  start_round();
}

void Mailer::start_round() {
  if (batch_.empty() || stopping_ || server_index_ >= servers_.size()) {
    finish_flush();
    return;
  }
  todo_ = batch_;
  todo_pos_ = 0;
  round_error_.clear();
  round_accepted_ = 0;
  size_t n = std::clamp<size_t>(batch_.size() / kMailsPerSession + 1, 1, kMaxSessions);
  std::vector<Session*> started;
  for (size_t i = 0; i < n; ++i) {
    auto s = std::make_unique<Session>(*this, servers_[server_index_]);
    started.push_back(s.get());
    sessions_.emplace(s.get(), std::move(s));
  }
  for (Session* s : started) s->start();
}

Outgoing* Mailer::next_mail(uint64_t& key) {
  while (!stopping_ && todo_pos_ < todo_.size()) {
    key = todo_[todo_pos_++];
    auto it = waiting_.find(key);
    if (it != waiting_.end()) return &it->second;
  }
  return nullptr;
}

void Mailer::record(uint64_t key, const Sent& sent, const std::string& server) {
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  Outgoing& mail = it->second;
  switch (sent.outcome) {
    case Outcome::accepted:
      log::info("alert mail to %s accepted by %s: %s (%s)", mail.rcpt_to.c_str(), server.c_str(),
                str::printable(sent.line).c_str(), mail.summary.c_str());
      queue_.remove(mail);
      waiting_.erase(it);
      ++accepted_;
      ++round_accepted_;
      return;
    case Outcome::permanent:
      ++refusals_[key];
      log::warning("alert mail to %s refused by %s: %s", mail.rcpt_to.c_str(), server.c_str(),
                   str::printable(sent.line).c_str());
      break;
    case Outcome::temporary:
    case Outcome::broken:
      mail.temporary = true;
      log::warning("alert mail to %s not taken by %s for now: %s", mail.rcpt_to.c_str(),
                   server.c_str(), str::printable(sent.line).c_str());
      break;
  }
  mail.last_error = server + ": " + sent.line;
}

void Mailer::session_done(Session* s, const std::string& error, bool in_flight, uint64_t key) {
  std::unique_ptr<Session> owned;
  if (auto it = sessions_.find(s); it != sessions_.end()) {
    owned = std::move(it->second);
    sessions_.erase(it);
  }
  if (destroying_) return;
  const std::string server = servers_[std::min(server_index_, servers_.size() - 1)].describe();
  if (!error.empty()) {
    if (round_error_.empty()) round_error_ = error;
    if (in_flight) {
      if (auto it = waiting_.find(key); it != waiting_.end()) {
        it->second.temporary = true;
        it->second.last_error = server + ": " + error;
      }
    }
  }
  if (!sessions_.empty()) return;
  // The round on this server is over: what it did not take goes to the next server.
  queue_.sync();
  if (round_accepted_ == 0 && !round_error_.empty())
    log::warning("mail server %s: %s", server.c_str(), round_error_.c_str());
  std::vector<uint64_t> left;
  for (uint64_t k : batch_) {
    auto it = waiting_.find(k);
    if (it == waiting_.end()) continue;
    if (!round_error_.empty() && it->second.last_error.empty())
      it->second.last_error = server + ": " + round_error_;
    left.push_back(k);
  }
  batch_ = std::move(left);
  ++server_index_;
  start_round();
}

void Mailer::finish_flush() {
  // A mail every server refused for good will never go out: it is dropped, loudly.
  size_t kept = 0;
  std::string last_error;
  for (uint64_t k : batch_) {
    auto it = waiting_.find(k);
    if (it == waiting_.end()) continue;
    Outgoing& mail = it->second;
    if (!stopping_ && !mail.temporary && refusals_[k] >= static_cast<int>(servers_.size())) {
      log::error("alert mail to %s dropped: every mail server refused it (%s): %s",
                 mail.rcpt_to.c_str(), mail.last_error.c_str(), mail.summary.c_str());
      queue_.remove(mail);
      waiting_.erase(it);
      ++dropped_;
      continue;
    }
    ++kept;
    if (last_error.empty()) last_error = mail.last_error;
  }
  queue_.sync();
  if (kept > 0)
    log::warning("%zu alert mail(s) not delivered (%s); %s, tried again every cycle", kept,
                 last_error.c_str(),
                 queue_.is_open() ? ("kept in the event queue " + queue_.dir()).c_str()
                                  : "kept in memory until mailwarden stops");
  flushing_ = false;
  batch_.clear();
  todo_.clear();
  if (round_end_cb_) round_end_cb_();
  if (stopping_) {
    drained();
    return;
  }
  // Mails made while this round ran have not been tried yet: they go now, not next cycle.
  for (const auto& [key, mail] : waiting_)
    if (mail.flush < flush_id_) {
      schedule();
      break;
    }
}

void Mailer::drain(int64_t max_ms, std::function<void()> done) {
  stopping_ = true;
  evtimer_del(soon_.get());
  drained_cb_ = std::move(done);
  if (!flushing_) {
    drained();
    return;
  }
  timeval tv{static_cast<time_t>(max_ms / 1000), static_cast<suseconds_t>((max_ms % 1000) * 1000)};
  evtimer_add(drain_timer_.get(), &tv);
}

void Mailer::on_drain_timeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Mailer*>(arg);
  log::warning("stopping while %zu alert mail session(s) still run", self->sessions_.size());
  self->drained();
}

void Mailer::drained() {
  evtimer_del(drain_timer_.get());
  queue_.sync();
  if (!waiting_.empty())
    log::info("%zu alert mail(s) not delivered at stop%s", waiting_.size(),
              queue_.is_open() ? "; they stay in the event queue" : " are lost (no event queue)");
  auto cb = std::move(drained_cb_);
  drained_cb_ = nullptr;
  if (cb) cb();
}

}  // namespace mw::actions
