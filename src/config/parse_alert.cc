// Where alert mail goes and how it looks: "set mailserver", "set mail-format", "set alert",
// "set eventqueue", and a service's own "alert ADDR ..." and "noalert ADDR". Written the way
// monit users know them; the semantic checks (addresses, variables, logins) happen here.
#include <algorithm>
#include <set>

#include "config/parser.h"
#include "config/parser_impl.h"
#include "util/files.h"
#include "util/strings.h"

namespace mw::config::parsing {
namespace {

// What a word in "on { ... }" selects.
enum class EventWord { failed, succeeded, classes, never };

struct EventName {
  const char* name;
  EventWord word;
  std::vector<FailureClass> classes;
};

std::vector<FailureClass> every_class() {
  std::vector<FailureClass> all;
  for (int i = static_cast<int>(FailureClass::connect);
       i <= static_cast<int>(FailureClass::internal); ++i)
    all.push_back(static_cast<FailureClass>(i));
  return all;
}

// mailwarden's own names (the two state changes and the failure classes), and monit's event
// names: those that have a meaning here map to it; the others are accepted so that a monit
// control file reads unchanged, and select nothing, because mailwarden never sends them.
const std::vector<EventName>& event_names() {
  static const std::vector<EventName> names = [] {
    std::vector<EventName> v = {
        {"failed", EventWord::failed, {}},
        {"succeeded", EventWord::succeeded, {}},
        {"recovered", EventWord::succeeded, {}},
        {"connection", EventWord::classes, every_class()},
        {"data", EventWord::classes, {FailureClass::content}},
    };
    for (FailureClass c : every_class())
      v.push_back({failure_class_name(c), EventWord::classes, {c}});
    for (const char* monit :
         {"action",   "bytein",    "byteout",    "checksum",  "exec",    "exist",    "fsflags",
          "gid",      "heartbeat", "icmp",       "instance",  "invalid", "link",     "nonexist",
          "packetin", "packetout", "permission", "pid",       "ppid",    "resource", "saturation",
          "size",     "speed",     "status",     "timestamp", "uid",     "uptime"})
      v.push_back({monit, EventWord::never, {}});
    return v;
  }();
  return names;
}

// user@domain in ASCII, nothing that could break an SMTP command or a header.
bool valid_address(const std::string& a) {
  auto at = a.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == a.size() || a.size() > 254) return false;
  for (unsigned char c : a)
    if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' ||
        c == ';' || c == '"' || c == '\\')
      return false;
  return true;
}

// The address inside "Name <user@domain>", or the whole value.
std::string address_part(const std::string& v) {
  auto open = v.rfind('<');
  auto close = v.rfind('>');
  if (open != std::string::npos && close != std::string::npos && close > open)
    return v.substr(open + 1, close - open - 1);
  return std::string(str::trim(v));
}

// Byte offset of every line start, for turning a token's line:col into a position.
std::vector<size_t> line_starts(const std::string& text) {
  std::vector<size_t> starts = {0};
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') starts.push_back(i + 1);
  return starts;
}

// Where a token ends in the source, given where it starts.
size_t token_end(const Token& t, const std::string& text, size_t start) {
  switch (t.kind) {
    case Token::Kind::string: {
      char quote = text[start];
      size_t i = start + 1;
      while (i < text.size() && text[i] != quote && text[i] != '\n') i += text[i] == '\\' ? 2 : 1;
      return std::min(i + 1, text.size());
    }
    case Token::Kind::word:
    case Token::Kind::number:
    case Token::Kind::op:
      return std::min(start + t.text.size(), text.size());
    default:
      return std::min(start + 1, text.size());
  }
}

// The space between two tokens as written: noise words stay, comments go.
std::string without_comments(const std::string& gap) {
  std::string out;
  bool comment = false;
  for (char c : gap) {
    if (c == '#') comment = true;
    if (c == '\n') comment = false;
    if (!comment) out += c;
  }
  return out;
}

// Trailing blanks of each line and blank lines at both ends removed.
std::string tidy(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
      line.pop_back();
    out += line;
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return std::string(str::trim(out));
}

}  // namespace

// ---- set mailserver -----------------------------------------------------------------------
// monit's SSL/TLS version words after "using".
bool mail_tls_version(const std::string& word) {
  static const std::set<std::string> words = {"sslauto", "auto",   "sslv2",  "sslv3", "tlsv1",
                                              "tlsv10",  "tlsv11", "tlsv12", "tlsv13"};
  return words.count(str::lower(word)) > 0;
}

void Parser::set_mailserver() {
  std::vector<MailServer> servers;
  std::vector<std::optional<TlsOverrides>> server_tls;
  std::optional<int64_t> timeout;
  std::optional<std::string> helo;
  static const std::vector<std::string> words = {"port", "username", "password", "tls",
                                                 "ssl",  "allow",    "timeout",  "hostname"};
  do {
    MailServer ms;
    ms.where = peek().where;
    ms.host = value("a mail server host name or address");
    if (ms.host.empty()) fail(ms.where, "a mail server needs a host");
    bool port_given = false;
    std::optional<Location> password_at, user_at, version_at;
    std::string version_word;
    std::optional<TlsOverrides> tls;
    for (;;) {
      Location at_kw = peek().where;
      if (accept("port")) {
        ms.port = static_cast<uint16_t>(number("a port number", 1, 65535));
        port_given = true;
      } else if (accept("username") || accept("user")) {
        user_at = at_kw;
        ms.username = string_or_word("a user name");
      } else if (accept("password")) {
        password_at = at_kw;
        ms.password = string_or_word("a password");
        files_with_password_.insert(current_file());
      } else if (accept("ssl")) {
        ms.tls_mode = TlsMode::implicit;
      } else if (accept("tls") || accept("starttls")) {
        ms.tls_mode = TlsMode::starttls;
      } else if (peek().kind == Token::Kind::word && mail_tls_version(peek().text)) {
        // monit's "using tlsv12" (sslauto, tlsv1, ...): TLS is required. It starts from the
        // first byte on port 465 (the default port then) and with STARTTLS on any other port,
        // which is how the Gmail and SES examples (port 587) work.
        Token v = next();
        version_at = v.where;
        version_word = str::lower(v.text);
      } else if (at("options") || peek().kind == Token::Kind::lbrace) {
        accept("options");
        TlsOverrides o;
        parse_tls_block(o);
        tls = o;
      } else if (accept("allow")) {
        expect_kw("plaintext", "after 'allow' (allow plaintext)");
        ms.allow_plaintext = true;
      } else if (accept("timeout")) {
        timeout = duration_ms("the mail server timeout", 1000);
      } else if (accept("hostname")) {
        helo = value("the name to greet the mail server with");
      } else if (peek().kind == Token::Kind::word && (str::istarts_with(peek().text, "tlsv") ||
                                                      str::istarts_with(peek().text, "sslv"))) {
        fail(at_kw, "'" + peek().text +
                        "': write 'using tls' (STARTTLS) or 'using ssl' (TLS from the first "
                        "byte); the oldest TLS version is set with set ssl options { version: }");
      } else {
        break;
      }
    }
    if (version_at) {
      if (ms.tls_mode == TlsMode::none)
        ms.tls_mode = !port_given || ms.port == 465 ? TlsMode::implicit : TlsMode::starttls;
      if (version_word == "tlsv13") {
        if (!tls) tls = TlsOverrides{};
        tls->min_version = TlsVersion::tls13;
      } else if (version_word != "tlsv12" && version_word != "sslauto" && version_word != "auto") {
        warn(*version_at, "'" + version_word +
                              "' is older than TLS 1.2, which mailwarden never speaks: the mail "
                              "server is reached with TLS 1.2 or newer");
      }
    }
    if (!port_given && ms.tls_mode == TlsMode::implicit) ms.port = 465;
    if (!ms.password.empty() && ms.username.empty())
      fail(*password_at, "a mail server password needs a username");
    if (!ms.username.empty() && ms.password.empty())
      fail(*user_at, "mail server username '" + ms.username + "' has no password");
    // A login never crosses an unencrypted connection: STARTTLS becomes required unless the
    // statement says otherwise.
    if (!ms.username.empty() && ms.tls_mode == TlsMode::none && !ms.allow_plaintext)
      ms.tls_mode = TlsMode::starttls;
    servers.push_back(std::move(ms));
    server_tls.push_back(tls);
    if (peek().kind != Token::Kind::comma) break;
    // monit reads commas as blanks: "set mailserver a, b," ends at the next statement.
    while (peek().kind == Token::Kind::comma) next();
    if (peek().kind == Token::Kind::end || at("set") || at("check") || at("include")) break;
  } while (true);
  for (size_t i = 0; i < servers.size(); ++i) {
    MailServer& ms = servers[i];
    if (timeout) ms.timeout_ms = *timeout;
    if (helo) ms.helo = *helo;
    cfg_.settings.mailservers.push_back(std::move(ms));
    if (server_tls[i])
      pending_mailserver_tls_.emplace_back(cfg_.settings.mailservers.size() - 1, *server_tls[i]);
  }
  check_statement_end("set mailserver", words);
}

// ---- set mail-format ----------------------------------------------------------------------
void Parser::set_mail_format() {
  parse_mail_format(cfg_.settings.mail_format);
  check_statement_end("set mail-format", {});
}

std::string Parser::source_text(size_t first, size_t last) {
  const Token& head = (*toks_)[first];
  std::string error;
  auto text = files::read(head.where.file, error);
  if (!text) fail(head.where, "cannot read the mail-format again: " + error);
  auto starts = line_starts(*text);
  auto offset = [&](const Location& l) {
    size_t line = static_cast<size_t>(std::max(l.line, 1)) - 1;
    size_t base = line < starts.size() ? starts[line] : text->size();
    return std::min(base + static_cast<size_t>(std::max(l.col, 1)) - 1, text->size());
  };
  std::string out;
  size_t prev_end = 0;
  for (size_t i = first; i <= last; ++i) {
    const Token& t = (*toks_)[i];
    size_t start = offset(t.where);
    if (i > first && start > prev_end)
      out += without_comments(text->substr(prev_end, start - prev_end));
    size_t end = token_end(t, *text, start);
    out += text->substr(start, end - start);
    prev_end = end;
  }
  return tidy(out);
}

void Parser::check_mail_variables(const std::string& text, const Location& where) {
  const auto& known = mail_format_variables();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') continue;
    size_t j = i + 1;
    while (j < text.size() && ((text[j] >= 'A' && text[j] <= 'Z') || text[j] == '_')) ++j;
    if (j == i + 1) continue;  // "$5": not a variable
    std::string name = text.substr(i + 1, j - i - 1);
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::vector<std::string> shown;
      for (const auto& k : known) shown.push_back("$" + k);
      fail(where, "unknown variable $" + name + " (known: " + str::join(shown, ", ") + ")" +
                      did_you_mean("$" + name, shown));
    }
    i = j - 1;
  }
}

void Parser::parse_mail_format(MailFormat& format) {
  if (peek().kind != Token::Kind::lbrace) fail_expected("'{' to start the mail-format");
  next();
  static const std::vector<std::string> keys = {"from", "reply-to", "subject", "message"};
  auto key_at = [&](size_t ahead) {
    const Token& t = peek(ahead);
    return t.kind == Token::Kind::word && peek(ahead + 1).kind == Token::Kind::colon &&
           std::find(keys.begin(), keys.end(), str::lower(t.text)) != keys.end();
  };
  while (peek().kind != Token::Kind::rbrace) {
    if (peek().kind == Token::Kind::end) fail_expected("'}' to close the mail-format");
    const Token key = peek();
    if (!key_at(0)) {
      std::string hint =
          key.kind == Token::Kind::word ? did_you_mean(str::lower(key.text), keys) : "";
      fail(key.where, "expected a mail-format part (from:, reply-to:, subject: or message:), got " +
                          describe(key) + hint);
    }
    next();
    next();
    size_t first = pos_;
    while (peek().kind != Token::Kind::rbrace && peek().kind != Token::Kind::end && !key_at(0))
      next();
    std::string k = str::lower(key.text);
    if (pos_ == first) fail(key.where, "'" + k + ":' has no text");
    const Token& only = (*toks_)[first];
    std::string text;
    if (pos_ - first == 1 && only.kind == Token::Kind::string) {
      // A quoted part may hold what bare text cannot (parentheses, quotes, '#', '}') and
      // \n for a line break.
      std::string error;
      if (!unescape_send(only.text, text, error)) fail(only.where, error);
    } else {
      text = source_text(first, pos_ - 1);
    }
    check_mail_variables(text, key.where);
    if ((k == "from" || k == "reply-to") && text.find('$') == std::string::npos &&
        !valid_address(address_part(text)))
      fail(key.where, "'" + k + ":' is not a mail address (user@domain or Name <user@domain>): " +
                          str::printable(text, 80));
    std::optional<std::string>& slot = k == "from"       ? format.from
                                       : k == "reply-to" ? format.reply_to
                                       : k == "subject"  ? format.subject
                                                         : format.message;
    if (slot) fail(key.where, "'" + k + ":' is given twice in this mail-format");
    slot = std::move(text);
  }
  next();
}

// ---- set alert / alert / noalert ----------------------------------------------------------
void Parser::parse_alert_events(AlertEvents& events) {
  if (accept("not")) events.negate = true;
  if (peek().kind != Token::Kind::lbrace)
    fail_expected("'{' with the events (on { failed, succeeded, timeout, ... })");
  Location open = next().where;
  bool state_word = false, class_word = false;
  std::set<FailureClass> classes;
  std::vector<std::string> names;
  for (const auto& n : event_names()) names.emplace_back(n.name);
  events.on_failed = events.on_succeeded = false;
  while (peek().kind != Token::Kind::rbrace) {
    if (peek().kind == Token::Kind::end) fail_expected("'}' to close the event list");
    if (peek().kind == Token::Kind::comma) {
      next();
      continue;
    }
    const Token t = peek();
    std::string name = t.kind == Token::Kind::word ? str::lower(t.text) : "";
    auto it = std::find_if(event_names().begin(), event_names().end(),
                           [&](const EventName& e) { return name == e.name; });
    if (it == event_names().end())
      fail(t.where, "unknown event " + describe(t) +
                        " (mailwarden sends failed and succeeded, with the failure class: "
                        "connect, timeout, tls, protocol, auth, rejected, missing-feature, "
                        "certificate, responsetime, content)" +
                        did_you_mean(name, names));
    next();
    events.names.push_back(name);
    switch (it->word) {
      case EventWord::failed:
        state_word = true;
        events.on_failed = true;
        break;
      case EventWord::succeeded:
        state_word = true;
        events.on_succeeded = true;
        break;
      case EventWord::classes:
        class_word = true;
        classes.insert(it->classes.begin(), it->classes.end());
        break;
      case EventWord::never:
        class_word = true;
        break;
    }
  }
  next();
  if (events.names.empty()) fail(open, "the event list is empty");
  if (!state_word) events.on_failed = events.on_succeeded = true;
  events.any_class = !class_word;
  events.classes.assign(classes.begin(), classes.end());
}

AlertRecipient Parser::parse_recipient(const std::string& statement) {
  AlertRecipient r;
  r.where = peek().where;
  r.address = value("a mail address after '" + statement + "'");
  if (!valid_address(r.address))
    fail(r.where, "'" + str::printable(r.address, 80) + "' is not a mail address (user@domain)");
  bool events = false, format = false, reminder = false;
  for (;;) {
    Location at_kw = peek().where;
    accept("but");
    if (at("not") || peek().kind == Token::Kind::lbrace) {
      if (events) fail(at_kw, "the events of " + r.address + " are given twice");
      events = true;
      parse_alert_events(r.events);
    } else if (accept("mail-format")) {
      if (format) fail(at_kw, "the mail-format of " + r.address + " is given twice");
      format = true;
      parse_mail_format(r.format);
    } else if (accept("reminder")) {
      if (reminder) fail(at_kw, "the reminder of " + r.address + " is given twice");
      reminder = true;
      r.reminder_cycles = static_cast<int>(number("the reminder interval in cycles", 1, 100000));
      if (!accept("cycles")) accept("cycle");
    } else {
      return r;
    }
  }
}

void Parser::set_alert() {
  AlertRecipient r = parse_recipient("set alert");
  for (const auto& other : cfg_.settings.alerts)
    if (str::iequals(other.address, r.address))
      fail(r.where, "set alert " + r.address + " is already given at " + other.where.str());
  cfg_.settings.alerts.push_back(std::move(r));
  check_statement_end("set alert", {"not", "mail-format", "reminder"});
}

void Parser::service_alert(size_t index) {
  next();
  AlertRecipient r = parse_recipient("alert");
  for (const auto& other : cfg_.services[index].alerts)
    if (str::iequals(other.address, r.address))
      fail(r.where,
           "alert " + r.address + " is already given for this service at " + other.where.str());
  cfg_.services[index].alerts.push_back(std::move(r));
}

void Parser::service_noalert(size_t index) {
  next();
  Location where = peek().where;
  std::string address = value("a mail address after 'noalert'");
  if (!valid_address(address))
    fail(where, "'" + str::printable(address, 80) + "' is not a mail address (user@domain)");
  cfg_.services[index].noalerts.push_back(address);
}

// ---- set eventqueue -----------------------------------------------------------------------
void Parser::set_eventqueue() {
  // monit also takes "set eventqueue slots N" alone: the limit then applies to the mails that
  // wait in memory.
  if (!at("slots")) {
    expect_kw("basedir", "after 'set eventqueue' (set eventqueue basedir PATH [slots N])");
    Location where = peek().where;
    std::string dir = files::expand_home(value("the event queue directory"));
    if (dir.empty()) fail(where, "the event queue directory cannot be empty");
    if (dir[0] != '/') dir = files::dirname(current_file()) + "/" + dir;
    cfg_.settings.eventqueue.dir = dir;
  }
  if (accept("slots"))
    cfg_.settings.eventqueue.slots = static_cast<int>(number("the number of slots", 1, 1000000));
  check_statement_end("set eventqueue", {"slots"});
}

// A statement that ends where the next one must start: anything else is reported here, with
// what this statement takes, rather than as a statement that cannot start.
void Parser::check_statement_end(const std::string& statement,
                                 const std::vector<std::string>& words) {
  const Token& t = peek();
  if (t.kind == Token::Kind::end || at("set") || at("check") || at("include")) return;
  std::string hint = t.kind == Token::Kind::word ? did_you_mean(str::lower(t.text), words) : "";
  fail(t.where, "unexpected " + describe(t) + " after '" + statement +
                    "' (a new statement starts with 'set', 'check' or 'include')" + hint);
}

}  // namespace mw::config::parsing
