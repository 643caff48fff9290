// Control files and their includes, the statement loop with error recovery, and the last
// pass over the finished model.
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "checks/registry.h"
#include "config/parser.h"
#include "config/parser_impl.h"
#include "protocols/registry.h"
#include "util/files.h"
#include "util/strings.h"

namespace mw::config {
namespace parsing {

// A suggestion only for a near miss of the same word: same first letter and a similar length,
// so that 'idfile' is not sent to 'pidfile' nor 'https' to 'smtps' (different things).
std::string did_you_mean(const std::string& word, const std::vector<std::string>& options) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  std::string w = str::lower(word);
  for (const auto& o : options) {
    if (o.empty() || w.empty() || std::tolower(static_cast<unsigned char>(o[0])) != w[0]) continue;
    size_t diff = o.size() > w.size() ? o.size() - w.size() : w.size() - o.size();
    if (diff > 2) continue;
    size_t d = str::edit_distance(w, str::lower(o));
    if (d < best_distance) {
      best_distance = d;
      best = o;
    }
  }
  size_t limit = w.size() <= 4 ? 1 : 2;
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

// ---- files and statements -----------------------------------------------------------------
const std::vector<Parser::Form>& Parser::set_forms() {
  static const std::vector<Form> forms = {
      {"daemon", &Parser::set_daemon},
      {"log", &Parser::set_log},
      {"logfile", &Parser::set_log},
      {"pidfile", &Parser::set_pidfile},
      {"statefile", &Parser::set_statefile},
      {"ssl", &Parser::set_ssl},
      {"limits", &Parser::set_limits},
      {"credentials", &Parser::set_credentials},
      {"mailserver", &Parser::set_mailserver},
      {"mail-format", &Parser::set_mail_format},
      {"alert", &Parser::set_alert},
      {"eventqueue", &Parser::set_eventqueue},
      {"tls", &Parser::set_ssl},
      {"httpd", &Parser::set_httpd},
      {"idfile", &Parser::set_idfile},
      {"mmonit", &Parser::set_mmonit},
      {"onreboot", &Parser::set_onreboot},
      {"init", &Parser::set_init},
      {"alertmanager", &Parser::set_alertmanager},
      {"director", &Parser::set_director},
      {"user", &Parser::set_user},
  };
  return forms;
}

const std::vector<Parser::BodyForm>& Parser::service_statements() {
  static const std::vector<BodyForm> forms = {
      {"if", &Parser::parse_if},           {"group", &Parser::parse_group},
      {"alert", &Parser::service_alert},   {"noalert", &Parser::service_noalert},
      {"mode", &Parser::parse_mode},       {"onreboot", &Parser::parse_service_onreboot},
      {"depends", &Parser::parse_depends}, {"every", &Parser::parse_every},
      {"not", &Parser::parse_not_every},   {"start", &Parser::service_program},
      {"stop", &Parser::service_program},  {"restart", &Parser::service_program},
      {"depend", &Parser::parse_depends},
  };
  return forms;
}

std::vector<std::string> Parser::keywords(const std::vector<Form>& forms) {
  std::vector<std::string> out;
  for (const auto& f : forms) out.emplace_back(f.keyword);
  return out;
}

void Parser::parse_set() {
  next();
  for (const auto& f : set_forms()) {
    if (accept(f.keyword)) {
      (this->*f.handler)();
      return;
    }
  }
  auto words = keywords(set_forms());
  fail_expected("what to set (" + one_of(words) + ")", words);
}

void Parser::parse_check() {
  next();
  if (peek().kind == Token::Kind::word) {
    if (const checks::Kind* kind = checks::by_keyword(str::lower(peek().text));
        kind && kind->parse) {
      next();
      kind->parse(*this);
      return;
    }
  }
  static const std::set<std::string> monit_kinds = {"network"};
  if (peek().kind == Token::Kind::word && monit_kinds.count(str::lower(peek().text))) {
    check_not_run_yet();
    return;
  }
  std::vector<std::string> words;
  for (const auto& k : checks::all())
    if (!k.keyword.empty() && k.parse) words.emplace_back(k.keyword);
  fail_expected("the kind of check (" + one_of(words) + ")", words);
}

size_t Parser::begin_service(ServiceKind kind, const std::string& statement) {
  Service svc;
  svc.where = prev().where;
  svc.kind = kind;
  svc.type = str::lower(prev().text);
  Location name_at = peek().where;
  svc.name = value("a service name after '" + statement + "'");
  if (svc.name.empty()) fail(name_at, "a service name cannot be empty");
  if (auto it = service_at_.find(svc.name); it != service_at_.end()) {
    d_.error(name_at, "duplicate service name '" + svc.name + "' (first defined at " +
                          it->second.str() + ")");
  } else {
    service_at_[svc.name] = name_at;
  }
  cfg_.services.push_back(std::move(svc));
  programs_allowed_ = false;
  return cfg_.services.size() - 1;
}

// The fallback for service types another part of mailwarden will run: one small function, so
// that each type can be taken out of it as it gets its own parser.
void Parser::check_not_run_yet() {
  std::string kind = str::lower(next().text);
  Location name_at = peek().where;
  std::string name = value("a service name after 'check " + kind + "'");
  if (auto it = service_at_.find(name); it != service_at_.end()) {
    d_.error(name_at,
             "duplicate service name '" + name + "' (first defined at " + it->second.str() + ")");
  } else {
    service_at_[name] = name_at;
  }
  services_not_run_.insert(name);
  warn(name_at, "check " + kind + " is not run by mailwarden yet (" + name + ")");
  skip_service_body();
}

// Statements up to the next check/set at brace depth 0; includes are spliced in on the way,
// because a template included here continues this body.
void Parser::skip_service_body() {
  int depth = 0;
  while (peek().kind != Token::Kind::end) {
    if (depth == 0 && (at("check") || at("set"))) return;
    if (at("include")) {
      size_t start = pos_;
      try {
        parse_include();
      } catch (const Abandon&) {
        if (pos_ == start) next();
      }
      continue;
    }
    if (peek().kind == Token::Kind::lbrace) ++depth;
    if (peek().kind == Token::Kind::rbrace && depth > 0) --depth;
    next();
  }
}

bool Parser::splice_include_here() {
  if (!at("include")) return false;
  parse_include();
  return true;
}

void Parser::parse_service_body(size_t index, const std::vector<BodyForm>& forms) {
  in_service_ = true;
  while (peek().kind != Token::Kind::end && !at("check") && !at("set") && !d_.too_many()) {
    size_t start = pos_;
    try {
      if (splice_include_here()) continue;
      const BodyForm* form = nullptr;
      for (const auto& f : forms)
        if (at(f.keyword)) form = &f;
      if (!form) {
        std::vector<std::string> words;
        for (const auto& f : forms) words.emplace_back(f.keyword);
        fail_expected("a statement of this service (" + one_of(words) + ") or a new 'check'",
                      words);
      }
      (this->*form->handler)(index);
    } catch (const Abandon&) {
      resync(start);
    }
  }
  in_service_ = false;
}

void Parser::parse_one_file(const std::string& path, const Location& included_at) {
  char resolved[PATH_MAX];
  std::string real = realpath(path.c_str(), resolved) ? std::string(resolved) : path;
  if (std::find(include_stack_.begin(), include_stack_.end(), real) != include_stack_.end()) {
    d_.error(included_at, "include cycle: " + path + " is already being read");
    return;
  }
  if (include_stack_.size() >= kMaxIncludeDepth) {
    d_.error(included_at,
             "includes nested more than " + std::to_string(kMaxIncludeDepth) + " deep");
    return;
  }
  if (cfg_.files.size() >= kMaxIncludedFiles) {
    if (!too_many_files_reported_)  // once, not once per file beyond the limit
      d_.error(included_at, "more than " + std::to_string(kMaxIncludedFiles) +
                                " files included; the files after " + cfg_.files.back() +
                                " are not read");
    too_many_files_reported_ = true;
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
  total_tokens_ += tokens.size();
  std::vector<Token>* saved_toks = toks_;
  size_t saved_pos = pos_;
  toks_ = &tokens;
  pos_ = 0;
  parse_statements();
  toks_ = saved_toks;
  pos_ = saved_pos;
  include_stack_.pop_back();
}

void Parser::parse_statements() {
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
void Parser::resync(size_t statement_start) {
  if (pos_ == statement_start && peek().kind != Token::Kind::end) next();
  while (peek().kind != Token::Kind::end) {
    if (at("set") || at("check") || at("include")) return;
    if (in_service_ && (at("if") && !is_kw(prev(), "else"))) return;
    if (in_service_ && at("group")) return;
    // "alert ADDR" starts a statement; a stray action word ("... imap alert") does not.
    if (in_service_ && (at("alert") || at("noalert")) && !is_kw(prev(), "then") &&
        (peek(1).kind == Token::Kind::string || peek(1).text.find('@') != std::string::npos))
      return;
    if (in_service_ && (at("depends") || at("every") || at("mode") || at("onreboot"))) return;
    next();
  }
}

void Parser::parse_include() {
  size_t first = pos_;
  Token kw = next();
  std::string pattern = value("a file name or glob pattern after 'include'");
  if (pattern.empty()) fail(kw.where, "empty include pattern");
  size_t last = pos_;
  std::string full = pattern[0] == '/' ? pattern : files::dirname(kw.where.file) + "/" + pattern;
  glob_t g{};
  int rc = glob(full.c_str(), GLOB_ERR, nullptr, &g);
  std::vector<std::string> matches;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  bool wildcard = pattern.find_first_of("*?[") != std::string::npos;
  if (matches.empty() && !wildcard) fail(kw.where, "included file " + full + " does not exist");
  if (!wildcard && matches.size() == 1) {
    struct stat st;
    if (stat(matches[0].c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      fail(kw.where, full + " is a directory; to include its files write \"" +
                         (full.back() == '/' ? full : full + "/") + "*\"");
  }
  std::sort(matches.begin(), matches.end());
  std::vector<Token> spliced;
  for (const auto& m : matches) {
    struct stat st;
    if (stat(m.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    char resolved[PATH_MAX];
    std::string real = realpath(m.c_str(), resolved) ? std::string(resolved) : m;
    int depth = static_cast<int>(include_stack_.size());
    bool cycle =
        std::find(include_stack_.begin(), include_stack_.end(), real) != include_stack_.end();
    for (int o = kw.origin; o != 0; o = origins_[static_cast<size_t>(o)].parent) {
      ++depth;
      cycle = cycle || origins_[static_cast<size_t>(o)].real == real;
    }
    if (cycle) fail(kw.where, "include cycle: " + m + " is already being read");
    if (depth >= kMaxIncludeDepth)
      fail(kw.where, "includes nested more than " + std::to_string(kMaxIncludeDepth) + " deep");
    if (cfg_.files.size() >= kMaxIncludedFiles)
      fail(kw.where, "more than " + std::to_string(kMaxIncludedFiles) + " files included");
    std::string error;
    auto text = files::read(m, error);
    if (!text) fail(kw.where, "cannot read included file " + error);
    cfg_.files.push_back(m);
    auto tokens = lex(m, *text, d_);
    tokens.pop_back();  // its end of file
    total_tokens_ += tokens.size();
    if (total_tokens_ > kMaxTokens)
      fail(kw.where, "the control file and its includes hold more than " +
                         std::to_string(kMaxTokens) + " words");
    int origin = static_cast<int>(origins_.size());
    origins_.push_back(Origin{real, kw.origin});
    for (auto& t : tokens) t.origin = origin;
    spliced.insert(spliced.end(), std::make_move_iterator(tokens.begin()),
                   std::make_move_iterator(tokens.end()));
  }
  auto at = toks_->begin() + static_cast<std::ptrdiff_t>(first);
  at = toks_->erase(at, toks_->begin() + static_cast<std::ptrdiff_t>(last));
  toks_->insert(at, std::make_move_iterator(spliced.begin()),
                std::make_move_iterator(spliced.end()));
  pos_ = first;
}

void Parser::skip_statement_rest() {
  int depth = 0;
  while (peek().kind != Token::Kind::end) {
    if (depth == 0 && (at("set") || at("check") || at("include"))) return;
    if (peek().kind == Token::Kind::lbrace) ++depth;
    if (peek().kind == Token::Kind::rbrace && depth > 0) --depth;
    next();
  }
}

void Parser::accepted_without_effect(const Location& where, const std::string& statement,
                                     const std::string& why) {
  warn(where, "'" + statement + "' accepted for monit compatibility; no effect: " + why);
}

// ---- after the whole file -----------------------------------------------------------------
void Parser::finalize() {
  global_tls_.apply_to(cfg_.settings.tls);
  for (auto& ms : cfg_.settings.mailservers) ms.tls = cfg_.settings.tls;
  for (const auto& [i, o] : pending_mailserver_tls_) o.apply_to(cfg_.settings.mailservers[i].tls);
  cfg_.settings.alertmanager.tls = cfg_.settings.tls;
  alertmanager_tls_.apply_to(cfg_.settings.alertmanager.tls);
  for (auto& svc : cfg_.services)
    for (auto& chk : svc.checks)
      if (auto* pc = chk.as<PortCheck>()) pc->tls = cfg_.settings.tls;
  for (const auto& p : pending_tls_)
    if (p.service < cfg_.services.size() && p.check < cfg_.services[p.service].checks.size())
      if (auto* pc = cfg_.services[p.service].checks[p.check].as<PortCheck>())
        p.overrides.apply_to(pc->tls);
  for (const auto& file : files_with_password_) check_secret_file_mode(file);
  for (const auto& [file, where] : secret_at_)
    if (!files_with_password_.count(file)) check_secret_file_mode(file);
  check_dependencies();
  if (default_onreboot_)
    for (size_t i = 0; i < cfg_.services.size(); ++i)
      if (!onreboot_given_.count(i)) cfg_.services[i].onreboot = *default_onreboot_;
  for (const auto& p : pending_timeouts_) {
    Check& chk = cfg_.services[p.service].checks[p.check];
    chk.timeout_ms = default_timeout_ms_;
    if (!p.deadline_given) chk.deadline_ms = 3 * chk.timeout_ms;
    if (chk.deadline_ms < chk.timeout_ms)
      d_.error(chk.where,
               "the deadline must not be shorter than the timeout (set limits { "
               "networktimeout } is " +
                   std::to_string(default_timeout_ms_) + " ms)");
  }
  resolve_credentials();
  finish_composites();
  for (auto& finish : finishers_) finish();
  finish_local_services();
  if (cfg_.settings.statefile.empty())
    cfg_.settings.statefile = files::home_dir() + "/.mailwarden.state";
  if (cfg_.settings.pidfile.empty()) cfg_.settings.pidfile = files::home_dir() + "/.mailwarden.pid";
  cfg_.settings.statefile = files::expand_home(cfg_.settings.statefile);
  cfg_.settings.pidfile = files::expand_home(cfg_.settings.pidfile);
}

void Parser::note_secret(const Location& where) {
  files_with_password_.insert(where.file);
  secret_at_.emplace(where.file, where);
}

void Parser::check_secret_file_mode(const std::string& file) {
  struct stat st;
  if (stat(file.c_str(), &st) != 0) return;
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    // Point at the first secret in the file, so the message has the usual FILE:LINE:COL form.
    auto at = secret_at_.find(file);
    Location where = at != secret_at_.end() ? at->second : Location{file, 1, 1};
    d_.error(where, std::string("contains a password but is accessible by group or others (mode ") +
                        mode + "); run: chmod 600 " + file);
  }
}

}  // namespace parsing

void parsing::shrink_to_fit(Config& cfg) {
  for (auto& svc : cfg.services) {
    svc.checks.shrink_to_fit();
    for (auto& chk : svc.checks) chk.rules.shrink_to_fit();
  }
}

ParseResult parse_file(const std::string& path) {
  ParseResult result;
  parsing::Parser parser(result.diagnostics);
  try {
    result.config = parser.run(path);
    result.partial = parser.partial();
  } catch (const std::exception& e) {
    // A bug, not a user's mistake; still, a broken file must never take the daemon down.
    result.config = nullptr;
    result.diagnostics.error(Location{path, 1, 1},
                             std::string("internal error while reading this file: ") + e.what());
  }
  return result;
}

std::string default_control_file() {
  std::string home = files::home_dir() + "/.mailwardenrc";
  if (access(home.c_str(), F_OK) == 0) return home;
  if (access("/etc/mailwarden/mailwardenrc", F_OK) == 0) return "/etc/mailwarden/mailwardenrc";
  return {};
}

}  // namespace mw::config
