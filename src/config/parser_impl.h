// The parser's private interface, shared by the files that each parse one family of
// statements: parser.cc (files, includes, the statement loop, finishing the model),
// parse_set.cc ("set ..."), parse_host.cc ("check host" and its port tests). A new statement is
// a method here, a row in a dispatch table in parser.cc, and a file of its own.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/credentials.h"
#include "config/diagnostics.h"
#include "config/lexer.h"
#include "config/model.h"
#include "util/strings.h"

namespace mw::config::parsing {

constexpr int kMaxIncludeDepth = 16;
constexpr size_t kMaxIncludedFiles = 1024;
constexpr size_t kMaxTokens = 1024 * 1024;  // all files together, includes spliced in
constexpr int kMaxCycles = 64;
constexpr int64_t kMaxDurationMs = 30LL * 86400 * 1000;

// Thrown after an error has been recorded; the statement loop resynchronises.
struct Abandon {};

// TLS options as written in one block; merged over `set ssl options` once the file is read,
// because a global block may come after the checks it applies to.
struct TlsOverrides {
  std::optional<bool> verify;
  std::optional<bool> allow_selfsigned;
  std::optional<std::string> ca_file;
  std::optional<std::string> ca_path;
  std::optional<TlsVersion> min_version;
  std::optional<std::string> server_name;
  std::optional<std::string> ciphers;  // accepted; OpenSSL's defaults are used (see warning)

  void apply_to(TlsSettings& s) const {
    if (verify) s.verify = *verify;
    if (allow_selfsigned) s.allow_selfsigned = *allow_selfsigned;
    if (ca_file) s.ca_file = *ca_file;
    if (ca_path) s.ca_path = *ca_path;
    if (min_version) s.min_version = *min_version;
    if (server_name) s.server_name = *server_name;
  }
};

struct PendingTls {
  size_t service;
  size_t check;
  TlsOverrides overrides;
};

// "; did you mean 'X'?" when `word` is a near miss of one of `options`, else empty.
[[nodiscard]] std::string did_you_mean(const std::string& word,
                                       const std::vector<std::string>& options);
// 'a', 'b' or 'c'
[[nodiscard]] std::string one_of(const std::vector<std::string>& options);

// Everything is public: the parse hooks of the check kinds (src/checks/registry.cc, one row per
// service type) read their statements with the same primitives as the rest of the parser. This
// header is the parser's own; nothing outside the parser and the kinds' hooks includes it.
// Gives back what the vectors of the model hold beyond their size: they grew by doubling while
// the files were read, and 10,000 checks would otherwise keep that room for good.
void shrink_to_fit(Config& cfg);

class Parser {
 public:
  explicit Parser(Diagnostics& diags) : d_(diags) {}

  std::shared_ptr<const Config> run(const std::string& path) {
    parse_one_file(path, Location{path, 0, 0});
    finalize();
    shrink_to_fit(cfg_);
    for (const auto& w : d_.warnings()) cfg_.warnings.push_back(w.warning_str());
    auto config = std::make_shared<const Config>(std::move(cfg_));
    if (!d_.empty()) {
      partial_ = config;
      return nullptr;
    }
    return config;
  }
  // What was read of a file with errors (status and quit still need its pid and state files).
  [[nodiscard]] std::shared_ptr<const Config> partial() const { return partial_; }

  // ---- token access -------------------------------------------------------------------------

  const Token& peek(size_t ahead = 0) const {
    size_t i = std::min(pos_ + ahead, toks_->size() - 1);
    return (*toks_)[i];
  }
  Token next() {
    Token t = peek();
    if (pos_ < toks_->size() - 1) ++pos_;
    return t;
  }
  static bool is_kw(const Token& t, std::string_view kw) {
    return t.kind == Token::Kind::word && str::iequals(t.text, kw);
  }
  bool at(std::string_view kw) const { return is_kw(peek(), kw); }
  bool accept(std::string_view kw) {
    if (!at(kw)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(const Location& where, const std::string& message) {
    d_.error(where, message);
    throw Abandon{};
  }
  [[noreturn]] void fail_expected(const std::string& what,
                                  const std::vector<std::string>& words = {}) {
    const Token& t = peek();
    std::string hint = t.kind == Token::Kind::word ? did_you_mean(t.text, words) : "";
    fail(t.where, "expected " + what + ", got " + describe(t) + hint);
  }
  void expect_kw(std::string_view kw, const std::string& context) {
    if (accept(kw)) return;
    fail_expected("'" + std::string(kw) + "' " + context, {std::string(kw)});
  }

  // A name, path or address: a quoted string or a bare word.
  std::string value(const std::string& what) {
    const Token& t = peek();
    if (t.kind == Token::Kind::string || t.kind == Token::Kind::word ||
        t.kind == Token::Kind::number) {
      std::string v = t.kind == Token::Kind::string ? unescape_plain(t.text) : t.text;
      next();
      return v;
    }
    fail_expected(what);
  }
  std::string string_value(const std::string& what) {
    const Token& t = peek();
    if (t.kind != Token::Kind::string) fail_expected(what + " in double quotes");
    next();
    return unescape_plain(t.text);
  }
  long long number(const std::string& what, long long min, long long max) {
    const Token& t = peek();
    if (t.kind != Token::Kind::number) fail_expected(what);
    if (t.number < min || t.number > max)
      fail(t.where, what + " must be between " + std::to_string(min) + " and " +
                        std::to_string(max) + ", got " + t.text);
    next();
    return t.number;
  }
  // N [ms|s|min|h]; a bare number is seconds.
  int64_t duration_ms(const std::string& what, int64_t min_ms) {
    Location where = peek().where;
    long long n = number(what, 0, 100000000);
    int64_t factor = 1000;
    const Token& unit = peek();
    if (unit.kind == Token::Kind::word) {
      std::string u = str::lower(unit.text);
      if (u == "ms" || u == "millisecond" || u == "milliseconds") {
        factor = 1;
      } else if (u == "s" || u == "sec" || u == "secs" || u == "second" || u == "seconds") {
        factor = 1000;
      } else if (u == "m" || u == "min" || u == "mins" || u == "minute" || u == "minutes") {
        factor = 60000;
      } else if (u == "h" || u == "hour" || u == "hours") {
        factor = 3600000;
      } else {
        u.clear();
      }
      if (!u.empty()) next();
    }
    int64_t ms = n * factor;
    if (ms < min_ms) fail(where, what + " must be at least " + std::to_string(min_ms) + " ms");
    if (ms > kMaxDurationMs) fail(where, what + " must be at most 30 days");
    return ms;
  }

  const Token& prev() const { return (*toks_)[pos_ == 0 ? 0 : pos_ - 1]; }
  // The file the statement being read is written in (relative paths are resolved against it).
  const std::string& current_file() const { return prev().where.file; }
  // Records a warning: the file is accepted, -t and the log say it.
  void warn(const Location& where, const std::string& message) { d_.warning(where, message); }
  std::string string_or_word(const std::string& what) { return value(what); }

  // ---- files and statements -----------------------------------------------------------------
  // ---- port tests ---------------------------------------------------------------------------
  struct PortClauses {
    std::optional<Location> port_at, unix_at, protocol_at, starttls_at, ssl_at, cert_at;
    std::optional<Location> password_at, masteruser_at, mailbox_at, steps_at;
    std::optional<Location> credentials_at, envelope_at, helo_at, step_starttls_at;
    std::optional<Location> preauth_at;
    std::optional<Location> http_at;  // the first http clause (parse_protocol_clauses.cc)
    // monit's clauses of protocols mailwarden only greets (websocket origin, radius secret...):
    // where, the clause, the protocol it belongs to
    struct MonitOnly {
      Location where;
      std::string clause;
      std::string protocol;
    };
    std::vector<MonitOnly> monit_only;
    bool type_ssl = false;
    bool sslauto = false;  // type tcpssl sslauto: see finish_port_test
    bool starttls = false;
    std::optional<TlsOverrides> tls;
  };

  void parse_one_file(const std::string& path, const Location& included_at);
  void parse_statements();
  // After an error: skip to the next statement this parser can start from.
  void resync(size_t statement_start);
  // monit's include is textual: "include PATTERN" is replaced in the token stream by the tokens
  // of the files it names, wherever it stands between statements, clauses or rules. Their
  // locations stay those of the included files.
  void parse_include();
  // "include" at a point where a statement, a clause or a rule may start: spliced in.
  bool splice_include_here();
  // A monit statement that mailwarden reads but has no use for: one warning, the rest of the
  // statement skipped (up to the next set/check/include outside braces).
  void accepted_without_effect(const Location& where, const std::string& statement,
                               const std::string& why);
  void skip_statement_rest();
  // ---- after the whole file -----------------------------------------------------------------
  void finalize();
  // A password (or other secret) was written at `where`: its file must be mode 0600.
  void note_secret(const Location& where);
  void check_secret_file_mode(const std::string& file);
  // ---- credentials (credentials.h) --------------------------------------------------------
  // Records that the statement at `where` logs in with entry `name` of the credentials file.
  // `set credentials "PATH"` may come before or after; finalize() reads the file once and
  // calls `apply` with the entry (or records an error at `where` naming the file and the
  // entry). `apply` runs after every statement is parsed: capture indices into cfg_, never
  // pointers or references, because the vectors grow.
  void use_credentials(const std::string& name, const Location& where,
                       std::function<void(const Credential&)> apply);
  void resolve_credentials();
  // ---- check replication, check delivery (parse_composite.cc) --------------------------------
  friend class CompositeParser;
  void check_composite(ServiceKind kind, const char* statement, std::shared_ptr<Spec> initial,
                       const checks::Kind& check_kind);
  void check_replication();
  void check_delivery();
  void composite_statement(size_t service);  // every statement of their bodies but group
  void finish_composites();                  // in finalize(), once credentials are resolved
  // ---- check director, director actions, set director (parse_director.cc) ------------------
  friend class DirectorParser;
  void check_director();
  void director_statement(size_t service);
  void set_director();
  void parse_director_action(DirectorActionSpec& spec);
  // socket "PATH" | address HOST port N (after "with" / "via", which the lexer drops)
  Endpoint director_endpoint(const std::string& context);
  // ---- monit's local service types (parse_local.cc) -----------------------------------------
  void check_process();
  void check_program();
  void check_file();
  void check_directory();
  void check_fifo();
  void check_filesystem();
  void check_system();
  // The service and its main check (checks[0]: the process, file, ... itself, with its implicit
  // "if does not exist then alert" rule until one is written).
  size_t begin_local_service(ServiceKind kind, const std::string& statement,
                             std::shared_ptr<Spec> spec);
  void file_service(FileType type, const char* statement);
  // `if ...` forms of the local service types and `if N restarts within M cycles`; false (and
  // nothing read) when the condition is another form (a port test).
  bool parse_local_if(size_t index, const Location& where);
  // start/stop/restart program = "CMD" [as uid U] [gid G] [with timeout N seconds]
  void service_program(size_t index);
  ExecSpec parse_program_spec(const std::string& which);
  // for N cycles / N times within M cycles / then ACTIONS / else if succeeded then ACTIONS
  void parse_rule_tail(Rule& rule);
  void add_local_rule(size_t index, Rule rule);
  void skip_to_then_and_warn(const Location& where, const std::string& what);
  // Reads `> 80%`, `>= 200 MB`, `< 5 minutes`, `!= 0`: fills op, threshold, unit, shown.
  struct Quantity {
    double value = 0;
    std::string unit;  // lower case as written: "%", "mb", "minutes", "" ...
    Location where;
  };
  CompareOp parse_operator(const std::string& after);
  Quantity parse_quantity(const std::string& what);
  void finish_local_services();  // in finalize(): default actions, program checks
  std::vector<size_t> local_services_;
  std::set<size_t> explicit_existence_;  // services whose "does not exist" rule is written
  // ---- set ----------------------------------------------------------------------------------
  // One method per "set" form; set_forms() in parser.cc maps keywords to them.
  void set_daemon();
  void set_log();
  [[nodiscard]] std::string path_value(const std::string& what);
  void set_pidfile();
  void set_statefile();
  void set_ssl();
  void set_limits();
  void set_credentials();
  void set_idfile();
  void set_mmonit();
  void set_onreboot();
  void set_init();
  // set httpd (parse_httpd.cc)
  void set_httpd();
  void parse_httpd_allow(HttpdSettings& h);
  void parse_httpd_ssl_block(HttpdSettings& h);
  std::string httpd_file(const std::string& what, bool secret);
  // set ssl { version: ... }: monit's version list, mapped to a minimum version
  void parse_tls_versions(TlsOverrides& o, const Location& where);
  void set_user();
  // ---- HTTP interface, Alertmanager (parse_http.cc) -----------------------------------------
  void set_alertmanager();
  // ---- alerts (parse_alert.cc) ------------------------------------------------------------
  void set_mailserver();
  void set_mail_format();
  void set_alert();
  void set_eventqueue();
  void service_alert(size_t index);
  void service_noalert(size_t index);
  // "ADDR [[not] { events }] [mail-format { ... }] [reminder N cycles]"
  AlertRecipient parse_recipient(const std::string& statement);
  void parse_alert_events(AlertEvents& events);
  void parse_mail_format(MailFormat& format);
  // The text of a mail-format value as written (noise words kept, comments dropped), from
  // token `first` to token `last` (indices into the current tokens).
  std::string source_text(size_t first, size_t last);
  void check_mail_variables(const std::string& text, const Location& where);
  void check_statement_end(const std::string& statement, const std::vector<std::string>& words);
  void accept_colon();
  bool parse_bool(const std::string& what);
  void parse_tls_block(TlsOverrides& o);
  // ---- check host ---------------------------------------------------------------------------
  // Statement dispatch: "set KEYWORD", "check KIND", and the statements of a service body are
  // tables, so a new statement is one row (see parser.cc) and one method.
  using Handler = void (Parser::*)();
  using BodyHandler = void (Parser::*)(size_t service);
  struct Form {
    const char* keyword;
    Handler handler;
  };
  struct BodyForm {
    const char* keyword;
    BodyHandler handler;
  };
  static const std::vector<Form>& set_forms();
  static const std::vector<BodyForm>& service_statements();
  static std::vector<std::string> keywords(const std::vector<Form>& forms);
  void parse_set();
  void parse_check();
  void check_host();
  // Service types mailwarden does not run yet: the body is read (balanced braces, includes
  // spliced) and the service is named, so that a monit file still loads and "depends on" it
  // resolves.
  void check_not_run_yet();
  void parse_group(size_t index);
  void parse_mode(size_t index);
  void parse_service_onreboot(size_t index);
  void parse_depends(size_t index);
  void parse_every(size_t index);
  void parse_not_every(size_t index);
  void parse_schedule(size_t index, bool negated);
  void check_dependencies();  // in finalize(): unknown names, cycles
  // Reads the service name (duplicates are an error) and adds the service; returns its index.
  size_t begin_service(ServiceKind kind, const std::string& statement);
  void skip_service_body();
  void parse_service_body(size_t index, const std::vector<BodyForm>& forms);
  void parse_if(size_t index);
  void parse_port_test(size_t index, const Location& where);
  // if failed ping|icmp|ping4|ping6 ... (parse_ping.cc)
  void parse_ping_test(size_t index, const Location& where);
  void parse_comparison_gt(const std::string& after);
  void parse_certificate_clause(PortCheck& pc);
  // "type tcpssl [sslauto|auto|tlsv12|tlsv13|...]"
  void parse_tcpssl_version(PortClauses& c);
  // "N times within M cycles" or "N cycles" (= for N cycles).
  void parse_cycles(EventRule& rule);
  // After "then": the actions, and monit's "else if succeeded|recovered [rate] then ...".
  void parse_rule_tail(Rule& rule, const std::string& context);
  void parse_actions(std::vector<Action>& out);
  void parse_severity(Severity& out);
  void parse_exec(ExecSpec& e);
  // The clauses actions share: "uid U", "gid G" (after "as"); "repeat every N cycles",
  // "rate limit N per M seconds". False when the next token starts none of them.
  bool parse_run_as(ExecSpec& e);
  bool parse_repeat_or_rate(int& repeat_every, std::optional<RateLimit>& rate);
  gid_t group_of_uid(uid_t uid, const Location& where, const std::string& unknown);
  uid_t resolve_user(const std::string& name);
  gid_t resolve_group(const std::string& name);
  void finish_port_test(size_t index, Check chk, PortCheck pc, const PortClauses& c, Rule rule,
                        std::optional<int64_t> deadline);
  void check_credentials_clause(const PortCheck& pc, const PortClauses& c, TlsMode mode);
  // Generic dialogue steps and the SMTP envelope (parse_host.cc).
  Step parse_send_step();
  Step parse_expect_step();
  Regex compile_regex(const std::string& source, const Location& where);
  std::string envelope_address(const std::string& what);
  void check_dialogue_clauses(const PortCheck& pc, const PortClauses& c, const Location& where);
  // Clauses of one protocol (http: request, status, content, hostheader, checksum, http
  // headers), parse_protocol_clauses.cc. False: `keyword` is none of them.
  bool parse_protocol_clause(const std::string& keyword, const Location& at, PortCheck& pc,
                             PortClauses& c);
  // May drop a login the protocol's dialogue does not use (monit's mysql username/password).
  void check_protocol_clauses(PortCheck& pc, const PortClauses& c);
  static std::string protocol_did_you_mean(const std::string& word,
                                           const std::vector<std::string>& names);
  void assign_check_id(const Service& svc, Check& chk);
  void apply_credentials_later(size_t service, size_t check, const Location& where);
  void apply_credential(size_t service, size_t check, const Location& where, const Credential& c);

  Diagnostics& d_;
  Config cfg_;
  std::vector<Token>* toks_ = nullptr;
  struct Origin {
    std::string real;  // realpath of the included file
    int parent = 0;    // origin of the include statement
  };
  std::vector<Origin> origins_ = {Origin{}};
  size_t total_tokens_ = 0;
  std::set<std::string> services_not_run_;  // check process, file, ... (warned, not run)
  struct DependsAt {
    size_t service;
    std::string name;
    Location where;
  };
  std::vector<DependsAt> depends_at_;  // each name of each "depends on", where it is written
  size_t pos_ = 0;
  std::vector<std::string> include_stack_;
  bool too_many_files_reported_ = false;
  std::map<std::string, Location> service_at_;
  std::set<std::string> files_with_password_;
  std::map<std::string, Location> secret_at_;  // the first secret of each file
  std::shared_ptr<const Config> partial_;
  // Port tests without their own timeout: `set limits { networktimeout }` may come later in the
  // file, so their timeout (and the deadline derived from it) is settled in finalize().
  struct PendingTimeout {
    size_t service;
    size_t check;
    bool deadline_given;
  };
  std::vector<PendingTimeout> pending_timeouts_;
  // set onreboot: the default of the services that do not say "onreboot" themselves.
  std::optional<OnReboot> default_onreboot_;
  std::set<size_t> onreboot_given_;
  std::vector<PendingTls> pending_tls_;
  std::vector<std::pair<size_t, TlsOverrides>> pending_mailserver_tls_;  // "with options {}"
  TlsOverrides global_tls_;
  TlsOverrides alertmanager_tls_;  // set alertmanager ... with ssl options { ... }
  struct PendingCredential {
    std::string name;
    Location where;
    std::function<void(const Credential&)> apply;
  };
  std::vector<PendingCredential> pending_credentials_;
  std::string credentials_path_;  // set credentials "PATH" (relative to its control file)
  Location credentials_at_;
  std::vector<std::shared_ptr<struct CompositeDraft>> composites_;
  // Work for the end of finalize(), once TLS settings and credentials are known (a statement
  // kind that needs them registers it here).
  std::vector<std::function<void()>> finishers_;
  std::vector<std::shared_ptr<struct DirectorDraft>> directors_;
  int64_t default_timeout_ms_ = 5000;
  bool in_service_ = false;
  // start/stop/restart/unmonitor actions act on this service's programs (a local service type)
  bool programs_allowed_ = false;
};

}  // namespace mw::config::parsing
