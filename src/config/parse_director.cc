// "check director NAME with socket PATH | with address H port N" and its body, the
// "director down|up|flush" actions of any rule, and "set director socket PATH".
//
//   check director ring1 with socket "/var/run/dovecot/director-admin"
//       poll imap port 143 starttls credentials by address servername "imap.example.net"
//       poll lmtp port 24 with timeout 3 seconds
//       retry 3 rapid 10 rounds 8 fails every 1 seconds
//       max down 30%
//       reset users                       # or: flush | no flush
//       dry run
//       if backend down then alert
//       if backend up then alert
//       if failed then alert
#include <algorithm>
#include <cctype>

#include "checks/registry.h"
#include "config/parser.h"
#include "config/parser_impl.h"
#include "protocols/registry.h"
#include "util/strings.h"

namespace mw::config::parsing {

namespace {

constexpr size_t kMaxPolls = 16;
constexpr int kMaxRounds = 100;

bool looks_like_ip(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdefABCDEF.:") == std::string::npos &&
         (std::count(s.begin(), s.end(), '.') == 3 || s.find(':') != std::string::npos);
}

}  // namespace

// What a poll line left for the end of the file: its credentials and TLS settings.
struct PollDraft {
  Location where;
  Location credentials_at;
  std::string credentials;  // one entry for every backend
  std::optional<TlsOverrides> tls;
  std::string servername;  // written on the line
};

struct DirectorDraft {
  size_t service = 0;
  Location where;
  size_t errors_before = 0;
  std::map<std::string, Location> seen;
  std::vector<PollDraft> polls;
  std::optional<TlsOverrides> tls;  // ssl options { } for every poll
  std::optional<int64_t> deadline;
};

class DirectorParser {
 public:
  DirectorParser(Parser& p, DirectorDraft& draft)
      : p_(p), d_(draft), check_(p.cfg_.services[draft.service].checks.back()) {}

  DirectorCheck& dc() { return *check_.as<DirectorCheck>(); }

  static const std::vector<std::string>& words() {
    static const std::vector<std::string> w = {
        "poll", "retry", "rapid", "max",      "flush", "reset", "no",    "dry",
        "ssl",  "tls",   "admin", "deadline", "if",    "group", "alert", "noalert"};
    return w;
  }

  static const std::vector<Parser::BodyForm>& body_forms() {
    static const std::vector<Parser::BodyForm> forms = [] {
      std::vector<Parser::BodyForm> out;
      for (const auto& w : words()) {
        Parser::BodyHandler h = &Parser::director_statement;
        if (w == "group") h = &Parser::parse_group;
        if (w == "alert") h = &Parser::service_alert;
        if (w == "noalert") h = &Parser::service_noalert;
        out.push_back({w.c_str(), h});
      }
      return out;
    }();
    return forms;
  }

  void statement() {
    const Token& t = p_.peek();
    std::string k = str::lower(t.text);
    Location at = t.where;
    p_.next();
    if (k == "poll") return poll(at);
    if (k == "if") return rule(at);
    once(k == "rapid" ? "retry" : k == "reset" || k == "no" ? "flush" : k, at);
    if (k == "retry" || k == "rapid") {
      if (k == "retry") {
        dc().retry = static_cast<int>(p_.number("the number of failed polls in a row", 1, 100));
        if (!p_.accept("rapid")) return;
      }
      dc().rapid_rounds = static_cast<int>(p_.number("the number of rapid polls", 1, kMaxRounds));
      p_.expect_kw("rounds", "after the number of rapid polls (rapid 10 rounds 8 fails)");
      Location fails_at = p_.peek().where;
      dc().rapid_fails =
          static_cast<int>(p_.number("the failed rapid polls needed", 1, kMaxRounds));
      if (!p_.accept("fails") && !p_.accept("failures") && !p_.accept("failed"))
        p_.fail_expected("'fails' after the number (rapid 10 rounds 8 fails)", {"fails"});
      if (dc().rapid_fails > dc().rapid_rounds)
        p_.fail(fails_at, std::to_string(dc().rapid_fails) + " failed polls out of " +
                              std::to_string(dc().rapid_rounds) + " rounds can never happen");
      if (p_.accept("every")) dc().rapid_every_ms = p_.duration_ms("the rapid poll interval", 100);
    } else if (k == "max") {
      p_.expect_kw("down", "after 'max' (max down N or max down N%)");
      const Token& n = p_.peek();
      if (n.kind == Token::Kind::word && n.text.size() > 1 && n.text.back() == '%' &&
          n.text.find_first_not_of("0123456789") == n.text.size() - 1) {
        long long v = std::stoll(n.text.substr(0, std::min<size_t>(n.text.size() - 1, 4)));
        if (v < 1 || v > 100) p_.fail(n.where, "max down N% must be between 1% and 100%");
        dc().max_down = static_cast<int>(v);
        dc().max_down_percent = true;
        p_.next();
      } else {
        dc().max_down = static_cast<int>(p_.number("the number of backends (or N%)", 0, 10000));
        if (p_.accept("percent")) {
          if (dc().max_down < 1 || dc().max_down > 100)
            p_.fail(p_.prev().where, "max down N% must be between 1% and 100%");
          dc().max_down_percent = true;
        }
      }
    } else if (k == "flush") {
      dc().release = DirectorRelease::flush;
    } else if (k == "reset") {
      p_.expect_kw("users", "after 'reset' (reset users)");
      dc().release = DirectorRelease::reset_users;
    } else if (k == "no") {
      p_.expect_kw("flush", "after 'no' (no flush)");
      dc().release = DirectorRelease::none;
    } else if (k == "dry") {
      p_.expect_kw("run", "after 'dry' (dry run)");
      dc().dry_run = true;
    } else if (k == "ssl" || k == "tls") {
      p_.accept("options");
      TlsOverrides o;
      p_.parse_tls_block(o);
      d_.tls = o;
    } else if (k == "admin") {
      // "admin timeout": a bare "timeout" after a poll line is that poll's own.
      p_.expect_kw("timeout", "after 'admin' (admin timeout N seconds)");
      check_.timeout_ms = p_.duration_ms("the director-admin timeout", 100);
    } else if (k == "deadline") {
      d_.deadline = p_.duration_ms("the deadline", 1000);
    }
  }

  void finish() {
    if (p_.d_.count() != d_.errors_before) return;
    DirectorCheck& c = dc();
    if (c.polls.empty())
      p_.fail(d_.where,
              "check director needs at least one poll line: poll imap port 143 [starttls] "
              "[credentials \"NAME\"]");
    // A run lasts the regular polls, the rapid rounds of backends that failed, and the
    // director's replies (a ring sync may take 30 s per command).
    int64_t longest = 0;
    for (const auto& poll : c.polls) longest = std::max(longest, poll.timeout_ms);
    int64_t fallback =
        3 * longest + c.rapid_rounds * c.rapid_every_ms + 4 * check_.timeout_ms + 120000;
    check_.deadline_ms = d_.deadline.value_or(fallback);
    check_.retry = 0;  // `retry` here counts failed polls of a backend, not runs of the check
    std::string where = c.admin.describe();
    check_.description = "director " + where;
    check_.id = check_.description;
    p_.cfg_.services[d_.service].address = c.admin.unix_path.empty() ? c.admin.host : where;
  }

  // After the whole file: TLS (set ssl options may come last), credentials, accounts.
  void settle(const std::optional<CredentialsFile>& file, const std::string& file_error) {
    DirectorCheck& c = dc();
    bool wants_accounts = false;
    for (size_t i = 0; i < c.polls.size() && i < d_.polls.size(); ++i) {
      DirectorPoll& poll = c.polls[i];
      const PollDraft& draft = d_.polls[i];
      poll.port.tls = p_.cfg_.settings.tls;
      if (d_.tls) d_.tls->apply_to(poll.port.tls);
      if (draft.tls) draft.tls->apply_to(poll.port.tls);
      if (!draft.servername.empty()) poll.port.tls.server_name = draft.servername;
      if (poll.per_backend) wants_accounts = true;
    }
    if (!wants_accounts) return;
    if (!file) {
      if (!file_error.empty()) p_.d_.error(d_.where, file_error);
      return;
    }
    for (const auto& [name, cred] : file->entries()) {
      if (cred.address.empty()) continue;
      c.accounts[cred.address] =
          DirectorAccount{cred.username, cred.password, cred.masteruser, cred.servername};
    }
    if (c.accounts.empty())
      p_.d_.error(d_.where, "'credentials by address' finds no entry with address = \"IP\" in " +
                                p_.credentials_path_ +
                                " (one entry per backend, its IP as HOST-LIST shows it)");
  }

 private:
  void once(const std::string& key, const Location& at) {
    auto [it, fresh] = d_.seen.emplace(key, at);
    if (!fresh) p_.fail(at, "'" + key + "' is already given at " + it->second.str());
  }

  // poll PROTOCOL [port N] [starttls | ssl] [ssl options {..}] [servername "NAME"]
  //      [username "U" password "P" [masteruser "M"] | credentials "NAME" | credentials by
  //      address] [select "MAILBOX"] [allow plaintext] [timeout N seconds]
  void poll(const Location& at) {
    if (dc().polls.size() >= kMaxPolls)
      p_.fail(at, "at most " + std::to_string(kMaxPolls) + " poll lines");
    DirectorPoll poll;
    PollDraft draft;
    draft.where = at;
    Location proto_at = p_.peek().where;
    std::string name = str::lower(p_.value("a protocol after 'poll' (imap, pop, lmtp, ...)"));
    const protocols::ProtocolInfo* proto = protocols::find(name);
    if (!proto) {
      std::vector<std::string> names;
      for (const auto& row : protocols::all()) names.emplace_back(row.name);
      p_.fail(proto_at, "unknown protocol '" + name + "' (known: " + str::join(names, ", ") + ")" +
                            did_you_mean(name, names));
    }
    PortCheck& pc = poll.port;
    pc.protocol_name = name;
    pc.protocol = proto;
    pc.endpoint.port = proto->default_port;
    TlsMode mode = proto->default_tls;
    bool starttls = false, ssl = false;
    std::optional<Location> login_at;
    poll.timeout_ms = p_.default_timeout_ms_;
    for (;;) {
      const Token& t = p_.peek();
      if (t.kind != Token::Kind::word) break;
      std::string k = str::lower(t.text);
      Location kw_at = t.where;
      if (k == "port") {
        p_.next();
        pc.endpoint.port = static_cast<uint16_t>(p_.number("a port number", 1, 65535));
      } else if (k == "starttls") {
        p_.next();
        if (!proto->starttls) p_.fail(kw_at, "protocol '" + name + "' has no STARTTLS");
        starttls = true;
      } else if ((k == "ssl" || k == "tls") &&
                 (Parser::is_kw(p_.peek(1), "options") || p_.peek(1).kind == Token::Kind::lbrace)) {
        p_.next();
        p_.accept("options");
        TlsOverrides o;
        p_.parse_tls_block(o);
        draft.tls = o;
      } else if (k == "ssl" || k == "tls") {
        p_.next();
        ssl = true;
      } else if (k == "servername") {
        p_.next();
        draft.servername = p_.value("the name the backends' certificates carry");
      } else if (k == "username" || k == "user") {
        p_.next();
        login_at = kw_at;
        pc.options.username = p_.value("a user name");
      } else if (k == "password") {
        p_.next();
        pc.options.password = p_.value("a password");
        p_.note_secret(kw_at);
      } else if (k == "masteruser") {
        p_.next();
        pc.options.authzid = p_.value("a master user name");
      } else if (k == "credentials") {
        p_.next();
        login_at = kw_at;
        draft.credentials_at = p_.peek().where;
        if (Parser::is_kw(p_.peek(), "by")) {
          p_.next();
          p_.expect_kw("address", "after 'credentials by' (credentials by address)");
          poll.per_backend = true;
        } else {
          draft.credentials = p_.value("the name of an entry of the credentials file");
          pc.options.credentials = draft.credentials;
        }
      } else if (k == "select" || k == "mailbox") {
        p_.next();
        if (!(proto->accepts & protocols::kMailbox))
          p_.fail(kw_at, "protocol '" + name + "' does not take 'select'");
        pc.options.mailbox = p_.value("a mailbox name");
      } else if (k == "allow") {
        p_.next();
        p_.expect_kw("plaintext", "after 'allow' (allow plaintext)");
        pc.options.allow_plaintext = true;
      } else if (k == "timeout") {
        p_.next();
        poll.timeout_ms = p_.duration_ms("the poll timeout", 100);
      } else {
        break;
      }
    }
    if (ssl && starttls) p_.fail(at, "a poll uses either 'ssl' or 'starttls'");
    if (ssl) mode = TlsMode::implicit;
    if (starttls) mode = TlsMode::starttls;
    pc.tls_mode = mode;
    bool login = pc.options.has_login() || !draft.credentials.empty() || poll.per_backend;
    if (login && !(proto->accepts & protocols::kLogin))
      p_.fail(*login_at, "protocol '" + name + "' does not take a login");
    if (pc.options.has_login() && pc.options.password.empty())
      p_.fail(*login_at, "username '" + pc.options.username + "' has no password");
    if (pc.options.has_login() && (!draft.credentials.empty() || poll.per_backend))
      p_.fail(*login_at, "a poll takes either credentials or username/password, not both");
    if (!pc.options.authzid.empty() && !(proto->accepts & protocols::kMasterUser))
      p_.fail(at, "protocol '" + name + "' does not take 'masteruser'");
    if (login && mode == TlsMode::none && !pc.options.allow_plaintext)
      p_.fail(*login_at,
              "the poll's password would cross an unencrypted connection; use starttls or ssl, "
              "or say 'allow plaintext'");
    if (mode == TlsMode::none && (draft.tls || !draft.servername.empty()))
      p_.fail(at, "ssl options or servername given, but this poll does not use TLS");
    poll.label =
        name + ":" + std::to_string(pc.endpoint.port) +
        (mode == TlsMode::starttls ? "+starttls" : "") +
        (mode == TlsMode::implicit && proto->default_tls != TlsMode::implicit ? "+ssl" : "");
    dc().polls.push_back(std::move(poll));
    d_.polls.push_back(draft);
    if (!draft.credentials.empty()) {
      size_t service = d_.service;
      size_t index = dc().polls.size() - 1;
      Parser& p = p_;
      Location cred_at = draft.credentials_at;
      p_.use_credentials(draft.credentials, cred_at, [&p, service, index](const Credential& c) {
        auto& d = *p.cfg_.services[service].checks.back().as<DirectorCheck>();
        auto& o = d.polls[index].port.options;
        o.username = c.username;
        o.password = c.password;
        o.authzid = c.masteruser;
        if (!c.servername.empty() && d.polls[index].port.tls.server_name.empty())
          d.polls[index].port.tls.server_name = c.servername;
      });
    }
  }

  // if failed | backend down | backend up [for N cycles] then ACTIONS [else if succeeded ...]
  void rule(const Location& at) {
    Rule r;
    r.where = at;
    if (p_.accept("failed")) {
      r.condition = Condition::failed;
    } else if (p_.accept("backend")) {
      if (p_.accept("down")) {
        r.condition = Condition::backend_down;
      } else if (p_.accept("up")) {
        r.condition = Condition::backend_up;
      } else {
        p_.fail_expected("'down' or 'up' after 'if backend'", {"down", "up"});
      }
    } else {
      p_.fail_expected("a condition after 'if' ('failed', 'backend down' or 'backend up')",
                       {"failed", "backend"});
    }
    bool event = r.condition != Condition::failed;
    if (!event) {
      if (p_.peek().kind == Token::Kind::number) p_.parse_cycles(r.fail_rule);
      if (p_.accept("for")) {
        long long n = p_.number("the number of cycles", 1, kMaxCycles);
        p_.expect_kw("cycles", "after 'for N'");
        r.fail_rule = EventRule{static_cast<int>(n), static_cast<int>(n)};
      }
    }
    p_.expect_kw("then", "before the actions");
    p_.parse_actions(r.fail_actions);
    if (!event && p_.accept("else")) {
      p_.expect_kw("if", "after 'else'");
      if (!p_.accept("succeeded") && !p_.accept("passed"))
        p_.fail_expected("'succeeded' after 'else if'", {"succeeded"});
      p_.expect_kw("then", "after 'else if succeeded'");
      p_.parse_actions(r.ok_actions);
    }
    for (const auto& a : r.fail_actions)
      if (a.kind == ActionKind::director)
        p_.fail(at,
                "director actions belong to a 'check host' whose address is a backend; "
                "check director takes backends down by itself");
    check_.rules.push_back(std::move(r));
  }

  Parser& p_;
  DirectorDraft& d_;
  Check& check_;
};

// ---- Parser entry points ----------------------------------------------------------------------

Endpoint Parser::director_endpoint(const std::string& context) {
  Endpoint e;
  if (accept("socket") || accept("unixsocket")) {
    Location at = peek().where;
    e.unix_path = value("the path of the director-admin socket");
    if (e.unix_path.empty() || e.unix_path[0] != '/')
      fail(at, "the director-admin socket is an absolute path");
    return e;
  }
  if (accept("address") || accept("host")) {
    e.host = value("the address of the doveadm listener");
    expect_kw("port", "after the address (address HOST port N)");
    e.port = static_cast<uint16_t>(number("a port number", 1, 65535));
    return e;
  }
  fail_expected("socket \"PATH\" or address HOST port N " + context, {"socket", "address"});
}

void Parser::check_director() {
  size_t errors = d_.count();
  size_t index = begin_service(ServiceKind::director, "check director");
  auto draft = std::make_shared<DirectorDraft>();
  draft->service = index;
  draft->where = cfg_.services[index].where;
  draft->errors_before = errors;
  Check chk;
  chk.where = draft->where;
  chk.timeout_ms = default_timeout_ms_;
  auto dc = std::make_shared<DirectorCheck>();
  try {
    dc->admin = director_endpoint("after the name (check director NAME with socket \"PATH\")");
  } catch (const Abandon&) {
    skip_service_body();
    return;
  }
  chk.kind = &checks::get("director");
  chk.spec = std::move(dc);
  cfg_.services[index].checks.push_back(std::move(chk));
  directors_.push_back(draft);
  parse_service_body(index, DirectorParser::body_forms());
  try {
    DirectorParser(*this, *draft).finish();
  } catch (const Abandon&) {
  }
  if (directors_.size() == 1)
    finishers_.push_back([this] {
      std::optional<CredentialsFile> file;
      std::string error;
      if (credentials_path_.empty()) {
        error = "'credentials by address' needs a credentials file: add set credentials \"PATH\"";
      } else {
        Location at;
        file = CredentialsFile::load(credentials_path_, at, error);
        // Already reported by resolve_credentials() when other statements use the file.
        if (!file && !pending_credentials_.empty()) error.clear();
      }
      for (const auto& d : directors_)
        if (d->service < cfg_.services.size() && !cfg_.services[d->service].checks.empty())
          DirectorParser(*this, *d).settle(file, error);
    });
}

void Parser::director_statement(size_t service) {
  if (directors_.empty() || directors_.back()->service != service) abort();
  DirectorParser(*this, *directors_.back()).statement();
}

// set director socket "PATH" | set director address HOST port N
void Parser::set_director() {
  Location at = prev().where;
  if (cfg_.settings.director_admin)
    fail(at, "the director is already set (set director socket/address is given once)");
  cfg_.settings.director_admin = director_endpoint("after 'set director'");
}

// director down|up|flush [via socket "PATH" | via address H port N] [repeat every N cycles]
//     [rate limit N per M seconds]
void Parser::parse_director_action(DirectorActionSpec& spec) {
  Location at = prev().where;
  if (accept("down")) {
    spec.op = DirectorOp::down;
  } else if (accept("up")) {
    spec.op = DirectorOp::up;
  } else if (accept("flush")) {
    spec.op = DirectorOp::flush;
  } else {
    fail_expected("'down', 'up' or 'flush' after 'director'", {"down", "up", "flush"});
  }
  if (!cfg_.services.empty() && cfg_.services.back().kind != ServiceKind::host)
    fail(at, "director actions belong to a 'check host' whose address is a backend");
  if (accept("via")) spec.via = director_endpoint("after 'via'");
  while (parse_repeat_or_rate(spec.repeat_every, spec.rate)) continue;
  // The backend is the service's address, as the director lists it (an IP).
  size_t service = cfg_.services.size() - 1;
  Location where = at;
  finishers_.push_back([this, service, where, has_via = spec.via.has_value()] {
    if (!has_via && !cfg_.settings.director_admin)
      d_.error(where,
               "director actions need the director-admin socket: add 'via socket \"PATH\"' or "
               "set director socket \"PATH\"");
    if (service < cfg_.services.size() && !looks_like_ip(cfg_.services[service].address))
      d_.warning(where, "the director lists its backends by IP; the address of '" +
                            cfg_.services[service].name + "' (" + cfg_.services[service].address +
                            ") will not be found unless it is one");
  });
}

}  // namespace mw::config::parsing
