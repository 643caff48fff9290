// The immutable model a control file becomes. The parser builds it once; the engine only reads
// it; a reload builds a new one and swaps it in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "net/endpoint.h"
#include "net/tls.h"
#include "util/handles.h"

namespace mw::protocols {
struct ProtocolInfo;
}

namespace mw::config {

struct Location {
  std::string file;
  int line = 0;
  int col = 0;
  [[nodiscard]] std::string str() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(col);
  }
};

// "for N cycles" = N times within N cycles; "N times within M cycles".
struct EventRule {
  int times = 1;
  int cycles = 1;
};

struct RateLimit {
  int count = 0;
  int per_seconds = 0;
};

struct ExecSpec {
  std::string command;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  int timeout_s = 0;     // 0: the default (set exec timeout, else 300 s)
  int repeat_every = 0;  // cycles; 0: on the state change only
  std::optional<RateLimit> rate;
};

enum class ActionKind { alert, exec };

struct Action {
  ActionKind kind = ActionKind::alert;
  ExecSpec exec;
};

enum class TlsMode { none, implicit, starttls };

// A compiled PCRE2 pattern, shared because models are copied into the engine cheaply.
struct Regex {
  std::string source;
  std::shared_ptr<pcre2_code> code;
};

// One "send ... expect ..." step of a generic dialogue.
struct Step {
  enum class Kind { send, expect } kind = Kind::send;
  std::string text;  // send: escapes already resolved; may reference \1.. captures
  Regex regex;       // expect
};

// Options a protocol may take; each registry row says which ones it accepts.
struct ProbeOptions {
  std::string username;
  std::string password;
  std::string authzid;           // SASL PLAIN authorization identity (log in as another user)
  std::string credentials;       // name in the credentials file (resolved into the fields above)
  bool allow_plaintext = false;  // a password may cross an unencrypted connection
  std::string mailbox;           // imap: SELECT this mailbox after login
  std::string mail_from;         // smtp/lmtp: MAIL FROM probe
  std::string rcpt_to;           // smtp/lmtp: RCPT TO probe
  bool expect_reject = false;    // smtp: the RCPT must be refused (open relay test)
  std::string helo;              // smtp/lmtp: name for EHLO/LHLO
  std::vector<Step> steps;       // generic send/expect
  [[nodiscard]] bool has_login() const { return !username.empty(); }
};

// "if failed [host H] port N ... protocol P ..." or "if failed unixsocket PATH ...".
struct PortCheck {
  Endpoint endpoint;
  std::string protocol_name;
  const protocols::ProtocolInfo* protocol = nullptr;
  TlsMode tls_mode = TlsMode::none;
  TlsSettings tls;
  ProbeOptions options;
  std::optional<int> cert_min_days;
  std::string cert_sha256;  // lower-case hex, empty: not checked
  std::optional<int64_t> max_response_ms;
};

// What makes a check's rule fail: the run failed, or a measured value passed the threshold.
enum class Condition {
  failed,         // the run failed (any class)
  out_of_sync,    // metrics["out_of_sync"] >= threshold (mailboxes; default 1)
  invalid_users,  // metrics["invalid_users"] >= 1
  latency,        // metrics["latency_ms"] > threshold (ms)
};

struct Rule {
  Location where;
  Condition condition = Condition::failed;
  int64_t threshold = 0;
  EventRule fail_rule;
  EventRule ok_rule;
  std::vector<Action> fail_actions;
  std::vector<Action> ok_actions;
};

// Something the engine runs each cycle: one connection dialogue (or, later, a composite check).
struct Check {
  Location where;
  std::string id;             // stable key for state across restarts and reloads
  std::string description;    // shown to people: "imaps 127.0.0.1:993"
  int64_t timeout_ms = 5000;  // inactivity timeout of every wait
  int64_t deadline_ms = 0;    // the whole run, retries excluded
  int retry = 0;              // extra attempts within one cycle before it counts as failed
  std::variant<PortCheck> what;
  std::vector<Rule> rules;
};

enum class ServiceKind { host };

struct Service {
  Location where;
  std::string name;
  ServiceKind kind = ServiceKind::host;
  std::string address;
  std::vector<std::string> groups;
  std::vector<Check> checks;
};

enum class LogSink { stderr_stream, file, syslog };

struct Settings {
  int cycle_s = 30;
  int start_delay_s = 0;
  LogSink log_sink = LogSink::stderr_stream;
  std::string logfile;
  std::string syslog_facility = "user";
  std::string pidfile;
  std::string statefile;
  TlsSettings tls;  // set ssl options: the default for every TLS connection
  int concurrency = 1024;
  int handshakes = 64;     // TLS handshakes in flight at once
  int start_rate = 2000;   // checks started per second (0: no pacing)
};

struct Config {
  Settings settings;
  std::vector<Service> services;
  std::vector<std::string> files;  // every file read (the control file and its includes)
};

}  // namespace mw::config
