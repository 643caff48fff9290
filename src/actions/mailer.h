// Delivers alert mails through the mail servers of `set mailserver`, in failover order, with
// the one SMTP client of the tree (protocols/smtp_client.h). Mails made in the same moment go
// out together: a delivery round opens a few sessions to the first server (one per 25 mails, at
// most 4) that each send mail after mail on one connection; what the first server does not
// take goes to the next one. What no server takes waits (in the event queue when one is set,
// else in memory) and is tried again at the start of every cycle, oldest first. A mail every
// server refuses for good (5xx to MAIL, RCPT or DATA) is dropped and logged as an error.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "actions/event_queue.h"
#include "config/model.h"
#include "net/io_context.h"
#include "util/handles.h"

namespace mw::actions {

class Mailer {
 public:
  explicit Mailer(IoContext& io);
  ~Mailer();
  Mailer(const Mailer&) = delete;
  Mailer& operator=(const Mailer&) = delete;

  // Takes the servers and the event queue of a configuration. The queue directory is opened
  // once (the mails waiting there are sent soon); a reload naming another one takes effect at
  // the next start.
  void configure(const config::Config& config);
  // A new mail: written to the event queue first (when one is set), then sent within 100 ms
  // together with the others made meanwhile. False when it was dropped (the queue is full).
  bool submit(Outgoing mail);
  // A cycle started: mails that wait are tried again.
  void retry();
  // Makes the mails submitted so far durable in the event queue (at once, rather than at the
  // end of this turn of the loop): called before the state file records their state changes.
  void persist() { queue_.sync(); }
  // Stops handing out mails (each session ends after the one it is sending) and calls `done`
  // once no session is left, or after `max_ms`.
  void drain(int64_t max_ms, std::function<void()> done);

  [[nodiscard]] size_t waiting() const { return waiting_.size(); }
  [[nodiscard]] bool busy() const { return flushing_ || evtimer_pending(soon_.get(), nullptr); }
  [[nodiscard]] int64_t accepted() const { return accepted_; }
  [[nodiscard]] int64_t dropped() const { return dropped_; }
  [[nodiscard]] const EventQueue& queue() const { return queue_; }
  // The mails that wait, in the order they were made.
  [[nodiscard]] const std::map<uint64_t, Outgoing>& mails() const { return waiting_; }
  // Called whenever a delivery round ends (tests wait for it).
  void on_round_end(std::function<void()> cb) { round_end_cb_ = std::move(cb); }

 private:
  class Session;
  enum class Outcome { accepted, temporary, permanent, broken };
  struct Sent {
    Outcome outcome = Outcome::temporary;
    std::string line;  // the server's reply
  };

  static void on_soon(evutil_socket_t, short, void* arg);
  static void on_persist(evutil_socket_t, short, void* arg);
  static void on_drain_timeout(evutil_socket_t, short, void* arg);
  void schedule();
  void start_flush();
  void start_round();
  void finish_flush();
  // For sessions: the next mail to send (null when the round has no more), and what came of it.
  Outgoing* next_mail(uint64_t& key);
  void record(uint64_t key, const Sent& sent, const std::string& server);
  void session_done(Session* s, const std::string& error, bool in_flight, uint64_t key);
  void drained();

  IoContext& io_;
  std::vector<config::MailServer> servers_;
  TlsSettings tls_;
  std::string helo_;
  size_t limit_ = 0;
  EventQueue queue_;
  std::string queue_dir_;  // the one configured at the first configure()
  bool queue_tried_ = false;
  std::map<uint64_t, Outgoing> waiting_;  // by order of submission
  uint64_t order_ = 0;
  EventPtr soon_;
  EventPtr persist_;  // the mails of one turn of the loop reach the disk together
  // The delivery round in progress.
  bool flushing_ = false;
  int64_t flush_id_ = 0;
  std::vector<uint64_t> batch_;
  size_t server_index_ = 0;
  std::vector<uint64_t> todo_;
  size_t todo_pos_ = 0;
  std::map<uint64_t, int> refusals_;
  std::map<Session*, std::unique_ptr<Session>> sessions_;
  std::string round_error_;
  int round_accepted_ = 0;
  // Stopping.
  bool stopping_ = false;
  bool destroying_ = false;
  std::function<void()> drained_cb_;
  EventPtr drain_timer_;
  std::function<void()> round_end_cb_;
  int64_t accepted_ = 0;
  int64_t dropped_ = 0;
};

}  // namespace mw::actions
