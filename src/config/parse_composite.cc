// "check replication NAME" and "check delivery NAME": composite checks, each a service with one
// check built from the statements of its body, plus the URLs that name their servers
// ("imaps://host:993/INBOX", "smtp+starttls://user%40example.net:pw@host:587", "file:///dir").
#include <algorithm>
#include <cctype>
#include <set>

#include "checks/registry.h"
#include "config/parser.h"
#include "config/parser_impl.h"
#include "util/strings.h"

namespace mw::config::parsing {

// What the body's statements leave for the checks made once the whole file is read (where a
// password came from, the check's own ssl options, the clauses that must appear once).
struct CompositeDraft {
  size_t service = 0;
  ServiceKind kind = ServiceKind::replication;
  Location where;
  size_t errors_before = 0;
  std::map<std::string, Location> seen;  // statement keyword -> where it was first written
  std::vector<Location> url_at;          // replication: each server's URL
  Location send_at, receive_at;
  std::optional<TlsOverrides> tls;
  std::optional<int64_t> deadline;
  bool timeout_set = false;
};

namespace {

constexpr int kMaxConcurrency = 256;
constexpr size_t kMaxServers = 16;
constexpr size_t kMaxUsers = 100000;

struct SchemeInfo {
  const char* name;
  const char* canonical;  // check_delivery's spellings are accepted as aliases
  uint16_t port;
  TlsMode tls;
};

const std::vector<SchemeInfo>& schemes() {
  static const std::vector<SchemeInfo> all = {
      {"smtp", "smtp", 25, TlsMode::none},
      {"smtps", "smtps", 465, TlsMode::implicit},
      {"smtp+starttls", "smtp+starttls", 587, TlsMode::starttls},
      {"smtpstarttls", "smtp+starttls", 587, TlsMode::starttls},
      {"submission", "smtp+starttls", 587, TlsMode::starttls},
      {"imap", "imap", 143, TlsMode::none},
      {"imaps", "imaps", 993, TlsMode::implicit},
      {"imap+starttls", "imap+starttls", 143, TlsMode::starttls},
      {"imapstarttls", "imap+starttls", 143, TlsMode::starttls},
      {"pop3", "pop3", 110, TlsMode::none},
      {"pop3s", "pop3s", 995, TlsMode::implicit},
      {"pop3+starttls", "pop3+starttls", 110, TlsMode::starttls},
      {"file", "file", 0, TlsMode::none},
      {"ftp", "ftp", 21, TlsMode::none},
      {"ftps", "ftps", 21, TlsMode::starttls},  // explicit: AUTH TLS (RFC 4217)
      {"irc", "irc", 6667, TlsMode::none},
      {"irctls", "irctls", 6697, TlsMode::implicit},
      {"ircs", "irctls", 6697, TlsMode::implicit},
  };
  return all;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// %XX -> byte. A lone '%' or a NUL is refused: neither can be meant in a login or a path.
bool percent_decode(const std::string& in, std::string& out, std::string& error) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
    int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      error = "'%' must be followed by two hex digits (write %25 for a percent sign)";
      return false;
    }
    char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0' || c == '\r' || c == '\n') {
      error = "%00, %0D and %0A are not allowed";
      return false;
    }
    out += c;
    i += 2;
  }
  return true;
}

}  // namespace

// Parses a URL of a composite check; returns an error message, or empty with `out` filled.
std::string parse_mail_url(const std::string& text, MailUrl& out) {
  auto sep = text.find("://");
  if (sep == std::string::npos || sep == 0)
    // Only what comes before a possible "user:password@" is shown.
    return "expected a URL such as imaps://host:993 or file:///path, got \"" +
           str::printable(text.substr(0, text.find('@'))) +
           (text.find('@') == std::string::npos ? "" : "@...") + "\"";
  std::string scheme = str::lower(text.substr(0, sep));
  const SchemeInfo* info = nullptr;
  for (const auto& s : schemes())
    if (scheme == s.name) info = &s;
  if (!info) {
    std::vector<std::string> names;
    for (const auto& s : schemes())
      if (std::string(s.name) == s.canonical) names.emplace_back(s.name);
    return "unknown URL scheme '" + scheme + "' (known: " + str::join(names, ", ") + ")" +
           did_you_mean(scheme, names);
  }
  out = MailUrl{};
  out.scheme = info->canonical;
  out.tls_mode = info->tls;
  std::string rest = text.substr(sep + 3);
  // An IRC channel may be written as it is spelled: irc://host/#alerts.
  if (auto hash = rest.find("/#"); hash != std::string::npos && out.scheme.rfind("irc", 0) == 0)
    rest.replace(hash, 2, "/%23");
  if (rest.find_first_of("?#") != std::string::npos)
    return "a URL here takes no query or fragment (?... or #...)";
  if (rest.find_first_of(" \t\r\n") != std::string::npos) return "a URL cannot contain spaces";
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string raw_path = slash == std::string::npos ? "" : rest.substr(slash);
  std::string error;

  if (out.scheme == "file") {
    if (!authority.empty() && str::lower(authority) != "localhost")
      return "a file URL names a local directory: file:///path (no host)";
    if (!percent_decode(raw_path, out.path, error)) return "in the path: " + error;
    while (out.path.size() > 1 && out.path.back() == '/') out.path.pop_back();
    if (out.path.empty() || out.path == "/")
      return "a file URL needs a directory: file:///var/spool/probe";
    out.shown = "file://" + raw_path;
    return {};
  }

  // userinfo: everything before the last '@' of the authority (a user name may hold '@' when
  // written raw, but percent-encoding it is what check_delivery's users did).
  std::string hostport = authority;
  std::string raw_user;
  if (auto at = authority.rfind('@'); at != std::string::npos) {
    std::string userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    raw_user = userinfo.substr(0, colon);
    if (!percent_decode(raw_user, out.username, error)) return "in the user name: " + error;
    if (colon != std::string::npos &&
        !percent_decode(userinfo.substr(colon + 1), out.password, error))
      return "in the password: " + error;
    if (out.username.empty()) return "the URL has an '@' but no user name before it";
    if (colon != std::string::npos && out.password.empty())
      return "the URL's password is empty (leave out the ':' or give the password)";
  }
  std::string port_text;
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string::npos) return "unterminated IPv6 address (missing ']')";
    out.endpoint.host = hostport.substr(1, close - 1);
    std::string after = hostport.substr(close + 1);
    if (!after.empty() && after[0] != ':') return "unexpected text after the IPv6 address";
    if (!after.empty()) port_text = after.substr(1);
    if (!after.empty() && port_text.empty()) return "the URL has a ':' but no port after it";
  } else {
    auto colon = hostport.find(':');
    out.endpoint.host = hostport.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = hostport.substr(colon + 1);
      if (port_text.empty()) return "the URL has a ':' but no port after it";
    }
  }
  if (out.endpoint.host.empty()) return "the URL names no host";
  out.endpoint.port = info->port;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos)
      return "the port must be a number, got '" + port_text + "'";
    long port = std::stol(port_text);
    if (port < 1 || port > 65535) return "the port must be between 1 and 65535, got " + port_text;
    out.endpoint.port = static_cast<uint16_t>(port);
  }
  bool imap = out.scheme.rfind("imap", 0) == 0;
  bool with_path = imap || out.is_ftp() || out.is_irc();
  if (imap) {
    std::string mailbox = raw_path.empty() ? "" : raw_path.substr(1);
    if (!percent_decode(mailbox, out.path, error)) return "in the mailbox: " + error;
    if (out.path.empty()) out.path = "INBOX";
  } else if (out.is_ftp()) {
    // The directory as the server names it, relative to the login's unless it starts with '/'
    // twice (ftp://host//abs): RFC 1738's CWD per segment, spelled as one path.
    std::string dir = raw_path.empty() ? "" : raw_path.substr(1);
    if (!percent_decode(dir, out.path, error)) return "in the directory: " + error;
    while (out.path.size() > 1 && out.path.back() == '/') out.path.pop_back();
  } else if (out.is_irc()) {
    std::string channel = raw_path.empty() ? "" : raw_path.substr(1);
    if (!percent_decode(channel, out.path, error)) return "in the channel: " + error;
    if (out.path.empty())
      return "an IRC URL names its channel: irc://nick@host:6667/alerts (or /%23alerts)";
    if (out.path[0] != '#' && out.path[0] != '&') out.path = "#" + out.path;
    if (out.path.size() > 50 || out.path.find_first_of(" ,:\a") != std::string::npos)
      return "'" + str::printable(out.path) + "' is not an IRC channel name";
  } else if (!raw_path.empty() && raw_path != "/") {
    return "only imap, ftp and irc URLs take a path (the mailbox, directory or channel); this " +
           out.scheme + " URL cannot";
  }
  std::string host_shown = out.endpoint.host.find(':') == std::string::npos
                               ? out.endpoint.host
                               : "[" + out.endpoint.host + "]";
  out.shown = out.scheme + "://" + (raw_user.empty() ? "" : raw_user + "@") + host_shown + ":" +
              std::to_string(out.endpoint.port);
  if (with_path && !out.path.empty()) out.shown += "/" + out.path;
  return {};
}

// The statements of a composite check's body, with access to the parser's token stream.
class CompositeParser {
 public:
  CompositeParser(Parser& p, CompositeDraft& draft)
      : p_(p), d_(draft), check_(p.cfg_.services[draft.service].checks.back()) {}

  void statement() {
    const Token& t = p_.peek();
    std::string k = str::lower(t.text);
    Location at = t.where;
    bool replication = d_.kind == ServiceKind::replication;
    const auto& words = replication ? replication_words() : delivery_words();
    if (t.kind != Token::Kind::word || std::find(words.begin(), words.end(), k) == words.end())
      p_.fail_expected("a statement of this check (" + one_of(words) + ") or a new 'check'", words);
    p_.next();
    if (k == "if") return rule(at);
    if (k != "group") once(k == "credentials" ? "admin" : k, at);
    if (k == "timeout") {
      check_.timeout_ms = p_.duration_ms("the timeout", 100);
      d_.timeout_set = true;
    } else if (k == "deadline") {
      d_.deadline = p_.duration_ms("the deadline", 100);
    } else if (k == "retry") {
      check_.retry = static_cast<int>(p_.number("the number of retries", 0, 10));
    } else if (k == "allow") {
      p_.expect_kw("plaintext", "after 'allow' (allow plaintext)");
      if (auto* r = replication_check()) r->allow_plaintext = true;
      if (auto* dc = delivery_check()) dc->allow_plaintext = true;
    } else if (k == "ssl" || k == "tls") {
      p_.accept("options");
      TlsOverrides o;
      p_.parse_tls_block(o);
      d_.tls = o;
    } else if (replication) {
      replication_statement(k, at);
    } else {
      delivery_statement(k, at);
    }
  }

  // Once the body is read: what must be there, and the check's name, id and deadline.
  void finish() {
    if (p_.d_.count() != d_.errors_before) return;  // the first error says enough
    if (auto* r = replication_check()) finish_replication(*r);
    if (auto* dc = delivery_check()) finish_delivery(*dc);
  }

  // The statement table of parse_service_body(): every keyword leads to statement().
  static const std::vector<Parser::BodyForm>& body_forms(ServiceKind kind) {
    static const auto table = [](const std::vector<std::string>& words) {
      std::vector<Parser::BodyForm> forms;
      for (const auto& w : words)
        forms.push_back(
            {w.c_str(), w == "group" ? &Parser::parse_group : &Parser::composite_statement});
      return forms;
    };
    static const std::vector<Parser::BodyForm> replication = table(replication_words());
    static const std::vector<Parser::BodyForm> delivery = table(delivery_words());
    return kind == ServiceKind::replication ? replication : delivery;
  }

 private:
  static const std::vector<std::string>& replication_words() {
    static const std::vector<std::string> w = {
        "servers", "admin",   "credentials", "users",       "all",   "status",
        "time",    "budget",  "failed",      "concurrency", "allow", "ssl",
        "tls",     "timeout", "deadline",    "retry",       "if",    "group"};
    return w;
  }
  static const std::vector<std::string>& delivery_words() {
    static const std::vector<std::string> w = {"send",     "receive", "within", "keep",
                                               "allow",    "ssl",     "tls",    "timeout",
                                               "deadline", "retry",   "if",     "group"};
    return w;
  }

  ReplicationCheck* replication_check() { return check_.as<ReplicationCheck>(); }
  DeliveryCheck* delivery_check() { return check_.as<DeliveryCheck>(); }

  // A statement that may appear once per check ("all" counts per what follows it).
  void once(const std::string& key, const Location& at) {
    if (key == "all" || key == "allow") return;
    auto [it, fresh] = d_.seen.emplace(key, at);
    if (!fresh) p_.fail(at, "'" + key + "' is already given at " + it->second.str());
  }

  MailUrl url(const std::string& what, Location& at) {
    at = p_.peek().where;
    std::string text = p_.string_value(what);
    MailUrl u;
    std::string error = parse_mail_url(text, u);
    if (!error.empty()) p_.fail(at, error);
    if (!u.password.empty()) p_.files_with_password_.insert(p_.current_file());
    return u;
  }

  // ---- replication ----------------------------------------------------------------------------
  void replication_statement(const std::string& k, const Location& at) {
    ReplicationCheck& r = *replication_check();
    if (k == "servers") {
      do {
        if (r.servers.size() >= kMaxServers)
          p_.fail(p_.peek().where, "at most " + std::to_string(kMaxServers) + " servers");
        Location url_at;
        MailUrl u = url("a server URL (imap://, imaps:// or imap+starttls://)", url_at);
        if (u.scheme.rfind("imap", 0) != 0)
          p_.fail(url_at, "replication servers speak IMAP: imap://, imaps:// or imap+starttls://");
        if (!u.username.empty())
          p_.fail(url_at,
                  "a replication server URL takes no login: the admin logs in as each user "
                  "(say admin \"NAME\" password \"...\")");
        if (u.path != "INBOX")
          p_.fail(url_at,
                  "a replication server URL names no mailbox (all mailboxes or INBOX "
                  "are chosen with 'all mailboxes')");
        // The mailboxes come from 'all mailboxes', not from the URL: show no "/INBOX".
        u.shown.erase(u.shown.rfind('/'));
        r.servers.push_back(std::move(u));
        d_.url_at.push_back(url_at);
      } while (accept_comma());
      if (r.servers.size() < 2)
        p_.fail(at, "replication needs the reference server and at least one replica");
    } else if (k == "admin") {
      if (p_.accept("credentials")) return admin_credentials(r);
      r.admin = p_.value("the admin's user name");
      if (p_.accept("credentials")) return admin_credentials(r);
      p_.expect_kw("password", "after the admin's name (admin \"NAME\" password \"...\")");
      d_.seen.emplace("password", p_.prev().where);
      r.password = p_.value("the admin's password");
      p_.files_with_password_.insert(p_.current_file());
    } else if (k == "credentials") {
      admin_credentials(r);
    } else if (k == "users") {
      do {
        Location user_at = p_.peek().where;
        std::string user = p_.value("a user name");
        if (user.empty() || user.find_first_of(std::string("\r\n\0", 3)) != std::string::npos)
          p_.fail(user_at, "a user name cannot be empty or contain CR, LF or NUL");
        if (r.users.size() >= kMaxUsers)
          p_.fail(user_at, "more than " + std::to_string(kMaxUsers) + " users");
        r.users.push_back(user);
      } while (accept_comma());
    } else if (k == "all") {
      if (p_.accept("users")) {
        once("all users", at);
        r.all_users = true;
      } else if (p_.accept("mailboxes")) {
        once("all mailboxes", at);
        r.all_mailboxes = true;
      } else {
        p_.fail_expected("'users' or 'mailboxes' after 'all'", {"users", "mailboxes"});
      }
    } else if (k == "status") {
      p_.expect_kw("items", "after 'status' (status items MESSAGES UIDNEXT ...)");
      status_items(r);
    } else if (k == "time" || k == "budget") {
      if (k == "time") p_.expect_kw("budget", "after 'time' (time budget N seconds)");
      r.budget_ms = p_.duration_ms("the time budget", 100);
    } else if (k == "failed") {
      r.failed_only = true;  // "failed only": the lexer drops "only"
    } else if (k == "concurrency") {
      r.concurrency =
          static_cast<int>(p_.number("the number of users checked at once", 1, kMaxConcurrency));
      p_.accept("users");
    }
  }

  void admin_credentials(ReplicationCheck& r) {
    Location name_at = p_.peek().where;
    r.credentials = p_.value("the name of an entry in the credentials file");
    size_t service = d_.service;
    size_t check = p_.cfg_.services[service].checks.size() - 1;
    Parser& p = p_;
    p_.use_credentials(r.credentials, name_at, [&p, service, check, name_at](const Credential& c) {
      auto& rc = *p.cfg_.services[service].checks[check].as<ReplicationCheck>();
      if (!c.masteruser.empty()) {
        p.d_.error(name_at, "credentials \"" + rc.credentials +
                                "\" have a masteruser; the replication "
                                "admin logs in as itself");
        return;
      }
      rc.admin = c.username;
      rc.password = c.password;
    });
  }

  void status_items(ReplicationCheck& r) {
    static const std::vector<std::string> known = {
        "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE", "DELETED"};
    std::set<std::string> taken;
    do {
      const Token& t = p_.peek();
      if (t.kind != Token::Kind::word) p_.fail_expected("a STATUS item (" + one_of(known) + ")");
      std::string item = t.text;
      for (char& c : item) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (item == "RECENT")
        p_.fail(t.where, "RECENT cannot be compared: each server counts it for its own sessions");
      if (std::find(known.begin(), known.end(), item) == known.end()) {
        // After the first item, a word that is no near miss of one starts the next statement.
        if (!r.status_items.empty() && did_you_mean(item, known).empty()) break;
        p_.fail(t.where, "unknown STATUS item '" + t.text + "' (known: " + one_of(known) + ")" +
                             did_you_mean(item, known));
      }
      if (!taken.insert(item).second) p_.fail(t.where, "STATUS item " + item + " given twice");
      r.status_items.push_back(item);
      p_.next();
      accept_comma();
    } while (p_.peek().kind == Token::Kind::word);
  }

  void finish_replication(ReplicationCheck& r) {
    if (r.servers.empty())
      p_.fail(d_.where,
              "check replication needs its servers: servers \"imaps://reference\", "
              "\"imaps://replica\"");
    if (r.admin.empty() && r.credentials.empty())
      p_.fail(d_.where,
              "check replication needs the admin who logs in as each user: admin "
              "\"cyrus\" password \"...\" (or credentials \"NAME\")");
    if (!r.users.empty() && r.all_users)
      p_.fail(d_.seen.at("all users"), "give either 'users ...' or 'all users', not both");
    if (r.users.empty() && !r.all_users)
      p_.fail(d_.where,
              "check replication needs the users to check: users \"NAME\", ... or "
              "all users");
    if (r.status_items.empty()) r.status_items = {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"};
    // A run may last the budget plus one user's dialogue; without a budget it checks every
    // user, so it gets a generous bound of its own.
    int64_t slack = std::max<int64_t>(10000, 4 * check_.timeout_ms);
    int64_t fallback = r.budget_ms ? r.budget_ms + slack : std::max<int64_t>(300000, slack);
    check_.deadline_ms = d_.deadline.value_or(fallback);
    if (r.budget_ms && check_.deadline_ms < r.budget_ms + check_.timeout_ms)
      p_.fail(d_.seen.count("deadline") ? d_.seen.at("deadline") : d_.where,
              "the deadline must leave room after the time budget for the users still being "
              "checked (at least the budget plus the timeout)");
    std::vector<std::string> shown;
    for (const auto& s : r.servers) shown.push_back(s.shown);
    describe("replication " + shown[0] + " -> " +
             str::join(std::vector<std::string>(shown.begin() + 1, shown.end()), ", "));
  }

  // ---- delivery -------------------------------------------------------------------------------
  void delivery_statement(const std::string& k, const Location& at) {
    DeliveryCheck& dc = *delivery_check();
    if (k == "send") {
      p_.accept("via");
      dc.send =
          url("the sending URL (smtp://, smtps://, smtp+starttls://, file:///, ftp://, ftps://, "
              "irc:// or irctls://)",
              d_.send_at);
      bool smtp = dc.send.scheme.rfind("smtp", 0) == 0;
      if (!smtp && !dc.send.is_file() && !dc.send.is_ftp() && !dc.send.is_irc())
        p_.fail(d_.send_at,
                "send via an smtp://, smtps://, smtp+starttls://, file:///, ftp://, ftps://, "
                "irc:// or irctls:// URL");
      if (p_.accept("credentials")) delivery_credentials(dc.send_credentials, true);
      // The addresses name the probe's envelope and headers; only SMTP cannot do without them.
      if (!smtp && !is_kw(p_.peek(), "from")) return;
      p_.expect_kw("from", "after the sending URL (send via URL from \"ADDRESS\" to \"ADDRESS\")");
      dc.from = address("the sender's address");
      // "to" is a noise word: the recipient simply follows.
      if (p_.peek().kind != Token::Kind::string && p_.peek().kind != Token::Kind::word)
        p_.fail_expected("the recipient's address after 'to'");
      dc.to = address("the recipient's address");
      if (dc.to.empty()) p_.fail(p_.prev().where, "the recipient's address cannot be empty");
    } else if (k == "receive") {
      p_.accept("via");
      dc.receive =
          url("the receiving URL (imap://, imaps://, imap+starttls://, pop3://, pop3s://, "
              "file:///, ftp://, ftps://, irc:// or irctls://)",
              d_.receive_at);
      if (dc.receive.scheme.rfind("smtp", 0) == 0)
        p_.fail(d_.receive_at, "receive via an imap, pop3, file, ftp or irc URL (smtp only sends)");
      if (p_.accept("credentials")) delivery_credentials(dc.receive_credentials, false);
    } else if (k == "within") {
      dc.within_ms = p_.duration_ms("the time the message may take to arrive", 1000);
    } else if (k == "keep") {
      if (!p_.accept("messages") && !p_.accept("message"))
        p_.fail_expected("'messages' after 'keep'", {"messages"});
      dc.keep_messages = true;
    }
    (void)at;
  }

  std::string address(const std::string& what) {
    Location at = p_.peek().where;
    std::string a = p_.value(what);
    if (a.find_first_of(std::string("<>\r\n\0 ", 6)) != std::string::npos)
      p_.fail(at, what + " is written without <> and spaces: \"probe@example.net\"");
    return a;
  }

  void delivery_credentials(std::string& slot, bool sending) {
    Location name_at = p_.peek().where;
    slot = p_.value("the name of an entry in the credentials file");
    size_t service = d_.service;
    size_t check = p_.cfg_.services[service].checks.size() - 1;
    Parser& p = p_;
    p_.use_credentials(slot, name_at, [&p, service, check, sending, name_at](const Credential& c) {
      auto& dc = *p.cfg_.services[service].checks[check].as<DeliveryCheck>();
      MailUrl& u = sending ? dc.send : dc.receive;
      if (!c.masteruser.empty() && (u.is_ftp() || u.is_irc())) {
        p.d_.error(name_at, "credentials \"" +
                                (sending ? dc.send_credentials : dc.receive_credentials) +
                                "\" have a masteruser; FTP and IRC log in as the user itself");
        return;
      }
      u.username = c.username;
      u.password = c.password;
      u.masteruser = c.masteruser;
    });
  }

  void finish_delivery(DeliveryCheck& dc) {
    if (dc.send.scheme.empty())
      p_.fail(d_.where, "check delivery needs: send via \"URL\" from \"ADDRESS\" to \"ADDRESS\"");
    if (dc.receive.scheme.empty()) p_.fail(d_.where, "check delivery needs: receive via \"URL\"");
    for (const auto* u : {&dc.send, &dc.receive}) {
      const Location& at = u == &dc.send ? d_.send_at : d_.receive_at;
      bool named = !(u == &dc.send ? dc.send_credentials : dc.receive_credentials).empty();
      if (u->is_file() && named) p_.fail(at, "a file:/// URL takes no credentials");
      if (named && !u->username.empty())
        p_.fail(at, "the URL carries a login and credentials are named too: give one of them");
      if (!u->is_file() && !u->is_irc() && (u != &dc.send || u->is_ftp()) && u->username.empty() &&
          !named)
        p_.fail(at, u->is_ftp() ? "FTP needs a login: put it in the URL "
                                  "(ftps://user:pw@host/dir) or say credentials \"NAME\""
                                : "receiving needs a login: put it in the URL "
                                  "(imaps://user%40domain:pw@host) or say credentials \"NAME\"");
      if (!u->username.empty() && u->password.empty() && !named && !u->is_irc())
        p_.fail(at, "the URL's user " + u->username + " has no password (user:password@host)");
    }
    if (dc.from.empty()) dc.from = "probe@mailwarden.invalid";
    if (dc.to.empty()) dc.to = dc.from;
    // The wait must fit in the run with room for connecting, sending and cleaning up.
    int64_t slack = 6 * check_.timeout_ms;
    check_.deadline_ms = d_.deadline.value_or(dc.within_ms + slack);
    if (check_.deadline_ms < dc.within_ms + check_.timeout_ms)
      p_.fail(d_.seen.at("deadline"),
              "the deadline must be longer than 'within' plus the timeout (the message is "
              "waited for inside the run)");
    describe("delivery " + dc.send.shown + " -> " + dc.receive.shown);
  }

  // ---- both ---------------------------------------------------------------------------------
  void describe(const std::string& text) {
    check_.description = text;
    check_.id = text;
    Service& svc = p_.cfg_.services[d_.service];
    if (auto* r = replication_check()) svc.address = r->servers[0].endpoint.host;
    if (auto* dc = delivery_check())
      svc.address = dc->send.is_file() ? dc->send.path : dc->send.endpoint.host;
  }

  bool accept_comma() {
    if (p_.peek().kind != Token::Kind::comma) return false;
    p_.next();
    return true;
  }

  // if failed | out of sync [N mailboxes] | invalid users | latency > T
  //    [for N cycles | N times within M cycles] then ACTIONS [else if succeeded ... then ACTIONS]
  void rule(const Location& at) {
    Rule r;
    r.where = at;
    bool replication = d_.kind == ServiceKind::replication;
    std::vector<std::string> conditions = {"failed"};
    if (replication) {
      conditions.insert(conditions.end(), {"out of sync", "invalid users"});
    } else {
      conditions.push_back("latency");
    }
    if (p_.accept("failed")) {
      r.condition = Condition::failed;
    } else if (replication && p_.accept("out")) {
      p_.expect_kw("sync", "after 'out of'");
      r.condition = Condition::out_of_sync;
      r.threshold = 1;
      if (p_.peek().kind == Token::Kind::number &&
          (is_kw(p_.peek(1), "mailboxes") || is_kw(p_.peek(1), "mailbox"))) {
        r.threshold = p_.number("the number of mailboxes", 1, 100000000);
        p_.next();
      }
    } else if (replication && p_.accept("invalid")) {
      p_.expect_kw("users", "after 'invalid'");
      r.condition = Condition::invalid_users;
    } else if (!replication && p_.accept("latency")) {
      p_.parse_comparison_gt("'latency'");
      r.condition = Condition::latency;
      r.threshold = p_.duration_ms("the latency limit", 1);
    } else {
      std::vector<std::string> words;
      for (const auto& c : conditions) words.push_back(c.substr(0, c.find(' ')));
      p_.fail_expected("a condition after 'if' (" + one_of(conditions) + ")", words);
    }
    if (p_.peek().kind == Token::Kind::number) p_.parse_cycles(r.fail_rule);
    for_cycles(r.fail_rule);
    p_.expect_kw("then", "before the actions");
    p_.parse_actions(r.fail_actions);
    p_.parse_severity(r.severity);
    if (p_.accept("else")) {
      p_.expect_kw("if", "after 'else'");
      if (!p_.accept("succeeded") && !p_.accept("passed"))
        p_.fail_expected("'succeeded' after 'else if'", {"succeeded"});
      if (p_.peek().kind == Token::Kind::number) p_.parse_cycles(r.ok_rule);
      for_cycles(r.ok_rule);
      p_.expect_kw("then", "after 'else if succeeded'");
      p_.parse_actions(r.ok_actions);
    }
    check_.rules.push_back(std::move(r));
  }

  void for_cycles(EventRule& rule) {
    if (!p_.accept("for")) return;
    long long n = p_.number("the number of cycles", 1, kMaxCycles);
    p_.expect_kw("cycles", "after 'for N'");
    rule = EventRule{static_cast<int>(n), static_cast<int>(n)};
  }

  static bool is_kw(const Token& t, std::string_view kw) { return Parser::is_kw(t, kw); }

  Parser& p_;
  CompositeDraft& d_;
  Check& check_;
};

// ---- Parser entry points ----------------------------------------------------------------------

namespace {

void begin_composite(Parser& p, std::vector<std::shared_ptr<CompositeDraft>>& drafts,
                     size_t service, ServiceKind kind, size_t errors) {
  auto draft = std::make_shared<CompositeDraft>();
  draft->service = service;
  draft->kind = kind;
  draft->errors_before = errors;
  drafts.push_back(draft);
  (void)p;
}

}  // namespace

// `check replication NAME` and `check delivery NAME`: one service with one check, whose body
// statements the CompositeParser reads and whose model it finishes.
void Parser::check_composite(ServiceKind kind, const char* statement, std::shared_ptr<Spec> initial,
                             const checks::Kind& check_kind) {
  size_t errors = d_.count();
  size_t index = begin_service(kind, statement);
  begin_composite(*this, composites_, index, kind, errors);
  auto& draft = *composites_.back();
  draft.where = cfg_.services[index].where;
  Check chk;
  chk.where = draft.where;
  chk.timeout_ms = default_timeout_ms_;
  chk.kind = &check_kind;
  chk.spec = std::move(initial);
  cfg_.services[index].checks.push_back(std::move(chk));
  parse_service_body(index, CompositeParser::body_forms(kind));
  try {
    CompositeParser(*this, draft).finish();
  } catch (const Abandon&) {
  }
}

void Parser::check_replication() {
  check_composite(ServiceKind::replication, "check replication",
                  std::make_shared<ReplicationCheck>(), checks::get("replication"));
}

void Parser::check_delivery() {
  check_composite(ServiceKind::delivery, "check delivery", std::make_shared<DeliveryCheck>(),
                  checks::get("delivery"));
}

void Parser::composite_statement(size_t service) {
  if (composites_.empty() || composites_.back()->service != service)
    abort();  // only check_replication/check_delivery hand out this handler
  CompositeParser(*this, *composites_.back()).statement();
}

// After the whole file: TLS settings (set ssl options may come last) and the checks that need
// the passwords a credentials file supplied.
void Parser::finish_composites() {
  for (const auto& draft : composites_) {
    if (draft->service >= cfg_.services.size()) continue;
    auto& checks = cfg_.services[draft->service].checks;
    if (checks.empty()) continue;
    Check& chk = checks.back();
    auto settle = [&](MailUrl& u) {
      u.tls = cfg_.settings.tls;
      if (draft->tls) draft->tls->apply_to(u.tls);
    };
    if (auto* r = chk.as<ReplicationCheck>()) {
      for (size_t i = 0; i < r->servers.size(); ++i) {
        settle(r->servers[i]);
        if (r->servers[i].tls_mode == TlsMode::none && !r->allow_plaintext &&
            i < draft->url_at.size())
          d_.error(draft->url_at[i],
                   "the admin's password would cross an unencrypted "
                   "connection to " +
                       r->servers[i].shown +
                       "; use imaps:// or imap+starttls://, or say 'allow "
                       "plaintext'");
      }
    } else if (auto* dc = chk.as<DeliveryCheck>()) {
      for (auto* u : {&dc->send, &dc->receive}) {
        settle(*u);
        const Location& at = u == &dc->send ? draft->send_at : draft->receive_at;
        // An IRC URL's user is a nick: only a server password is a secret.
        bool secret = u->is_irc() ? !u->password.empty() : !u->username.empty();
        if (secret && u->tls_mode == TlsMode::none && !dc->allow_plaintext)
          d_.error(at, "the password of " + (u->is_irc() ? "the IRC server" : u->username) +
                           " would cross an unencrypted connection to " + u->shown +
                           "; use a TLS scheme (smtps, smtp+starttls, imaps, imap+starttls, "
                           "pop3s, ftps, irctls) or say 'allow plaintext'");
      }
    }
  }
}

}  // namespace mw::config::parsing
