#include "config/parser.h"

#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "config/lexer.h"
#include "protocols/registry.h"
#include "util/files.h"
#include "util/strings.h"

namespace mw::config {
namespace {

constexpr int kMaxIncludeDepth = 16;
constexpr size_t kMaxIncludedFiles = 1024;
constexpr int kMaxCycles = 64;

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

std::string did_you_mean(const std::string& word, const std::vector<std::string>& options) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const auto& o : options) {
    size_t d = str::edit_distance(word, o);
    if (d < best_distance) {
      best_distance = d;
      best = o;
    }
  }
  size_t limit = word.size() <= 4 ? 1 : 2;
  if (best_distance == 0 || best_distance > limit) return {};
  return "; did you mean '" + best + "'?";
}

std::string one_of(const std::vector<std::string>& options) {
  std::string out;
  for (size_t i = 0; i < options.size(); ++i) {
    if (i) out += i + 1 == options.size() ? " or " : ", ";
    out += "'" + options[i] + "'";
  }
  return out;
}

class Parser {
 public:
  explicit Parser(Diagnostics& diags) : d_(diags) {}

  std::shared_ptr<const Config> run(const std::string& path) {
    parse_one_file(path, Location{path, 0, 0});
    finalize();
    if (!d_.empty()) return nullptr;
    return std::make_shared<const Config>(std::move(cfg_));
  }

 private:
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
  [[noreturn]] void fail_expected(const std::string& what, const std::vector<std::string>& words = {}) {
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
    return ms;
  }

  // ---- files and statements -----------------------------------------------------------------

  void parse_one_file(const std::string& path, const Location& included_at) {
    char resolved[PATH_MAX];
    std::string real = realpath(path.c_str(), resolved) ? std::string(resolved) : path;
    if (std::find(include_stack_.begin(), include_stack_.end(), real) != include_stack_.end()) {
      d_.error(included_at, "include cycle: " + path + " is already being read");
      return;
    }
    if (include_stack_.size() >= kMaxIncludeDepth) {
      d_.error(included_at, "includes nested more than " + std::to_string(kMaxIncludeDepth) +
                                " deep");
      return;
    }
    if (cfg_.files.size() >= kMaxIncludedFiles) {
      d_.error(included_at, "more than " + std::to_string(kMaxIncludedFiles) + " files included");
      return;
    }
    std::string error;
    auto text = files::read(path, error);
    if (!text) {
      d_.error(included_at.line ? included_at : Location{path, 0, 0},
               included_at.line ? "cannot read included file " + error
                                : "cannot read control file " + error);
      return;
    }
    cfg_.files.push_back(path);
    include_stack_.push_back(real);
    auto tokens = lex(path, *text, d_);
    const std::vector<Token>* saved_toks = toks_;
    size_t saved_pos = pos_;
    toks_ = &tokens;
    pos_ = 0;
    current_file_ = path;
    parse_statements();
    toks_ = saved_toks;
    pos_ = saved_pos;
    include_stack_.pop_back();
    current_file_ = include_stack_.empty() ? "" : path;
  }

  void parse_statements() {
    while (peek().kind != Token::Kind::end && !d_.too_many()) {
      size_t start = pos_;
      try {
        if (at("set")) {
          parse_set();
        } else if (at("check")) {
          parse_check();
        } else if (at("include")) {
          parse_include();
        } else {
          fail_expected("'set', 'check' or 'include' at the start of a statement",
                        {"set", "check", "include"});
        }
      } catch (const Abandon&) {
        resync(start);
      }
    }
  }

  // After an error: skip to the next statement this parser can start from.
  void resync(size_t statement_start) {
    if (pos_ == statement_start && peek().kind != Token::Kind::end) next();
    while (peek().kind != Token::Kind::end) {
      if (at("set") || at("check") || at("include")) return;
      if (in_service_ && (at("if") && !is_kw(prev(), "else"))) return;
      if (in_service_ && at("group")) return;
      if (in_service_ && (at("alert") || at("noalert")) && !is_kw(prev(), "then")) return;
      next();
    }
  }
  const Token& prev() const { return (*toks_)[pos_ == 0 ? 0 : pos_ - 1]; }

  void parse_include() {
    Location where = next().where;
    std::string pattern = value("a file name or glob pattern after 'include'");
    if (pattern.empty()) fail(where, "empty include pattern");
    std::string full = pattern[0] == '/' ? pattern : files::dirname(current_file_) + "/" + pattern;
    glob_t g{};
    int rc = glob(full.c_str(), GLOB_ERR, nullptr, &g);
    std::vector<std::string> matches;
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    bool wildcard = pattern.find_first_of("*?[") != std::string::npos;
    if (matches.empty() && !wildcard) fail(where, "included file " + full + " does not exist");
    std::sort(matches.begin(), matches.end());
    std::string saved_file = current_file_;
    bool saved_in_service = in_service_;
    in_service_ = false;
    for (const auto& m : matches) {
      struct stat st;
      if (stat(m.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
      parse_one_file(m, where);
      current_file_ = saved_file;
    }
    in_service_ = saved_in_service;
  }

  // ---- set ----------------------------------------------------------------------------------

  void parse_set() {
    Location where = next().where;
    static const std::vector<std::string> forms = {"daemon", "log", "logfile", "pidfile",
                                                   "statefile", "ssl", "limits"};
    if (accept("daemon")) {
      cfg_.settings.cycle_s = static_cast<int>(number("the cycle length in seconds", 1, 86400));
      if (accept("start")) {
        expect_kw("delay", "after 'start'");
        cfg_.settings.start_delay_s = static_cast<int>(number("the start delay in seconds", 0, 86400));
      }
    } else if (accept("log") || accept("logfile")) {
      if (accept("syslog")) {
        cfg_.settings.log_sink = LogSink::syslog;
        if (accept("facility")) cfg_.settings.syslog_facility = str::lower(value("a syslog facility"));
      } else {
        cfg_.settings.log_sink = LogSink::file;
        cfg_.settings.logfile = value("a log file path or 'syslog'");
      }
    } else if (accept("pidfile")) {
      cfg_.settings.pidfile = value("a pid file path");
    } else if (accept("statefile")) {
      cfg_.settings.statefile = value("a state file path");
    } else if (accept("ssl")) {
      accept("options");
      parse_tls_block(global_tls_);
    } else if (accept("limits")) {
      parse_limits();
    } else {
      (void)where;
      fail_expected("what to set (" + one_of(forms) + ")", forms);
    }
  }

  void parse_limits() {
    if (peek().kind != Token::Kind::lbrace) fail_expected("'{' after 'set limits'");
    next();
    static const std::vector<std::string> keys = {"connections", "networktimeout"};
    while (peek().kind != Token::Kind::rbrace) {
      if (peek().kind == Token::Kind::end) fail_expected("'}' to close 'set limits {'");
      if (peek().kind == Token::Kind::comma) {
        next();
        continue;
      }
      if (accept("connections")) {
        accept_colon();
        cfg_.settings.concurrency = static_cast<int>(number("the connection limit", 1, 100000));
      } else if (accept("networktimeout")) {
        accept_colon();
        default_timeout_ms_ = duration_ms("the network timeout", 100);
      } else {
        fail_expected("a limit (" + one_of(keys) + ")", keys);
      }
    }
    next();
  }

  void accept_colon() {
    if (peek().kind == Token::Kind::colon) next();
  }

  bool parse_bool(const std::string& what) {
    const Token& t = peek();
    static const std::vector<std::string> words = {"enable", "disable", "yes", "no", "true", "false"};
    if (t.kind == Token::Kind::word) {
      std::string v = str::lower(t.text);
      if (v == "enable" || v == "enabled" || v == "yes" || v == "true") {
        next();
        return true;
      }
      if (v == "disable" || v == "disabled" || v == "no" || v == "false") {
        next();
        return false;
      }
    }
    fail_expected(what + " (enable or disable)", words);
  }

  void parse_tls_block(TlsOverrides& o) {
    if (peek().kind != Token::Kind::lbrace) fail_expected("'{' to start the ssl options");
    next();
    static const std::vector<std::string> keys = {"verify", "selfsigned", "cacertificatefile",
                                                  "cacertificatepath", "version", "servername"};
    while (peek().kind != Token::Kind::rbrace) {
      if (peek().kind == Token::Kind::end) fail_expected("'}' to close the ssl options");
      if (peek().kind == Token::Kind::comma) {
        next();
        continue;
      }
      const Token key = peek();
      if (key.kind != Token::Kind::word) fail_expected("an ssl option (" + one_of(keys) + ")", keys);
      std::string k = str::lower(key.text);
      next();
      accept_colon();
      if (k == "verify") {
        o.verify = parse_bool("'verify:'");
      } else if (k == "selfsigned") {
        if (accept("allow")) {
          o.allow_selfsigned = true;
        } else if (accept("reject")) {
          o.allow_selfsigned = false;
        } else {
          fail_expected("'allow' or 'reject' after 'selfsigned:'", {"allow", "reject"});
        }
      } else if (k == "cacertificatefile") {
        o.ca_file = value("a CA certificate file");
      } else if (k == "cacertificatepath") {
        o.ca_path = value("a CA certificate directory");
      } else if (k == "version") {
        std::string v = str::lower(value("a TLS version"));
        if (v == "auto" || v == "tlsv12" || v == "tlsv1.2" || v == "tls1.2") {
          o.min_version = v == "auto" ? TlsVersion::auto_min : TlsVersion::tls12;
        } else if (v == "tlsv13" || v == "tlsv1.3" || v == "tls1.3") {
          o.min_version = TlsVersion::tls13;
        } else {
          fail(key.where, "unsupported TLS version '" + v +
                              "': mailwarden speaks TLS 1.2 and 1.3 (auto, tlsv12, tlsv13)");
        }
      } else if (k == "servername") {
        o.server_name = value("a server name");
      } else {
        fail(key.where, "unknown ssl option '" + key.text + "' (expected " + one_of(keys) + ")" +
                            did_you_mean(key.text, keys));
      }
    }
    next();
  }

  // ---- check host ---------------------------------------------------------------------------

  void parse_check() {
    Location where = next().where;
    static const std::vector<std::string> kinds = {"host"};
    if (!accept("host")) {
      const Token& t = peek();
      static const std::set<std::string> monit_kinds = {"process", "file", "fifo", "filesystem",
                                                        "directory", "system", "program",
                                                        "network"};
      if (t.kind == Token::Kind::word && monit_kinds.count(str::lower(t.text))) {
        Location at_kind = t.where;
        next();
        skip_service_body();
        fail(at_kind, "'check " + str::lower(t.text) +
                          "' is a monit service type that mailwarden does not run; "
                          "mailwarden checks mail services with 'check host'");
      }
      fail_expected("the kind of check ('host')", kinds);
    }
    Service svc;
    svc.where = where;
    svc.kind = ServiceKind::host;
    Location name_at = peek().where;
    svc.name = value("a service name after 'check host'");
    if (svc.name.empty()) fail(name_at, "a service name cannot be empty");
    if (auto it = service_at_.find(svc.name); it != service_at_.end()) {
      d_.error(name_at, "duplicate service name '" + svc.name + "' (first defined at " +
                            it->second.str() + ")");
    } else {
      service_at_[svc.name] = name_at;
    }
    expect_kw("address", "after the service name (check host NAME with address HOST)");
    svc.address = value("a host name or address");
    cfg_.services.push_back(std::move(svc));
    size_t index = cfg_.services.size() - 1;
    in_service_ = true;
    parse_service_body(index);
    in_service_ = false;
  }

  void skip_service_body() {
    while (peek().kind != Token::Kind::end && !at("check") && !at("set") && !at("include"))
      next();
  }

  void parse_service_body(size_t index) {
    static const std::vector<std::string> statements = {"if", "group"};
    while (peek().kind != Token::Kind::end && !at("check") && !at("set") && !at("include") &&
           !d_.too_many()) {
      size_t start = pos_;
      try {
        if (at("if")) {
          parse_if(index);
        } else if (accept("group")) {
          cfg_.services[index].groups.push_back(value("a group name"));
        } else {
          fail_expected("a service statement ('if failed ...', 'group') or a new 'check'",
                        {"if", "group", "check", "set", "include"});
        }
      } catch (const Abandon&) {
        resync(start);
      }
    }
  }

  void parse_if(size_t index) {
    Location where = next().where;
    if (accept("failed")) {
      parse_port_test(index, where);
      return;
    }
    fail_expected("'failed' after 'if'", {"failed"});
  }

  // ---- port tests ---------------------------------------------------------------------------

  struct PortClauses {
    std::optional<Location> port_at, unix_at, protocol_at, starttls_at, ssl_at, cert_at;
    std::optional<Location> password_at, masteruser_at, mailbox_at, steps_at;
    bool type_ssl = false;
    bool starttls = false;
    std::optional<TlsOverrides> tls;
  };

  void parse_port_test(size_t index, const Location& where) {
    Service& svc = cfg_.services[index];
    Check chk;
    chk.where = where;
    chk.timeout_ms = default_timeout_ms_;
    PortCheck pc;
    pc.endpoint.host = svc.address;
    PortClauses c;
    Rule rule;
    rule.where = where;
    std::optional<int64_t> deadline;
    static const std::vector<std::string> clauses = {
        "host",     "port",       "unixsocket", "ipv4",         "ipv6",        "type",
        "ssl",      "tls",        "protocol",   "starttls",     "username",    "password",
        "masteruser", "credentials", "allow",    "select",       "timeout",     "deadline",
        "retry",    "certificate", "for",       "then",         "send",        "expect",
        "responsetime"};
    for (;;) {
      const Token& t = peek();
      if (is_kw(t, "then")) break;
      if (t.kind == Token::Kind::number) {
        parse_cycles(rule.fail_rule);
        continue;
      }
      if (t.kind != Token::Kind::word)
        fail_expected("a port test clause or 'then'", {});
      std::string k = str::lower(t.text);
      Location at_kw = t.where;
      next();
      if (k == "host") {
        pc.endpoint.host = value("a host after 'host'");
      } else if (k == "port") {
        c.port_at = at_kw;
        pc.endpoint.port = static_cast<uint16_t>(number("a port number", 1, 65535));
      } else if (k == "unixsocket" || k == "unix") {
        c.unix_at = at_kw;
        pc.endpoint.unix_path = value("a unix socket path");
      } else if (k == "ipv4") {
        pc.endpoint.family = AddressFamily::ipv4;
      } else if (k == "ipv6") {
        pc.endpoint.family = AddressFamily::ipv6;
      } else if (k == "type") {
        std::string ty = str::lower(value("a connection type (tcp or tcpssl)"));
        if (ty == "tcpssl") {
          c.type_ssl = true;
          c.ssl_at = at_kw;
        } else if (ty != "tcp") {
          fail(at_kw, "unsupported connection type '" + ty + "' (mailwarden speaks tcp and tcpssl)");
        }
      } else if (k == "ssl" || k == "tls") {
        if (at("options") || peek().kind == Token::Kind::lbrace) {
          accept("options");
          TlsOverrides o;
          parse_tls_block(o);
          c.tls = o;
        } else {
          c.type_ssl = true;
          c.ssl_at = at_kw;
        }
      } else if (k == "protocol" || k == "proto") {
        c.protocol_at = peek().where;
        pc.protocol_name = str::lower(value("a protocol name"));
        if (accept("starttls")) {
          c.starttls = true;
          c.starttls_at = prev().where;
        }
      } else if (k == "starttls") {
        c.starttls = true;
        c.starttls_at = at_kw;
      } else if (k == "username" || k == "user") {
        pc.options.username = string_or_word("a user name");
      } else if (k == "password") {
        c.password_at = at_kw;
        pc.options.password = string_or_word("a password");
        files_with_password_.insert(current_file_);
      } else if (k == "masteruser") {
        c.masteruser_at = at_kw;
        pc.options.authzid = string_or_word("a master user name");
      } else if (k == "allow") {
        expect_kw("plaintext", "after 'allow' (allow plaintext)");
        pc.options.allow_plaintext = true;
      } else if (k == "select" || k == "mailbox") {
        c.mailbox_at = at_kw;
        pc.options.mailbox = string_or_word("a mailbox name");
      } else if (k == "timeout") {
        chk.timeout_ms = duration_ms("the timeout", 100);
      } else if (k == "deadline") {
        deadline = duration_ms("the deadline", 100);
      } else if (k == "retry") {
        chk.retry = static_cast<int>(number("the number of retries", 0, 10));
      } else if (k == "certificate" || k == "cert") {
        c.cert_at = at_kw;
        parse_certificate_clause(pc);
      } else if (k == "responsetime") {
        parse_comparison_gt("'responsetime'");
        pc.max_response_ms = duration_ms("the response time limit", 1);
      } else if (k == "for") {
        long long n = number("the number of cycles", 1, kMaxCycles);
        expect_kw("cycles", "after 'for N'");
        rule.fail_rule = EventRule{static_cast<int>(n), static_cast<int>(n)};
      } else {
        fail(at_kw, "unknown port test clause '" + t.text + "'" + did_you_mean(k, clauses));
      }
    }
    next();  // then
    parse_actions(rule.fail_actions);
    if (accept("else")) {
      expect_kw("if", "after 'else'");
      if (!accept("succeeded") && !accept("passed"))
        fail_expected("'succeeded' after 'else if'", {"succeeded"});
      if (peek().kind == Token::Kind::number) parse_cycles(rule.ok_rule);
      if (accept("for")) {
        long long n = number("the number of cycles", 1, kMaxCycles);
        expect_kw("cycles", "after 'for N'");
        rule.ok_rule = EventRule{static_cast<int>(n), static_cast<int>(n)};
      }
      expect_kw("then", "after 'else if succeeded'");
      parse_actions(rule.ok_actions);
    }
    // The statement is fully read: a semantic error must not make the parser skip what follows.
    try {
      finish_port_test(index, std::move(chk), std::move(pc), c, std::move(rule), deadline);
    } catch (const Abandon&) {
    }
  }

  std::string string_or_word(const std::string& what) { return value(what); }

  void parse_comparison_gt(const std::string& after) {
    const Token& t = peek();
    if (t.kind == Token::Kind::op && t.text == ">") {
      next();
      return;
    }
    if (accept("greater") || accept("gt")) return;
    fail_expected("'>' after " + after);
  }

  void parse_certificate_clause(PortCheck& pc) {
    if (accept("valid")) {
      const Token& t = peek();
      if (t.kind == Token::Kind::op && (t.text == ">" || t.text == ">=")) {
        next();
      } else if (accept("greater") || accept("gt") || accept("for")) {
        accept("more");
      }
      pc.cert_min_days = static_cast<int>(number("the number of days", 0, 36500));
      if (!accept("days") && !accept("day")) fail_expected("'days' after the number", {"days"});
      return;
    }
    if (accept("checksum")) {
      if (accept("md5") || accept("sha1"))
        fail(prev().where, "only sha256 certificate checksums are supported");
      accept("sha256");
      if (peek().kind == Token::Kind::op && (peek().text == "=" || peek().text == "==")) next();
      Location at_hex = peek().where;
      std::string hex;
      for (char ch : value("the certificate's SHA-256 fingerprint (hex)"))
        if (ch != ':') hex += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
        fail(at_hex, "a SHA-256 fingerprint is 64 hex digits (colons allowed)");
      pc.cert_sha256 = hex;
      return;
    }
    fail_expected("'valid' or 'checksum' after 'certificate'", {"valid", "checksum"});
  }

  // "N times within M cycles" or "N cycles" (= for N cycles).
  void parse_cycles(EventRule& rule) {
    Location where = peek().where;
    long long n = number("a number of cycles", 1, kMaxCycles);
    if (accept("times")) {
      expect_kw("within", "after 'N times' (N times within M cycles)");
      long long m = number("a number of cycles", 1, kMaxCycles);
      expect_kw("cycles", "after 'within M'");
      if (n > m)
        fail(where, std::to_string(n) + " times within " + std::to_string(m) +
                        " cycles can never happen (N must not exceed M)");
      rule = EventRule{static_cast<int>(n), static_cast<int>(m)};
      return;
    }
    if (accept("cycles") || accept("cycle")) {
      rule = EventRule{static_cast<int>(n), static_cast<int>(n)};
      return;
    }
    fail_expected("'times within M cycles' or 'cycles' after the number", {"times", "cycles"});
  }

  void parse_actions(std::vector<Action>& out) {
    static const std::vector<std::string> actions = {"alert", "exec"};
    do {
      const Token& t = peek();
      if (accept("alert")) {
        out.push_back(Action{ActionKind::alert, {}});
      } else if (accept("exec")) {
        Action a;
        a.kind = ActionKind::exec;
        parse_exec(a.exec);
        out.push_back(std::move(a));
      } else if (is_kw(t, "restart") || is_kw(t, "start") || is_kw(t, "stop") ||
                 is_kw(t, "unmonitor") || is_kw(t, "monitor")) {
        fail(t.where, "action '" + t.text +
                          "' needs a program mailwarden does not manage; use exec \"COMMAND\"");
      } else {
        fail_expected("an action (" + one_of(actions) + ")", actions);
      }
    } while (at("alert") || at("exec"));
  }

  void parse_exec(ExecSpec& e) {
    Location where = peek().where;
    e.command = string_value("the command to run after 'exec'");
    if (str::trim(e.command).empty()) fail(where, "exec needs a command");
    for (;;) {
      if (accept("uid")) {
        e.uid = resolve_user(value("a user name or uid"));
      } else if (accept("gid")) {
        e.gid = resolve_group(value("a group name or gid"));
      } else if (accept("timeout")) {
        e.timeout_s = static_cast<int>(duration_ms("the exec timeout", 1000) / 1000);
      } else if (accept("repeat")) {
        expect_kw("every", "after 'repeat'");
        e.repeat_every = static_cast<int>(number("a number of cycles", 1, 100000));
        expect_kw("cycles", "after 'repeat every N'");
      } else {
        return;
      }
    }
  }

  uid_t resolve_user(const std::string& name) {
    Location where = prev().where;
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos)
      return static_cast<uid_t>(std::stoul(name));
    struct passwd* pw = getpwnam(name.c_str());
    if (!pw) fail(where, "unknown user '" + name + "'");
    return pw->pw_uid;
  }
  gid_t resolve_group(const std::string& name) {
    Location where = prev().where;
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos)
      return static_cast<gid_t>(std::stoul(name));
    struct group* gr = getgrnam(name.c_str());
    if (!gr) fail(where, "unknown group '" + name + "'");
    return gr->gr_gid;
  }

  void finish_port_test(size_t index, Check chk, PortCheck pc, const PortClauses& c, Rule rule,
                        std::optional<int64_t> deadline) {
    Service& svc = cfg_.services[index];
    const Location& where = chk.where;
    if (c.port_at && c.unix_at) fail(*c.unix_at, "a port test has either 'port' or 'unixsocket'");
    const protocols::ProtocolInfo* proto = nullptr;
    if (!pc.protocol_name.empty()) {
      proto = protocols::find(pc.protocol_name);
      if (!proto) {
        std::vector<std::string> names;
        for (const auto& row : protocols::all()) names.emplace_back(row.name);
        fail(*c.protocol_at, "unknown protocol '" + pc.protocol_name + "' (known: " +
                                 str::join(names, ", ") + ")" +
                                 did_you_mean(pc.protocol_name, names));
      }
    } else {
      fail(where, "the port test names no protocol (add 'protocol imap', 'protocol imaps', ...)");
    }
    pc.protocol = proto;
    if (!c.port_at && !c.unix_at) pc.endpoint.port = proto->default_port;
    if (pc.endpoint.unix_path.empty() && pc.endpoint.host.empty())
      fail(where, "the port test has no host (the service has no address)");

    // TLS mode: the protocol's own, 'ssl'/'tcpssl', and 'starttls'.
    TlsMode mode = proto->default_tls;
    if (c.type_ssl) mode = TlsMode::implicit;
    if (mode == TlsMode::implicit && proto->default_tls == TlsMode::implicit && !c.type_ssl &&
        proto->starttls_port != 0 && pc.endpoint.port == proto->starttls_port)
      mode = TlsMode::starttls;  // monit: "protocol imaps" on port 143
    if (c.starttls) {
      if (c.type_ssl || (proto->default_tls == TlsMode::implicit && mode == TlsMode::implicit))
        fail(*c.starttls_at, "'starttls' cannot be combined with TLS from the first byte (" +
                                 std::string(c.type_ssl ? "ssl" : "protocol " + pc.protocol_name) +
                                 "); use the plain protocol with starttls");
      if (!proto->starttls)
        fail(*c.starttls_at, "protocol '" + pc.protocol_name + "' has no STARTTLS");
      mode = TlsMode::starttls;
    }
    pc.tls_mode = mode;
    if (c.tls && mode == TlsMode::none)
      fail(where, "ssl options given, but this test does not use TLS (add 'ssl' or 'starttls')");
    if ((pc.cert_min_days || !pc.cert_sha256.empty()) && mode == TlsMode::none)
      fail(*c.cert_at, "a certificate test needs TLS (add 'ssl', 'starttls' or an implicit-TLS "
                       "protocol such as imaps)");

    // Options the protocol accepts.
    auto reject_option = [&](bool used, unsigned flag, const std::optional<Location>& at,
                             const char* name) {
      if (used && !(proto->accepts & flag))
        fail(at ? *at : where, "protocol '" + pc.protocol_name + "' does not take '" + name + "'");
    };
    reject_option(pc.options.has_login() || !pc.options.password.empty(), protocols::kLogin,
                  c.password_at, "username/password");
    reject_option(!pc.options.authzid.empty(), protocols::kMasterUser, c.masteruser_at,
                  "masteruser");
    reject_option(!pc.options.mailbox.empty(), protocols::kMailbox, c.mailbox_at, "select");
    if (!pc.options.password.empty() && pc.options.username.empty())
      fail(c.password_at ? *c.password_at : where, "a password needs a username");
    if (pc.options.has_login() && pc.options.password.empty())
      fail(where, "username '" + pc.options.username + "' has no password");
    if (!pc.options.authzid.empty() && !pc.options.has_login())
      fail(c.masteruser_at ? *c.masteruser_at : where, "masteruser needs a username to log in as");
    if (pc.options.has_login() && mode == TlsMode::none && !pc.options.allow_plaintext)
      fail(c.password_at ? *c.password_at : where,
           "the password of '" + pc.options.username +
               "' would cross an unencrypted connection; use starttls, ssl or an implicit-TLS "
               "protocol, or say 'allow plaintext'");
    if (!pc.options.mailbox.empty() && !pc.options.has_login())
      fail(c.mailbox_at ? *c.mailbox_at : where, "select needs a login (username and password)");

    chk.deadline_ms = deadline ? *deadline : 3 * chk.timeout_ms;
    if (chk.deadline_ms < chk.timeout_ms)
      fail(where, "the deadline must not be shorter than the timeout");
    std::string endpoint = pc.endpoint.describe();
    std::string label = pc.protocol_name;
    if (mode == TlsMode::starttls && proto->default_tls != TlsMode::implicit) label += "+starttls";
    if (mode == TlsMode::implicit && proto->default_tls != TlsMode::implicit) label += "+ssl";
    chk.description = label + " " + endpoint;
    if (pc.options.has_login()) chk.description += " as " + pc.options.username;
    if (!pc.options.authzid.empty()) chk.description += " via " + pc.options.authzid;
    std::string id = chk.description;
    int n = 1;
    while (std::any_of(svc.checks.begin(), svc.checks.end(),
                       [&](const Check& other) { return other.id == id; }))
      id = chk.description + " #" + std::to_string(++n);
    chk.id = id;
    if (n > 1) chk.description = id;
    chk.what = std::move(pc);
    chk.rules.push_back(std::move(rule));
    svc.checks.push_back(std::move(chk));
    if (c.tls) pending_tls_.push_back({index, svc.checks.size() - 1, *c.tls});
  }

  // ---- after the whole file -----------------------------------------------------------------

  void finalize() {
    global_tls_.apply_to(cfg_.settings.tls);
    for (auto& svc : cfg_.services)
      for (auto& chk : svc.checks)
        if (auto* pc = std::get_if<PortCheck>(&chk.what)) pc->tls = cfg_.settings.tls;
    for (const auto& p : pending_tls_)
      if (p.service < cfg_.services.size() && p.check < cfg_.services[p.service].checks.size())
        if (auto* pc = std::get_if<PortCheck>(&cfg_.services[p.service].checks[p.check].what))
          p.overrides.apply_to(pc->tls);
    for (const auto& file : files_with_password_) check_secret_file_mode(file);
    if (cfg_.settings.statefile.empty())
      cfg_.settings.statefile = files::home_dir() + "/.mailwarden.state";
    if (cfg_.settings.pidfile.empty())
      cfg_.settings.pidfile = files::home_dir() + "/.mailwarden.pid";
    cfg_.settings.statefile = files::expand_home(cfg_.settings.statefile);
    cfg_.settings.pidfile = files::expand_home(cfg_.settings.pidfile);
  }

  void check_secret_file_mode(const std::string& file) {
    struct stat st;
    if (stat(file.c_str(), &st) != 0) return;
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
      char mode[8];
      snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      d_.error(Location{file, 0, 0},
               std::string("contains a password but is accessible by group or others (mode ") +
                   mode + "); run: chmod 600 " + file);
    }
  }

  Diagnostics& d_;
  Config cfg_;
  const std::vector<Token>* toks_ = nullptr;
  size_t pos_ = 0;
  std::string current_file_;
  std::vector<std::string> include_stack_;
  std::map<std::string, Location> service_at_;
  std::set<std::string> files_with_password_;
  std::vector<PendingTls> pending_tls_;
  TlsOverrides global_tls_;
  int64_t default_timeout_ms_ = 5000;
  bool in_service_ = false;
};

}  // namespace

ParseResult parse_file(const std::string& path) {
  ParseResult result;
  Parser parser(result.diagnostics);
  result.config = parser.run(path);
  return result;
}

std::string default_control_file() {
  std::string home = files::home_dir() + "/.mailwardenrc";
  if (access(home.c_str(), F_OK) == 0) return home;
  if (access("/etc/mailwarden/mailwardenrc", F_OK) == 0) return "/etc/mailwarden/mailwardenrc";
  return {};
}

}  // namespace mw::config
