// `set eventqueue basedir DIR [slots N]`: alert mails kept on disk until a mail server takes
// them. Each mail is one file, durable before the first attempt and before the state file
// records the change that made it (temporary file; one sync of the file system for all mails
// made together; rename; fsync of the directory), and deleted only after a server's 250. So a
// mail survives a crash or kill -9 of mailwarden and is sent once after a normal restart. File
// names carry a sequence number: the directory sorted by name is the order the mails were made.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/handles.h"

namespace mw::actions {

// One alert mail on its way: the envelope, the RFC 5322 text, and where it is kept.
struct Outgoing {
  uint64_t seq = 0;
  std::string mail_from;
  std::string rcpt_to;
  std::string summary;     // for the log: the subject
  std::string message;     // CRLF line ends
  std::string file;        // its file in the event queue; empty when kept in memory only
  int64_t flush = 0;       // the last delivery round that tried it
  bool temporary = false;  // a server refused it for now (or the session broke) in that round
  std::string last_error;
};

class EventQueue {
 public:
  EventQueue() = default;
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Opens DIR (made 0700 when missing), takes its lock (one mailwarden per queue), drops
  // temporary files a crash left, and returns the mails waiting there, oldest first. A file
  // that is not a queued mail is renamed NAME.bad and reported in `problems`.
  [[nodiscard]] bool open(const std::string& dir, std::vector<Outgoing>& waiting,
                          std::vector<std::string>& problems, std::string& error);
  [[nodiscard]] bool is_open() const { return static_cast<bool>(dir_fd_); }
  [[nodiscard]] const std::string& dir() const { return dir_; }

  // Writes the mail to a temporary file and gives it its sequence number and file name; it is
  // in the queue once commit() has run.
  [[nodiscard]] bool put(Outgoing& mail, std::string& error);
  // Moves every mail put since the last call into the queue: one sync of the file system for
  // their data (not one fsync per mail: a thousand alerts at once cost one disk flush), then
  // the renames. sync() makes the renames durable.
  void commit();
  [[nodiscard]] bool has_uncommitted() const { return !staged_.empty(); }
  // Deletes the file of a mail a server took (or refused for good).
  void remove(const Outgoing& mail);
  // commit(), then makes the renames and deletions since the last call durable (one fsync of
  // the directory).
  void sync();

  // The file format, exposed for the unit tests.
  [[nodiscard]] static std::string serialize(const Outgoing& mail);
  [[nodiscard]] static bool parse(const std::string& text, Outgoing& mail);

 private:
  std::string dir_;
  UniqueFd dir_fd_;
  UniqueFd lock_fd_;
  uint64_t next_seq_ = 1;
  bool dirty_ = false;
  std::vector<std::pair<std::string, std::string>> staged_;  // temporary name, final name
};

}  // namespace mw::actions
