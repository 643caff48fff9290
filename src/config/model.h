// The immutable model a control file becomes. The parser builds it once; the engine only reads
// it; a reload builds a new one and swaps it in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/settings.h"
#include "net/endpoint.h"
#include "net/failure.h"
#include "net/tls.h"
#include "util/boxed.h"
#include "util/cron.h"
#include "util/handles.h"
#include "util/interned.h"

namespace mw::protocols {
struct ProtocolInfo;
}
namespace mw::checks {
struct Kind;
}

namespace mw::config {

// The name of a control file as locations keep it: one interned copy per distinct name, so that
// a location is a pointer and two ints, whatever the number of tokens (a 10 MiB file of
// two-byte tokens must not hold five million copies of its name).
using FileName = Interned;

struct Location {
  FileName file;
  int line = 0;
  int col = 0;
  [[nodiscard]] std::string str() const {
    // Files that are not control files (the credentials file) report lines without columns.
    if (col == 0) return file + ":" + std::to_string(line);
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

// "director down|up|flush [via socket "PATH" | via address H port N]": a director-admin
// command about the service's address (a backend IP), with exec's rules for when it runs.
enum class DirectorOp { down, up, flush };

struct DirectorActionSpec {
  DirectorOp op = DirectorOp::down;
  std::optional<Endpoint> via;  // none: set director socket (or address)
  int repeat_every = 0;         // cycles; 0: on the state change only
  std::optional<RateLimit> rate;
};

// alert and exec run for any service; start, stop, restart run the service's programs
// (start/stop/restart program = ...); unmonitor and monitor switch its checks off and on;
// director sends a director-admin command.
enum class ActionKind { alert, exec, start, stop, restart, unmonitor, monitor, director };

struct Action {
  ActionKind kind = ActionKind::alert;
  Boxed<ExecSpec> exec;                // set for exec
  Boxed<DirectorActionSpec> director;  // set for director
};

enum class TlsMode { none, implicit, starttls };

// A compiled PCRE2 pattern, shared because models are copied into the engine cheaply.
struct Regex {
  std::string source;
  std::shared_ptr<pcre2_code> code;
};

// One step of a generic dialogue: send "...", expect "REGEX", or a STARTTLS upgrade in place.
struct Step {
  enum class Kind { send, expect, starttls } kind = Kind::send;
  std::string text;  // send: the bytes, escapes resolved, without the \1..\9 references
  // send: capture N of the last matched expect goes in at byte offset `first` of `text`
  std::vector<std::pair<size_t, int>> captures;
  Regex regex;           // expect
  size_t max_bytes = 0;  // expect: 0 = the next line must match; else lines are read until
                         // one matches, at most this many bytes in all
};

// protocol http/https: the request and what its response must be (monit's clauses).
struct HttpOptions {
  std::string path = "/";            // request "/path?query"
  std::string hostheader;            // Host: and the TLS server name; empty: the test's host
  std::vector<std::string> headers;  // with http headers [Name: value, ...], sent as written
  std::string status_op;             // "=", "!=", "<", ">", "<=", ">="; empty: any status < 400
  int status = 0;
  std::optional<Regex> content;  // content = "REGEX" (or != with content_negate)
  bool content_negate = false;
  std::string checksum_type;  // md5, sha1, sha256: of the body
  std::string checksum_hex;   // lower case
  [[nodiscard]] bool needs_body() const { return content || !checksum_hex.empty(); }
};

// Options a protocol may take; each registry row says which ones it accepts.
struct ProbeOptions {
  std::string username;
  std::string password;
  // masteruser: the identity that authenticates with `password` (SASL PLAIN authcid) to act
  // as `username` (the authorization identity)
  std::string authzid;
  std::string credentials;       // name in the credentials file (resolved into the fields above)
  bool allow_plaintext = false;  // a password may cross an unencrypted connection
  bool allow_preauth = false;    // imap: a PREAUTH greeting stands in for the login
  std::string mailbox;           // imap: SELECT this mailbox after login
  std::string mail_from;         // smtp/lmtp: MAIL FROM probe
  std::string rcpt_to;           // smtp/lmtp: RCPT TO probe
  bool expect_reject = false;    // smtp: the RCPT must be refused (open relay test)
  std::string helo;              // smtp/lmtp: name for EHLO/LHLO
  std::vector<Step> steps;       // generic send/expect
  Boxed<HttpOptions> http;       // http, https: made by the first HTTP clause
  [[nodiscard]] bool has_login() const { return !username.empty(); }
  // The HTTP request to make: the clauses given, else the defaults (GET /, any status < 400).
  [[nodiscard]] const HttpOptions& http_request() const {
    static const HttpOptions defaults;
    return http ? *http : defaults;
  }
};

// What one kind of check needs at run time. Each kind (src/checks/<kind>/) derives its own from
// it; the parser builds it once and nothing changes it afterwards.
struct Spec {
  virtual ~Spec() = default;
};

// "if failed [host H] port N ... protocol P ..." or "if failed unixsocket PATH ...".
struct PortCheck : Spec {
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
  // check director: each backend the run took down (or brought up) is one event for the
  // rule's actions (details["events"]), with MAILWARDEN_BACKEND in an exec's environment.
  backend_down,
  backend_up,
  compare,  // Rule::compare: a measured value against a limit, or changed since last run
};

// `if cpu > 80%`, `if space usage >= 90%`, `if changed checksum`, `if status != 0`: a value a
// check measured, by name, against a threshold in the metric's own unit (the parser converts
// "MB", "%", "minutes"). Numbers come from CheckResult::metrics, texts (a checksum, a mode, a
// mount's flags) from CheckResult::details. A value the run did not measure fails no rule.
enum class CompareOp { gt, lt, ge, le, eq, ne, changed };
struct Comparison {
  std::string metric;  // "cpu_percent", "memory_kb", "space_percent", "checksum", ...
  CompareOp op = CompareOp::gt;
  double threshold = 0;
  std::string text;      // eq/ne against a text value (an expected checksum, "0644")
  bool is_text = false;  // compare details[metric] as text
  std::string shown;     // as written, for messages: "cpu usage > 80%"
  std::string unit;      // how the value is shown: "%", " kB", " s", ""
  FailureClass cls = FailureClass::resource;  // the event a failing rule raises
};

// How a failed rule shows in Nagios plugin output: CRITICAL unless "as warning [on { CLASS,
// ... }]" says WARNING (for every failure, or only for failures of the classes listed).
struct Severity {
  bool warning = false;
  std::vector<FailureClass> only;  // empty: every class
};

struct Rule {
  Location where;
  Condition condition = Condition::failed;
  int64_t threshold = 0;
  Boxed<Comparison> compare;  // set for Condition::compare
  EventRule fail_rule;
  EventRule ok_rule;
  std::vector<Action> fail_actions;
  std::vector<Action> ok_actions;
  Severity severity;
};

// A server or drop directory named by a URL in a composite check: "imaps://host:993/INBOX",
// "smtp+starttls://user%40example.net:pw@host:587", "file:///var/spool/probe".
struct MailUrl {
  std::string shown;   // for people and logs: scheme://user@host:port/path, never the password
  std::string scheme;  // smtp smtps smtp+starttls imap imaps imap+starttls pop3 pop3s file
                       // ftp ftps (AUTH TLS) irc irctls
  Endpoint endpoint;
  TlsMode tls_mode = TlsMode::none;
  TlsSettings tls;  // set ssl options merged with the check's own block
  std::string username;
  std::string password;
  std::string masteruser;  // from a credentials entry: authenticates to act as `username`
  std::string path;        // imap: the mailbox (default INBOX); file: the directory;
                           // ftp: the directory (empty: where the login lands); irc: the channel
  [[nodiscard]] bool is_file() const { return scheme == "file"; }
  [[nodiscard]] bool is_ftp() const { return scheme.rfind("ftp", 0) == 0; }
  [[nodiscard]] bool is_irc() const { return scheme.rfind("irc", 0) == 0; }
};

// check replication: the reference server's mailboxes compared with each replica's by STATUS.
struct ReplicationCheck : Spec {
  std::vector<MailUrl> servers;  // [0] is the reference
  std::string admin;             // logs in as each user by proxy authorization
  std::string password;
  std::string credentials;         // entry of the credentials file (resolved into the two above)
  std::vector<std::string> users;  // empty with all_users
  bool all_users = false;          // users guessed from the reference's user/... mailboxes
  bool all_mailboxes = false;      // else INBOX only
  std::vector<std::string> status_items;  // upper case, compared in this order
  int64_t budget_ms = 0;                  // 0: every user each run
  bool failed_only = false;               // recheck only users with a mailbox out of sync
  int concurrency = 8;                    // users checked at once
  bool allow_plaintext = false;
};

// check delivery: a probe message sent one way and watched for on the other.
struct DeliveryCheck : Spec {
  MailUrl send;
  MailUrl receive;
  std::string send_credentials;  // entries of the credentials file, resolved into the URLs
  std::string receive_credentials;
  std::string from;
  std::string to;
  int64_t within_ms = 60000;  // how long to wait for the message to arrive
  bool keep_messages = false;
  bool allow_plaintext = false;
};

// check director: the backends a director lists, polled like port tests, taken out of the pool
// after `retry` failed polls and `rapid_fails` failures among `rapid_rounds` quick polls.
enum class DirectorRelease { reset_users, flush, none };  // after HOST-DOWN

// A test account for one backend (credentials entries with `address = "IP"`).
struct DirectorAccount {
  std::string username;
  std::string password;
  std::string masteruser;
  std::string servername;  // the name its certificate carries (backends are listed by IP)
};

struct DirectorPoll {
  PortCheck port;            // endpoint.host is empty: each backend's IP, at run time
  std::string label;         // "imap:143", "imaps:993", "lmtp:24+starttls"
  int64_t timeout_ms = 0;    // inactivity timeout of its waits
  bool per_backend = false;  // "credentials by address": DirectorCheck::accounts
};

struct DirectorCheck : Spec {
  Endpoint admin;  // the director-admin unix socket, or a doveadm TCP listener
  std::vector<DirectorPoll> polls;
  int retry = 3;          // failed polls in a row before rapid mode
  int rapid_rounds = 10;  // quick polls in rapid mode
  int rapid_fails = 8;    // of which this many must fail for HOST-DOWN
  int64_t rapid_every_ms = 1000;
  int max_down = 1;  // backends down at once (any reason), or a percentage of them
  bool max_down_percent = false;
  DirectorRelease release = DirectorRelease::reset_users;
  bool dry_run = false;
  std::map<std::string, DirectorAccount> accounts;  // by backend IP
};

// ---- local service types (src/checks/<kind>/) ------------------------------------------------

// check process NAME with pidfile PATH | matching "REGEX": /proc read each cycle.
struct ProcessCheck : Spec {
  std::string pidfile;  // empty: `matching`
  Regex matching;       // against the command line (arguments joined by spaces)
};

// check program NAME with path "CMD [ARGS]" [with timeout N seconds]: run through /bin/sh -c,
// output bounded; its exit status, output and content matches are measured.
struct ProgramCheck : Spec {
  std::string command;
  std::vector<Regex> content;  // `if content = "REGEX"`: metric "content_N" counts matches
};

// check file|directory|fifo NAME with path PATH.
enum class FileType { file, directory, fifo };
struct FileCheck : Spec {
  std::string path;
  FileType type = FileType::file;
  std::string hash;            // "sha256", "md5", or empty: not hashed
  std::vector<Regex> content;  // `if content = "REGEX"`: new lines since the last run
};

// check filesystem|device NAME with path PATH (a mount point, or a block device).
struct FilesystemCheck : Spec {
  std::string path;
};

// check system NAME: load, cpu, memory, swap, uptime of the machine.
struct SystemCheck : Spec {};

// if failed ping|icmp|ping4|ping6 [count N] [size N] [timeout N s]: ICMP echo to the host.
struct PingCheck : Spec {
  std::string host;
  AddressFamily family = AddressFamily::any;  // ping4 / ping6
  int count = 3;                              // echo requests per run
  int size = 56;                              // payload bytes of each request
};

// Something the engine runs each cycle. Its kind (one row of src/checks/registry.cc) says how it
// runs and how it is shown; its spec is that kind's own part of the model.
struct Check {
  Location where;
  std::string id;             // stable key for state across restarts and reloads
  std::string description;    // shown to people: "imaps 127.0.0.1:993"
  int64_t timeout_ms = 5000;  // inactivity timeout of every wait
  int64_t deadline_ms = 0;    // the whole run, retries excluded
  int retry = 0;              // extra attempts within one cycle before it counts as failed
  const checks::Kind* kind = nullptr;
  std::shared_ptr<Spec> spec;
  std::vector<Rule> rules;

  // The spec as the kind's own type; null when the check is of another kind.
  template <class T>
  [[nodiscard]] const T* as() const {
    return dynamic_cast<const T*>(spec.get());
  }
  template <class T>
  [[nodiscard]] T* as() {
    return dynamic_cast<T*>(spec.get());
  }
};

enum class ServiceKind {
  host,
  replication,
  delivery,
  director,
  process,
  program,
  file,
  directory,
  fifo,
  filesystem,
  system
};

// `if N restarts within M cycles then ACTION`: the service's starts and restarts (by its rules
// or by the control verbs) counted over the last M cycles.
struct RestartLimit {
  Location where;
  int restarts = 1;
  int cycles = 1;
  std::vector<Action> actions;  // timeout (= unmonitor), unmonitor, alert, exec
};

// ---- alerts (parse_alert.cc, src/actions/) -------------------------------------------------

// A mail server alerts go through; `set mailserver a, b` lists them in failover order.
struct MailServer {
  Location where;
  std::string host;
  uint16_t port = 25;
  // none: STARTTLS when the server offers it; starttls ("using tls"): required; implicit
  // ("using ssl"): TLS from the first byte.
  TlsMode tls_mode = TlsMode::none;
  std::string username;
  std::string password;
  bool allow_plaintext = false;  // the password may cross an unencrypted connection
  int64_t timeout_ms = 30000;    // inactivity timeout of every wait
  std::string helo;              // EHLO name; empty: this host's name
  TlsSettings tls;               // set ssl options merged with its own "with options { ... }"
  [[nodiscard]] std::string describe() const {
    Endpoint e;
    e.host = host;
    e.port = port;
    return e.describe();
  }
};

// The parts of an alert mail; an unset part falls back to `set mail-format`, then to the default.
struct MailFormat {
  std::optional<std::string> from;
  std::optional<std::string> reply_to;
  std::optional<std::string> subject;
  std::optional<std::string> message;
};

// The variables a mail-format may use.
inline const std::vector<std::string>& mail_format_variables() {
  static const std::vector<std::string> names = {"EVENT", "SERVICE",     "DATE",
                                                 "HOST",  "DESCRIPTION", "ACTION"};
  return names;
}

// Which events a recipient gets ("[not] on { failed, timeout, ... }"), resolved at parse time:
// the state change (failed or succeeded) and what failed (the failure class). A recovery counts
// with the class of the failure it ends.
struct AlertEvents {
  std::vector<std::string> names;  // as written, lower case; empty: every event
  bool negate = false;             // "not on { ... }"
  bool on_failed = true;
  bool on_succeeded = true;
  bool any_class = true;
  std::vector<FailureClass> classes;  // when !any_class
};

struct AlertRecipient {
  Location where;
  std::string address;
  AlertEvents events;
  int reminder_cycles = 0;  // a failure is mailed again every N cycles while it lasts; 0: never
  MailFormat format;        // this recipient's own parts
};

// `set eventqueue basedir DIR [slots N]`: alert mails no server took wait on disk.
struct EventQueueSettings {
  std::string dir;  // empty: they wait in memory only, lost when mailwarden stops
  int slots = 0;    // at most this many wait (0: the default limit)
};

// When a service is checked: "every N cycles", "every \"CRON\"", "not every \"CRON\"".
struct ServiceSchedule {
  enum class Kind { always, cycles, cron, not_cron } kind = Kind::always;
  int cycles = 1;      // cycles: checked in the first cycle, then every Nth
  std::string source;  // cron: as written
  CronSpec cron;
};

// monit's "mode" and "onreboot": kept for the control verbs of local services; a check host is
// always checked actively.
enum class ServiceMode { active, passive, manual };
enum class OnReboot { start, nostart, laststate };

struct Service {
  Location where;
  std::string name;
  ServiceKind kind = ServiceKind::host;
  std::string type = "host";  // the word after "check": host, replication, ...
  std::string address;
  std::vector<std::string> groups;
  Boxed<ServiceSchedule> schedule;  // set by "every ..."; when() reads it
  // The schedule: "every ..." as written, else every cycle.
  [[nodiscard]] const ServiceSchedule& when() const {
    static const ServiceSchedule always;
    return schedule ? *schedule : always;
  }
  // "depends on A, B": not checked (and so never alerting) while a service it depends on is
  // failing. Names of services the file defines; cycles are refused by the parser.
  std::vector<std::string> depends;
  ServiceMode mode = ServiceMode::active;
  OnReboot onreboot = OnReboot::start;
  std::vector<Check> checks;
  std::vector<AlertRecipient> alerts;  // its own "alert ADDR ..." (on top of set alert)
  std::vector<std::string> noalerts;   // "noalert ADDR": a set alert recipient it does not mail
  // start/stop/restart program = "CMD" [as uid U [gid G]] [with timeout N seconds]
  // Boxed (one pointer when unset, see util/boxed.h): most services have no programs, and a
  // service's size counts 10,000 times over in a large configuration.
  Boxed<ExecSpec> start_program;
  Boxed<ExecSpec> stop_program;
  Boxed<ExecSpec> restart_program;  // else a restart is stop, then start
  std::vector<RestartLimit> restart_limits;
};

enum class LogSink { stderr_stream, file, syslog };

// ---- set httpd (served by the HTTP interface) -----------------------------------------------

// "allow 10.0.0.0/8", "allow ::1", "allow localhost": a numeric network, or a host name that is
// resolved when the interface starts.
struct HttpdNetwork {
  std::string shown;   // as written
  int family = 0;      // AF_INET, AF_INET6; 0: `host` is a name
  uint8_t addr[16]{};  // network address, host bits cleared
  int prefix = 0;      // bits
  std::string host;    // a name
};

// "allow [cleartext|crypt|md5] /path/htpasswd [USER ...]"
struct HttpdHtpasswd {
  enum class Hash { cleartext, crypt, md5 } hash = Hash::cleartext;
  std::string path;                // absolute
  std::vector<std::string> users;  // empty: every user of the file
};

struct HttpdAllow {
  enum class Kind { user, network, group, htpasswd } kind = Kind::user;
  Location where;
  std::string user;      // user: "allow user:password"
  std::string password;  // a secret: the control file must be 0600
  HttpdNetwork network;
  std::string group;  // group: "allow @group" (a Unix group, checked with PAM by monit)
  HttpdHtpasswd htpasswd;
  bool read_only = false;
};

struct HttpdSettings {
  Location where;
  bool enabled = false;  // set httpd was given
  uint16_t port = 0;     // 0: no TCP listener (unixsocket only)
  // mailwarden listens on loopback unless told otherwise (monit: every address).
  std::string address = "127.0.0.1";
  std::string unix_socket;  // absolute path; empty: none
  std::optional<uid_t> socket_uid;
  std::optional<gid_t> socket_gid;
  int socket_permission = 0660;
  bool ssl = false;
  std::string pemfile;  // certificate (and key, when pemkey is not given)
  std::string pemchain;
  std::string pemkey;
  std::string clientpemfile;  // clients must present a certificate signed by these CAs
  bool allow_selfsigned_clients = false;
  bool signature = true;   // the server's name and version in pages and headers
  bool read_only = false;  // every user read-only
  std::vector<HttpdAllow> allow;
};

// `set user NAME`: the user the daemon becomes once started as root (src/daemon/privileges.h).
struct RunAs {
  Location where;
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

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
  int handshakes = 64;                  // TLS handshakes in flight at once
  int start_rate = 2000;                // checks started per second (0: no pacing)
  std::vector<MailServer> mailservers;  // empty: localhost port 25
  MailFormat mail_format;
  std::vector<AlertRecipient> alerts;  // set alert: recipients of every service
  EventQueueSettings eventqueue;
  std::optional<Endpoint> director_admin;  // set director socket "PATH" | address H port N
  HttpdSettings httpd;
  std::optional<RunAs> user;                // set user
  http::AlertmanagerSettings alertmanager;  // set alertmanager: alert events posted there too
};

struct Config {
  Settings settings;
  // A deque: 10,000 services grow without a copy at twice their size, and a service stays where
  // it is while the parser adds the next.
  std::deque<Service> services;
  std::vector<std::string> files;     // every file read (the control file and its includes)
  std::vector<std::string> warnings;  // "FILE:LINE:COL: warning: ...", logged when loaded
};

}  // namespace mw::config
