// The smtp / smtps / submission protocol test: greeting, EHLO (HELO fallback), [STARTTLS,
// EHLO], [command/reply pairs], [AUTH PLAIN/LOGIN], [MAIL FROM, RCPT TO, RSET], QUIT. Never DATA.
#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/smtp_client.h"
#include "util/handles.h"
#include "util/strings.h"

namespace mw::protocols {
namespace {

// The reply as the server sent it, its lines joined by "\n" (what check_smtp's -R matches).
std::string reply_text(const smtp::Reply& r) {
  std::string out;
  for (size_t i = 0; i < r.lines.size(); ++i) {
    if (i) out += "\n";
    out += std::to_string(r.code) + (i + 1 == r.lines.size() ? " " : "-") + r.lines[i];
  }
  return out;
}

bool matches(const config::Regex& re, const std::string& text) {
  Pcre2MatchDataPtr md(pcre2_match_data_create_from_pattern(re.code.get(), nullptr));
  return pcre2_match(re.code.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0,
                     md.get(), nullptr) >= 0;
}

// Each send step is one command; an expect step right after it must match its whole reply
// (check_smtp's -C/-R pairs). Any reply code is accepted: the pattern is the judge.
Task<void> command_pairs(smtp::Session& smtp, const std::vector<config::Step>& steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].kind != config::Step::Kind::send) continue;
    std::string command = steps[i].text;
    while (!command.empty() && (command.back() == '\n' || command.back() == '\r'))
      command.pop_back();
    smtp::Reply r = co_await smtp.command(command);
    if (i + 1 < steps.size() && steps[i + 1].kind == config::Step::Kind::expect &&
        steps[i + 1].regex.code) {
      std::string text = reply_text(r);
      if (!matches(steps[i + 1].regex, text))
        throw ProbeError(FailureClass::content,
                         "Invalid response '" + str::printable(text, 1024) + "' to command '" +
                             str::printable(command) + "'",
                         r.last_line);
    }
  }
}

}  // namespace

Task<void> smtp_dialogue(Probe& probe) {
  const auto& opt = probe.options();
  const std::string name = opt.helo.empty() ? smtp::default_hello_name() : opt.helo;
  smtp::Session smtp(probe.conn());
  co_await smtp.greeting();
  co_await smtp.hello(name);
  if (probe.wants_starttls()) {
    co_await smtp.starttls_command();
    co_await probe.starttls();
    co_await smtp.hello(name);
  }
  if (!opt.steps.empty()) co_await command_pairs(smtp, opt.steps);
  if (opt.has_login()) {
    probe.require_password_allowed("starttls, smtps or submission");
    if (opt.authzid.empty()) {
      co_await smtp.auth(opt.username, opt.password);
    } else {
      co_await smtp.auth(opt.authzid, opt.password, opt.username);
    }
  }
  if (!opt.mail_from.empty() || !opt.rcpt_to.empty())
    co_await smtp.probe_envelope(opt.mail_from, opt.rcpt_to, opt.expect_reject);
  co_await smtp.quit();
}

}  // namespace mw::protocols
