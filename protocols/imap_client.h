// An IMAP4rev1 client session over a Connection (RFC 3501 / RFC 9051): tagged commands, untagged
// responses with literals, STARTTLS, LOGIN / AUTHENTICATE PLAIN (with an authorization identity),
// SELECT, and a LOGOUT that tolerates what real servers do; for the composite checks also
// pipelined commands, LIST, STATUS, LIST-STATUS (RFC 5819), UID SEARCH / FETCH / STORE /
// EXPUNGE, IDLE (RFC 2177) and APPEND. The imap protocol test, the delivery check and the
// replication check all speak IMAP through this one class.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "net/connection.h"
#include "net/scope.h"
#include "net/task.h"

namespace mw::imap {

struct Reply {
  std::string status;                 // OK, NO or BAD
  std::string line;                   // the whole tagged line
  std::vector<std::string> untagged;  // "* ..." lines, literals inlined
};

// One mailbox of a LIST reply: "* LIST (\\HasNoChildren) "/" INBOX".
struct ListEntry {
  std::vector<std::string> flags;  // as sent: "\\Noselect", "\\HasChildren"
  std::string delimiter;           // empty for NIL
  std::string name;                // decoded from atom, quoted string or literal
  // False for \Noselect and \NonExistent (nothing to STATUS).
  [[nodiscard]] bool selectable() const;
};

// "* STATUS name (MESSAGES 3 UIDNEXT 4)": the items in the server's order, values as sent.
struct StatusEntry {
  std::string mailbox;
  std::vector<std::pair<std::string, std::string>> items;  // upper-case item -> number
  [[nodiscard]] std::optional<std::string> get(const std::string& item) const;
};

// Parse one untagged response line (literals inlined as read_response_line() returns them).
// False when the line is not that response or is malformed.
[[nodiscard]] bool parse_list_response(const std::string& line, ListEntry& out);
[[nodiscard]] bool parse_status_response(const std::string& line, StatusEntry& out);
// "* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL" (RFC 2342): the prefix and delimiter of
// the first personal namespace; both empty when the personal namespace is NIL.
struct Namespace {
  std::string prefix;     // "" (Cyrus' altnamespace) or "INBOX/" (the standard namespace)
  std::string delimiter;  // empty for NIL
};
[[nodiscard]] bool parse_namespace_response(const std::string& line, Namespace& personal);
// "* SEARCH 1 4 9" -> {1, 4, 9}; false when not a SEARCH response.
[[nodiscard]] bool parse_search_response(const std::string& line, std::vector<uint32_t>& out);
// The number of a response code such as "[UIDNEXT 7]" in any line of `reply`.
[[nodiscard]] std::optional<uint32_t> response_code_number(const Reply& reply,
                                                           const std::string& code);

struct Login {
  std::string username;  // the user whose mailbox is used
  std::string password;
  std::string authcid;  // when set: SASL PLAIN, authenticating as this (master/admin) identity
};

class Session {
 public:
  explicit Session(Connection& conn) : conn_(conn) {}

  // Reads the greeting: "* OK" or "* PREAUTH"; a "* BYE" is a rejection, anything else a
  // protocol error.
  Task<void> greeting();
  // CAPABILITY; the set is refreshed after STARTTLS and login.
  Task<void> capability();
  [[nodiscard]] bool has_capability(const std::string& cap) const;
  [[nodiscard]] bool preauth() const { return preauth_; }

  // Sends STARTTLS and reads the go-ahead; the caller then upgrades the connection and calls
  // capability() again.
  Task<void> starttls_command();
  // Logs in, choosing AUTHENTICATE PLAIN (SASL-IR when offered) or LOGIN. `encrypted` says
  // whether the connection is protected; the caller has checked it may send the password.
  Task<void> login(const Login& login);
  Task<Reply> select(const std::string& mailbox);
  // LOGOUT: "* BYE" then tagged OK, "* BYE" then close, tagged OK only, or a close with nothing
  // are all success; tagged NO/BAD, garbage or silence fail.
  Task<void> logout();

  // Sends a command (tag added) and collects the reply. NO and BAD are returned, not thrown.
  Task<Reply> command(const std::string& text);
  // As command(), with `shown` logged instead of the text.
  Task<Reply> command_secret(const std::string& text, const std::string& shown);

  // Pipelining: send() queues a command and returns its tag at once; reply(tag) collects its
  // response later. Replies must be collected in the order the commands were sent.
  [[nodiscard]] std::string send(const std::string& text);
  Task<Reply> reply(const std::string& tag);
  // True when the last login's OK carried the new capabilities (no CAPABILITY needed).
  [[nodiscard]] bool capabilities_current() const { return caps_current_; }

  // LIST "" PATTERN [RETURN (STATUS (ITEMS))] as a command text (RFC 5819 when items given).
  [[nodiscard]] static std::string list_command(const std::string& pattern,
                                                const std::vector<std::string>& status_items = {});
  [[nodiscard]] static std::string status_command(const std::string& mailbox,
                                                  const std::vector<std::string>& items);
  Task<std::vector<ListEntry>> list(const std::string& pattern);

  // UID SEARCH CRITERIA -> UIDs (criteria written by the caller, strings quoted).
  Task<std::vector<uint32_t>> uid_search(const std::string& criteria);
  // The whole message (BODY.PEEK[], so \Seen is not set); nullopt when the UID is gone.
  Task<std::optional<std::string>> uid_fetch_message(uint32_t uid);
  // Marks the UIDs \Deleted and expunges them (UID EXPUNGE with UIDPLUS, else EXPUNGE).
  Task<void> uid_delete(const std::vector<uint32_t>& uids);
  // APPEND a message (LITERAL+ when offered, else waiting for the continuation).
  Task<Reply> append(const std::string& mailbox, const std::string& message);

  // IDLE (RFC 2177): idle_start() sends IDLE and waits for the go-ahead; idle_wait() returns the
  // next untagged line, or nullopt after `ms` without one; idle_done() ends it with DONE.
  Task<void> idle_start();
  Task<std::optional<std::string>> idle_wait(int64_t ms, const Scope& scope);
  Task<void> idle_done();

  [[nodiscard]] Connection& connection() { return conn_; }

  // What a reply may keep in memory: the untagged responses its command asks for (CAPABILITY
  // for CAPABILITY, LIST and STATUS for LIST, ...; others are read and dropped), with their
  // literals, at most this many bytes (a line counts its size plus 32). Larger fails the
  // command with "reply too large". A server that answers with a million "* " lines costs
  // nothing then. The default suits a protocol test; a check that lists a whole server
  // (replication) raises it.
  static constexpr size_t kDefaultKeepBytes = 256 * 1024;
  void set_keep_limit(size_t bytes) { keep_limit_ = bytes; }

 private:
  std::string next_tag();
  // One response line with its literals appended ({N} continuation reads).
  Task<std::string> read_response_line();
  Task<Reply> collect(const std::string& tag);

  // Takes "[CAPABILITY ...]" from a greeting or a tagged OK.
  bool take_capability_code(const std::string& line);

  Connection& conn_;
  std::set<std::string> caps_;
  bool preauth_ = false;
  bool caps_current_ = false;
  int tag_counter_ = 0;
  std::string idle_tag_;
  size_t keep_limit_ = kDefaultKeepBytes;
  std::map<std::string, std::string> verbs_;  // tag -> command verb, until its reply is read
};

// An IMAP quoted string, or a literal-free refusal when the text cannot be quoted (CR, LF, NUL).
[[nodiscard]] bool quote(const std::string& s, std::string& out);

}  // namespace mw::imap
