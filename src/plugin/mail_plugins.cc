// Drop-ins for monitoring-plugins' check_imap, check_simap, check_pop, check_spop (all
// check_tcp) and check_smtp: their options, their output lines and exit codes, run through
// mailwarden's own protocol dialogues. See man/mailwarden.1, DROP-IN PLUGINS, for every
// difference from the originals.
#include "util/handles.h"  // pcre2.h with the code unit width

#include "config.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>

#include "checks/registry.h"
#include "config/model.h"
#include "plugin/dropins.h"
#include "plugin/options.h"
#include "plugin/run_once.h"
#include "protocols/registry.h"
#include "report/nagios.h"
#include "util/strings.h"

namespace mw::plugin {
namespace {

using report::nagios::State;
using report::nagios::state_name;

struct Family {
  std::string_view program;
  std::string_view label;     // "IMAP": the first word of the output
  std::string_view protocol;  // mailwarden's protocol row
  uint16_t port;
  bool implicit_tls;
  std::string_view expect;  // check_tcp's default expect string
  std::string_view quit;    // check_tcp's default quit string
  bool smtp;
};

const Family kFamilies[] = {
    {"check_imap", "IMAP", "imap", 143, false, "* OK", "a1 LOGOUT\r\n", false},
    {"check_simap", "SIMAP", "imaps", 993, true, "* OK", "a1 LOGOUT\r\n", false},
    {"check_pop", "POP", "pop", 110, false, "+OK", "QUIT\r\n", false},
    {"check_spop", "SPOP", "pops", 995, true, "+OK", "QUIT\r\n", false},
    {"check_smtp", "SMTP", "smtp", 25, false, "220", "QUIT\r\n", true},
};

enum Opt {
  kHost,
  kPort,
  kTimeout,
  kWarning,
  kCritical,
  kExpect,
  kSend,
  kEscape,
  kQuit,
  kAll,
  kMismatch,
  kRefuse,
  kMaxBytes,
  kDelay,
  kCertDays,
  kSsl,
  kIpv4,
  kIpv6,
  kVerbose,
  kHelp,
  kVersion,
  kJail,
  kSni,
  // check_smtp
  kCommand,
  kResponse,
  kFrom,
  kFqdn,
  kAuthType,
  kAuthUser,
  kAuthPass,
  kLmtp,
  kIgnoreQuit,
  // mailwarden's own (long options only)
  kStarttls,
  kLogin,
  kPasswordFile,
  kMailbox,
  kVerify,
  kCaFile,
  kAllowPlaintext,
};

std::vector<OptionSpec> tcp_specs() {
  return {
      {'H', "hostname", true, kHost},
      {'p', "port", true, kPort},
      {'t', "timeout", true, kTimeout},
      {'w', "warning", true, kWarning},
      {'c', "critical", true, kCritical},
      {'e', "expect", true, kExpect},
      {'s', "send", true, kSend},
      {'E', "escape", false, kEscape},
      {'q', "quit", true, kQuit},
      {'A', "all", false, kAll},
      {'M', "mismatch", true, kMismatch},
      {'r', "refuse", true, kRefuse},
      {'m', "maxbytes", true, kMaxBytes},
      {'d', "delay", true, kDelay},
      {'D', "certificate", true, kCertDays},
      {'S', "ssl", false, kSsl},
      {'4', "use-ipv4", false, kIpv4},
      {'6', "use-ipv6", false, kIpv6},
      {'v', "verbose", false, kVerbose},
      {'h', "help", false, kHelp},
      {'V', "version", false, kVersion},
      {'j', "jail", false, kJail},
      {0, "sni", false, kSni},
      {0, "starttls", false, kStarttls},
      {0, "login", true, kLogin},
      {0, "password-file", true, kPasswordFile},
      {0, "mailbox", true, kMailbox},
      {0, "verify", false, kVerify},
      {0, "ca-file", true, kCaFile},
      {0, "allow-plaintext", false, kAllowPlaintext},
  };
}

std::vector<OptionSpec> smtp_specs() {
  return {
      {'H', "hostname", true, kHost},
      {'p', "port", true, kPort},
      {'t', "timeout", true, kTimeout},
      {'w', "warning", true, kWarning},
      {'c', "critical", true, kCritical},
      {'e', "expect", true, kExpect},
      {'C', "command", true, kCommand},
      {'R', "response", true, kResponse},
      {'f', "from", true, kFrom},
      {'F', "fqdn", true, kFqdn},
      {'A', "authtype", true, kAuthType},
      {'U', "authuser", true, kAuthUser},
      {'P', "authpass", true, kAuthPass},
      {'L', "lmtp", false, kLmtp},
      {'q', "ignore-quit-failure", false, kIgnoreQuit},
      {'D', "certificate", true, kCertDays},
      {'S', "starttls", false, kStarttls},
      {'s', "ssl", false, kSsl},
      {'4', "use-ipv4", false, kIpv4},
      {'6', "use-ipv6", false, kIpv6},
      {'v', "verbose", false, kVerbose},
      {'h', "help", false, kHelp},
      {'V', "version", false, kVersion},
      {0, "sni", false, kSni},
      {0, "login", true, kLogin},
      {0, "password-file", true, kPasswordFile},
      {0, "verify", false, kVerify},
      {0, "ca-file", true, kCaFile},
      {0, "allow-plaintext", false, kAllowPlaintext},
  };
}

struct Request {
  const Family* family = nullptr;
  std::string host;
  uint16_t port = 0;
  int timeout_s = 10;
  std::optional<double> warn_s;
  std::optional<double> crit_s;
  std::vector<std::string> expects;
  std::string send;
  std::optional<std::string> quit;
  bool escape = false;
  bool all = false;
  State mismatch = State::warning;
  State refuse = State::critical;
  size_t max_bytes = 0;
  std::optional<int> cert_warn_days;
  std::optional<int> cert_crit_days;
  bool ssl = false;
  AddressFamily address_family = AddressFamily::any;
  bool verbose = false;
  bool starttls = false;
  std::string username;
  std::string password;
  std::string mailbox;
  bool verify = false;
  std::string ca_file;
  bool allow_plaintext = false;
  std::string helo;
  std::string from;
  std::vector<std::string> commands;
  std::vector<std::string> responses;
  bool lmtp = false;
};

// "\n" "\r" "\t" "\\" in -s/-q with -E (check_tcp's escapes).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char e = s[++i];
    out += e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
  }
  return out;
}

std::optional<State> state_word(const std::string& w) {
  std::string l = str::lower(w);
  if (l == "ok") return State::ok;
  if (l == "warn" || l == "warning") return State::warning;
  if (l == "crit" || l == "critical") return State::critical;
  return std::nullopt;
}

// The line monitoring-plugins print for bad arguments (exit UNKNOWN).
int usage(const Family& f, const std::string& why) {
  printf(
      "%s UNKNOWN - %s\nUsage: %s -H host [-p port] [-w warn] [-c crit] [-t timeout] ... "
      "(see man mailwarden, DROP-IN PLUGINS)\n",
      std::string(f.label).c_str(), why.c_str(), std::string(f.program).c_str());
  return 3;
}

std::optional<std::string> parse_request(const Family& f, const std::vector<std::string>& args,
                                         Request& rq, int& early_exit) {
  std::vector<GivenOption> given;
  std::string error;
  if (!parse_options(args, f.smtp ? smtp_specs() : tcp_specs(), given, error)) return error;
  rq.family = &f;
  rq.port = f.port;
  rq.ssl = f.implicit_tls;
  std::string password_file;
  for (const auto& g : given) {
    switch (g.id) {
      case kHost:
        rq.host = g.value;
        break;
      case kPort: {
        auto n = whole_number(g.value, 65535);
        if (!n || *n == 0) return "invalid port '" + g.value + "'";
        rq.port = static_cast<uint16_t>(*n);
        break;
      }
      case kTimeout: {
        // check_tcp takes "-t 10" and "-t 10:STATE"; the state part is accepted and ignored.
        auto n = whole_number(g.value.substr(0, g.value.find(':')), 86400);
        if (!n || *n == 0) return "timeout must be a positive number of seconds";
        rq.timeout_s = static_cast<int>(*n);
        break;
      }
      case kWarning:
      case kCritical: {
        auto v = decimal(g.value);
        if (!v || *v < 0) return g.name + " must be a non-negative number of seconds";
        (g.id == kWarning ? rq.warn_s : rq.crit_s) = *v;
        break;
      }
      case kExpect:
        if (f.smtp)
          rq.expects = {g.value};
        else
          rq.expects.push_back(g.value);
        break;
      case kSend:
        rq.send = rq.escape ? unescape(g.value) : g.value;
        break;
      case kEscape:
        rq.escape = true;
        break;
      case kQuit:
        rq.quit = rq.escape ? unescape(g.value) : g.value + "\r\n";
        break;
      case kAll:
        rq.all = true;
        break;
      case kMismatch:
      case kRefuse: {
        auto s = state_word(g.value);
        if (!s) return g.name + " takes ok, warn or crit";
        (g.id == kMismatch ? rq.mismatch : rq.refuse) = *s;
        break;
      }
      case kMaxBytes: {
        auto n = whole_number(g.value, 64 * 1024 * 1024);
        if (!n) return "maxbytes must be a number of bytes";
        rq.max_bytes = static_cast<size_t>(*n);
        break;
      }
      case kDelay:
        break;  // a pause between send and read: the dialogue waits for lines anyway
      case kCertDays: {
        auto comma = g.value.find(',');
        auto w = whole_number(g.value.substr(0, comma), 36500);
        if (!w) return "certificate days must be a number of days";
        rq.cert_warn_days = static_cast<int>(*w);
        if (comma != std::string::npos) {
          auto c = whole_number(g.value.substr(comma + 1), 36500);
          if (!c) return "certificate days must be a number of days";
          rq.cert_crit_days = static_cast<int>(*c);
        }
        if (!f.smtp) rq.ssl = true;  // check_tcp: -D implies --ssl
        break;
      }
      case kSsl:
        rq.ssl = true;
        break;
      case kIpv4:
        rq.address_family = AddressFamily::ipv4;
        break;
      case kIpv6:
        rq.address_family = AddressFamily::ipv6;
        break;
      case kVerbose:
        rq.verbose = true;
        break;
      case kHelp:
        printf("%s (mailwarden drop-in) - see man mailwarden, DROP-IN PLUGINS\n",
               std::string(f.program).c_str());
        early_exit = 3;
        return std::nullopt;
      case kVersion:
        printf("%s (mailwarden %s)\n", std::string(f.program).c_str(), PACKAGE_VERSION);
        early_exit = 3;
        return std::nullopt;
      case kJail:
      case kSni:
      case kIgnoreQuit:
        break;
      case kCommand:
        rq.commands.push_back(g.value);
        break;
      case kResponse:
        rq.responses.push_back(g.value);
        break;
      case kFrom:
        rq.from = g.value;
        break;
      case kFqdn:
        rq.helo = g.value;
        break;
      case kAuthType:
        if (str::lower(g.value) != "login" && str::lower(g.value) != "plain")
          return "authtype must be LOGIN";
        break;
      case kAuthUser:
        rq.username = g.value;
        rq.allow_plaintext = true;  // check_smtp sends -U/-P over whatever connection it has
        break;
      case kAuthPass:
        rq.password = g.value;
        break;
      case kLmtp:
        rq.lmtp = true;
        break;
      case kStarttls:
        rq.starttls = true;
        break;
      case kLogin:
        rq.username = g.value;
        break;
      case kPasswordFile:
        password_file = g.value;
        break;
      case kMailbox:
        rq.mailbox = g.value;
        break;
      case kVerify:
        rq.verify = true;
        break;
      case kCaFile:
        rq.ca_file = g.value;
        rq.verify = true;
        break;
      case kAllowPlaintext:
        rq.allow_plaintext = true;
        break;
    }
  }
  if (rq.host.empty()) return "no hostname given (-H)";
  if (!password_file.empty()) {
    if (!read_password_file(password_file, rq.password, error)) return error;
  } else if (!rq.username.empty() && rq.password.empty()) {
    if (const char* env = getenv("MAILWARDEN_PASSWORD")) rq.password = env;
  }
  if (!rq.username.empty() && rq.password.empty())
    return "--login needs --password-file FILE or MAILWARDEN_PASSWORD in the environment";
  if (!rq.mailbox.empty() && rq.username.empty()) return "--mailbox needs --login";
  if (rq.starttls && rq.ssl && !f.smtp) return "--starttls and --ssl exclude each other";
  return std::nullopt;
}

// check_tcp's own dialogue (expect the greeting, send the quit string, hang up) unless an
// option needs the protocol's: STARTTLS, a login, a mailbox. It is what the originals do, so a
// server that is odd after its greeting gets the same verdict from both.
bool uses_tcp_dialogue(const Request& rq) {
  if (rq.family->smtp) return false;
  return !rq.starttls && rq.username.empty() && rq.mailbox.empty();
}

config::Regex literal_regex(const std::vector<std::string>& needles, bool all) {
  // Every byte literal: hex escapes need no care about \Q...\E or metacharacters.
  auto quote = [](const std::string& s) {
    std::string out;
    char buf[8];
    for (unsigned char c : s) {
      snprintf(buf, sizeof buf, "\\x{%02x}", c);
      out += buf;
    }
    return out;
  };
  std::string source;
  if (all) {
    for (const auto& n : needles) source += "(?=.*" + quote(n) + ")";
  } else {
    std::vector<std::string> alts;
    for (const auto& n : needles) alts.push_back(quote(n));
    source = str::join(alts, "|");
  }
  config::Regex re;
  re.source = source;
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.c_str()),
                                   PCRE2_ZERO_TERMINATED, 0, &err, &off, nullptr);
  re.code = std::shared_ptr<pcre2_code>(code, pcre2_code_free);
  return re;
}

// The in-memory model of the request: one service with one port test.
std::shared_ptr<config::Config> build_model(const Request& rq, std::string& error) {
  const Family& f = *rq.family;
  auto cfg = std::make_shared<config::Config>();
  config::Service svc;
  svc.name = std::string(f.program);
  svc.address = rq.host;
  config::Check chk;
  config::PortCheck pc;
  pc.endpoint.host = rq.host;
  pc.endpoint.port = rq.port;
  pc.endpoint.family = rq.address_family;
  bool tcp = uses_tcp_dialogue(rq);
  if (!tcp && !f.smtp && (!rq.send.empty() || !rq.expects.empty() || rq.quit)) {
    error = "-s/-e/-q do not combine with --starttls, --login or --mailbox";
    return nullptr;
  }
  std::string proto = tcp ? "tcp" : std::string(f.protocol);
  if (f.smtp && rq.ssl) proto = "smtps";
  if (f.smtp && rq.lmtp) proto = "lmtp";
  pc.protocol_name = proto;
  pc.protocol = protocols::find(proto);
  if (!pc.protocol) {
    error = "no protocol " + proto;
    return nullptr;
  }
  pc.tls_mode = rq.ssl ? config::TlsMode::implicit : config::TlsMode::none;
  if (rq.starttls) pc.tls_mode = config::TlsMode::starttls;
  if (rq.lmtp && rq.starttls) pc.tls_mode = config::TlsMode::starttls;
  // The originals do not verify certificates; --verify (or --ca-file) does.
  pc.tls.verify = rq.verify;
  pc.tls.ca_file = rq.ca_file;
  pc.options.username = rq.username;
  pc.options.password = rq.password;
  pc.options.mailbox = rq.mailbox;
  pc.options.allow_plaintext = rq.allow_plaintext;
  pc.options.helo = rq.helo;
  if (!rq.from.empty()) {
    pc.options.mail_from = rq.from;
    // check_smtp -f sends MAIL FROM only; a MAIL FROM without RCPT is all it checks.
  }
  // check_smtp's -C/-R: each command after the greeting (and STARTTLS), its reply matched
  // against the response pattern of the same rank (multi-line: ^ and $ at each line).
  for (size_t i = 0; f.smtp && i < rq.commands.size(); ++i) {
    config::Step s;
    s.kind = config::Step::Kind::send;
    s.text = rq.commands[i];
    pc.options.steps.push_back(s);
    if (i >= rq.responses.size()) continue;
    config::Step e;
    e.kind = config::Step::Kind::expect;
    e.regex.source = rq.responses[i];
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rq.responses[i].c_str()),
                                     PCRE2_ZERO_TERMINATED, PCRE2_MULTILINE, &err, &off, nullptr);
    if (!code) {
      error = "Could Not Compile Regular Expression";
      return nullptr;
    }
    e.regex.code = std::shared_ptr<pcre2_code>(code, pcre2_code_free);
    pc.options.steps.push_back(e);
  }
  if (tcp) {
    std::vector<std::string> expects =
        rq.expects.empty() ? std::vector<std::string>{std::string(f.expect)} : rq.expects;
    if (!rq.send.empty()) {
      config::Step s;
      s.kind = config::Step::Kind::send;
      s.text = rq.send;
      pc.options.steps.push_back(s);
    }
    config::Step e;
    e.kind = config::Step::Kind::expect;
    e.regex = literal_regex(expects, rq.all);
    e.max_bytes = rq.max_bytes;  // 0: the first line must match (check_tcp reads one response)
    if (!e.regex.code) {
      error = "cannot compile the expect strings";
      return nullptr;
    }
    pc.options.steps.push_back(e);
    std::string quit = rq.quit ? *rq.quit : std::string(f.quit);
    if (!quit.empty()) {
      config::Step q;
      q.kind = config::Step::Kind::send;
      q.text = quit;
      pc.options.steps.push_back(q);
    }
  }
  chk.timeout_ms = static_cast<int64_t>(rq.timeout_s) * 1000;
  chk.deadline_ms = chk.timeout_ms;  // the originals' -t is one alarm for the whole run
  chk.description = proto + " " + pc.endpoint.describe();
  chk.id = chk.description;
  chk.kind = &checks::get("port");
  chk.spec = std::make_shared<config::PortCheck>(std::move(pc));
  chk.rules.emplace_back();
  svc.checks.push_back(std::move(chk));
  cfg->services.push_back(std::move(svc));
  return cfg;
}

std::string perf_seconds(std::optional<double> v) {
  return v ? report::nagios::number(*v, 6) : std::string();
}

// check_tcp's certificate lines: "WARNING - Certificate 'CN' expires in N day(s) (DATE)."
std::string cert_cn(const std::string& subject) {
  auto at = subject.find("/CN=");
  if (at == std::string::npos) return subject;
  auto end = subject.find('/', at + 4);
  return subject.substr(at + 4, end == std::string::npos ? std::string::npos : end - at - 4);
}

State certificate_verdict(const Request& rq, const CertInfo& cert, std::string& line) {
  time_t now = time(nullptr);
  double left = difftime(cert.not_after, now);
  long days = static_cast<long>(left / 86400);
  char date[64];
  struct tm tm_local;
  localtime_r(&cert.not_after, &tm_local);
  strftime(date, sizeof date, "%a %b %d %H:%M:%S %Y %z", &tm_local);
  std::string cn = cert_cn(cert.subject);
  int warn = *rq.cert_warn_days;
  int crit = rq.cert_crit_days.value_or(0);
  char buf[512];
  State s = State::ok;
  if (days > 0 && days <= warn) {
    s = days > crit ? State::warning : State::critical;
    snprintf(buf, sizeof buf, "%s - Certificate '%s' expires in %ld day(s) (%s).", state_name(s),
             cn.c_str(), days, date);
  } else if (left < 0) {
    s = State::critical;
    snprintf(buf, sizeof buf, "CRITICAL - Certificate '%s' expired on %s.", cn.c_str(), date);
  } else if (days == 0) {
    s = crit > 0 ? State::critical : State::warning;
    snprintf(buf, sizeof buf, "%s - Certificate '%s' expires today (%s).", state_name(s),
             cn.c_str(), date);
  } else {
    snprintf(buf, sizeof buf, "OK - Certificate '%s' will expire on %s.", cn.c_str(), date);
  }
  line = buf;
  return s;
}

State time_state(const Request& rq, double seconds) {
  if (rq.crit_s && seconds > *rq.crit_s) return State::critical;
  if (rq.warn_s && seconds > *rq.warn_s) return State::warning;
  return State::ok;
}

int report_tcp(const Request& rq, const CheckResult& r) {
  const Family& f = *rq.family;
  const std::string label(f.label);
  double secs = (r.greeting_ms >= 0 ? r.greeting_ms : r.response_ms) / 1000.0;
  std::string perf = "time=" + report::nagios::number(secs, 6) + "s;" + perf_seconds(rq.warn_s) +
                     ";" + perf_seconds(rq.crit_s) + ";0.000000;" +
                     report::nagios::number(rq.timeout_s, 6);
  if (!r.ok) {
    switch (r.cls) {
      case FailureClass::connect:
        printf("connect to address %s and port %u: %s\n", rq.host.c_str(), rq.port,
               r.message.find("refused") != std::string::npos ? "Connection refused"
                                                              : r.message.c_str());
        return static_cast<int>(r.message.find("refused") != std::string::npos ? rq.refuse
                                                                               : State::critical);
      case FailureClass::timeout:
        printf("CRITICAL - Socket timeout after %d seconds\n", rq.timeout_s);
        return 2;
      case FailureClass::tls:
        printf("CRITICAL - Cannot make SSL connection.\n%s\n", r.message.c_str());
        return 2;
      case FailureClass::protocol:
      case FailureClass::rejected:
      case FailureClass::content: {
        std::string line = !r.server_line.empty() ? r.server_line : r.greeting;
        if (line.empty()) line = r.message;
        printf("%s %s - Unexpected response from host/socket: %s|%s\n", label.c_str(),
               state_name(rq.mismatch), str::printable(line, 1024).c_str(), perf.c_str());
        return static_cast<int>(rq.mismatch);
      }
      case FailureClass::internal:
        printf("%s UNKNOWN - %s\n", label.c_str(), r.reason().c_str());
        return 3;
      default:
        // What the originals cannot do (login, mailbox, STARTTLS): mailwarden's reason.
        printf("%s CRITICAL - %s|%s\n", label.c_str(), r.reason().c_str(), perf.c_str());
        return 2;
    }
  }
  State cert_state = State::ok;
  if (rq.cert_warn_days) {
    if (!r.certificate) {
      printf("CRITICAL - Cannot retrieve server certificate.\n");
      return 2;
    }
    std::string line;
    cert_state = certificate_verdict(rq, *r.certificate, line);
    printf("%s\n", line.c_str());
    if (cert_state != State::ok) return static_cast<int>(cert_state);
  }
  State s = time_state(rq, secs);
  printf("%s %s - %.3f second response time on %s port %u [%s]|%s\n", label.c_str(), state_name(s),
         secs, rq.host.c_str(), rq.port, str::printable(r.greeting, 1024).c_str(), perf.c_str());
  return static_cast<int>(s);
}

int report_smtp(const Request& rq, const CheckResult& r) {
  // check_smtp times the whole session, connect to QUIT.
  double secs = r.response_ms / 1000.0;
  std::string perf = "time=" + report::nagios::number(secs, 6) + "s;" + perf_seconds(rq.warn_s) +
                     ";" + perf_seconds(rq.crit_s) + ";0.000000";
  std::string expect = rq.expects.empty() ? "220" : rq.expects[0];
  if (!r.ok) {
    switch (r.cls) {
      case FailureClass::connect:
        printf("connect to address %s and port %u: %s\n", rq.host.c_str(), rq.port,
               r.message.find("refused") != std::string::npos ? "Connection refused"
                                                              : r.message.c_str());
        printf("SMTP CRITICAL - %.3f sec. response time|%s\n", secs, perf.c_str());
        return 2;
      case FailureClass::timeout:
        printf("CRITICAL - Socket timeout after %d seconds\n", rq.timeout_s);
        return 2;
      case FailureClass::tls:
        printf("CRITICAL - Cannot create SSL context.\n%s\n", r.message.c_str());
        return 2;
      case FailureClass::missing_feature:
        if (r.message.find("STARTTLS") != std::string::npos) {
          printf("Server does not support STARTTLS\n");
          return 3;
        }
        printf("SMTP CRITICAL - %s|%s\n", r.reason().c_str(), perf.c_str());
        return 2;
      case FailureClass::internal:
        printf("SMTP UNKNOWN - %s\n", r.reason().c_str());
        return 3;
      case FailureClass::content:
        // A -R pattern that does not match: check_smtp says so, then its usual time line.
        if (r.message.rfind("Invalid response '", 0) == 0) {
          printf("SMTP WARNING - %s\n", r.message.c_str());
          printf("SMTP WARNING - %.3f sec. response time|%s\n", secs, perf.c_str());
          return 1;
        }
        printf("SMTP CRITICAL - %s, %.3f sec. response time|%s\n", r.reason().c_str(), secs,
               perf.c_str());
        return 2;
      case FailureClass::protocol:
      case FailureClass::rejected:
        if (!r.greeting.empty() && r.greeting.find(expect) == std::string::npos) {
          if (rq.port == 25)
            printf("Invalid SMTP response received from host: %s\n",
                   str::printable(r.greeting, 1024).c_str());
          else
            printf("Invalid SMTP response received from host on port %u: %s\n", rq.port,
                   str::printable(r.greeting, 1024).c_str());
          return 1;
        }
        [[fallthrough]];
      default:
        printf("SMTP CRITICAL - %s, %.3f sec. response time|%s\n", r.reason().c_str(), secs,
               perf.c_str());
        return 2;
    }
  }
  if (!r.greeting.empty() && r.greeting.find(expect) == std::string::npos) {
    printf("Invalid SMTP response received from host on port %u: %s\n", rq.port,
           str::printable(r.greeting, 1024).c_str());
    return 1;
  }
  if (rq.cert_warn_days && r.certificate) {
    std::string line;
    State cs = certificate_verdict(rq, *r.certificate, line);
    printf("%s\n", line.c_str());
    if (cs != State::ok) return static_cast<int>(cs);
  }
  State s = time_state(rq, secs);
  printf("SMTP %s - %.3f sec. response time|%s\n", state_name(s), secs, perf.c_str());
  return static_cast<int>(s);
}

}  // namespace

int run_mail_dropin(std::string_view program, const std::vector<std::string>& args) {
  const Family* family = nullptr;
  for (const auto& f : kFamilies)
    if (f.program == program) family = &f;
  if (!family) return 3;
  Request rq;
  int early = -1;
  if (auto error = parse_request(*family, args, rq, early)) return usage(*family, *error);
  if (early >= 0) return early;
  std::string error;
  auto cfg = build_model(rq, error);
  if (!cfg) return usage(*family, error);
  const auto& svc = cfg->services.front();
  auto results = run_once(cfg, svc, {&svc.checks.front()});
  return family->smtp ? report_smtp(rq, results.front()) : report_tcp(rq, results.front());
}

}  // namespace mw::plugin
