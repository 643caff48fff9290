#include "support.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include "engine/probe.h"
#include "net/failure.h"
#include "util/files.h"
#include "util/strings.h"

namespace mwtest {

std::string srcdir() {
  if (const char* s = getenv("MW_SRCDIR"); s && *s) return s;
#ifdef MW_SRCDIR
  return MW_SRCDIR;
#else
  return ".";
#endif
}

std::string tmpdir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/mw-unit-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    return std::string(tmpl);
  }();
  return dir;
}

std::string write_file(const std::string& name, const std::string& content, int mode) {
  std::string path = tmpdir() + "/" + name;
  std::string error;
  if (!mw::files::write_atomic(path, content, static_cast<mode_t>(mode), error))
    throw std::runtime_error(error);
  chmod(path.c_str(), static_cast<mode_t>(mode));
  return path;
}

Loop::Loop() {
  base.reset(event_base_new());
  dns.reset(evdns_base_new(base.get(), 0));
  io = mw::IoContext{base.get(), dns.get(), &tls};
}

std::shared_ptr<const mw::config::Config> parse_text(const std::string& text, std::string* errors) {
  static int counter = 0;
  std::string path = write_file("control-" + std::to_string(++counter) + ".rc", text);
  auto parsed = mw::config::parse_file(path);
  if (errors) {
    errors->clear();
    for (const auto& d : parsed.diagnostics.items()) *errors += d.str() + "\n";
  }
  return parsed.config;
}

mw::CheckResult run_check(Loop& loop, const std::shared_ptr<const mw::config::Config>& config,
                          size_t index, nlohmann::json memory) {
  const auto& svc = config->services.at(0);
  mw::CheckResult out;
  bool done = false;
  mw::run_check(loop.io, config, svc, svc.checks.at(index), std::move(memory),
                [&](const mw::CheckResult& r) {
                  out = r;
                  done = true;
                  event_base_loopbreak(loop.base.get());
                });
  // Bounded: every check has a deadline; this guards against a broken one.
  for (int i = 0; i < 600 && !done; ++i) {
    timeval tv{0, 100000};
    event_base_loopexit(loop.base.get(), &tv);
    event_base_dispatch(loop.base.get());
  }
  if (!done) throw std::runtime_error("check did not finish within 60 s");
  return out;
}

namespace {

const char* tls_mode(mw::config::TlsMode m) {
  switch (m) {
    case mw::config::TlsMode::none:
      return "none";
    case mw::config::TlsMode::implicit:
      return "implicit";
    case mw::config::TlsMode::starttls:
      return "starttls";
  }
  return "?";
}

// Shown only when set, so that older expected files stay as they are.
std::string severity(const mw::config::Severity& s) {
  if (!s.warning) return "";
  std::vector<std::string> names;
  for (auto c : s.only) names.emplace_back(mw::failure_class_name(c));
  return names.empty() ? " as warning" : " as warning on {" + mw::str::join(names, ", ") + "}";
}

std::string rule(const mw::config::EventRule& r) {
  return std::to_string(r.times) + "/" + std::to_string(r.cycles);
}

std::string actions(const std::vector<mw::config::Action>& list) {
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) {
    if (i) out += ", ";
    const auto& a = list[i];
    if (a.kind == mw::config::ActionKind::alert) {
      out += "alert";
      continue;
    }
    if (a.kind == mw::config::ActionKind::director) {
      const auto& d = *a.director;
      out += std::string("director ") + (d.op == mw::config::DirectorOp::down ? "down"
                                         : d.op == mw::config::DirectorOp::up ? "up"
                                                                              : "flush");
      if (d.via) out += " via " + d.via->describe();
      if (d.repeat_every) out += " repeat=" + std::to_string(d.repeat_every);
      if (d.rate)
        out += " rate=" + std::to_string(d.rate->count) + "/" +
               std::to_string(d.rate->per_seconds) + "s";
      continue;
    } else if (a.kind != mw::config::ActionKind::exec) {
      static const char* names[] = {"alert",   "exec",      "start",  "stop",
                                    "restart", "unmonitor", "monitor"};
      out += names[static_cast<int>(a.kind)];
      continue;
    }
    out += "exec " + mw::str::quote(a.exec->command);
    if (a.exec->uid) out += " uid=" + std::to_string(*a.exec->uid);
    if (a.exec->gid) out += " gid=" + std::to_string(*a.exec->gid);
    if (a.exec->timeout_s) out += " timeout=" + std::to_string(a.exec->timeout_s);
    if (a.exec->repeat_every) out += " repeat=" + std::to_string(a.exec->repeat_every);
  }
  return out + "]";
}

std::string tls(const mw::TlsSettings& t) {
  std::string out = std::string("verify=") + (t.verify ? "yes" : "no") +
                    " selfsigned=" + (t.allow_selfsigned ? "allow" : "reject");
  if (!t.ca_file.empty()) out += " cafile=" + t.ca_file;
  if (!t.ca_path.empty()) out += " capath=" + t.ca_path;
  if (t.min_version == mw::TlsVersion::tls12) out += " version=tls12";
  if (t.min_version == mw::TlsVersion::tls13) out += " version=tls13";
  if (!t.server_name.empty()) out += " servername=" + t.server_name;
  return out;
}

// The protocol suite's options: credentials, helo, the SMTP envelope, send/expect steps.
std::string dialogue_options(const mw::config::ProbeOptions& o) {
  std::string out;
  if (!o.credentials.empty()) out += "    credentials " + o.credentials + "\n";
  if (!o.helo.empty()) out += "    helo " + o.helo + "\n";
  if (!o.mail_from.empty() || !o.rcpt_to.empty())
    out += "    mail from <" + o.mail_from + "> rcpt to <" + o.rcpt_to + ">" +
           (o.expect_reject ? " expect reject" : "") + "\n";
  const auto& h = o.http_request();
  if (h.path != "/" || !h.hostheader.empty() || !h.headers.empty() || !h.status_op.empty() ||
      h.needs_body()) {
    out += "    http request " + h.path;
    if (!h.hostheader.empty()) out += " hostheader " + h.hostheader;
    if (!h.status_op.empty()) out += " status " + h.status_op + " " + std::to_string(h.status);
    if (h.content)
      out += std::string(" content ") + (h.content_negate ? "!= " : "= ") +
             mw::str::quote(h.content->source);
    if (!h.checksum_hex.empty()) out += " checksum " + h.checksum_type + " " + h.checksum_hex;
    out += "\n";
    for (const auto& line : h.headers) out += "    http header " + line + "\n";
  }
  for (const auto& s : o.steps) {
    if (s.kind == mw::config::Step::Kind::starttls) {
      out += "    step starttls\n";
    } else if (s.kind == mw::config::Step::Kind::expect) {
      out += "    step expect " + mw::str::quote(s.regex.source) +
             (s.max_bytes ? " within " + std::to_string(s.max_bytes) + " bytes" : "") + "\n";
    } else {
      std::string text;
      size_t from = 0;
      for (const auto& [at, group] : s.captures) {
        text += s.text.substr(from, at - from) + "{\\" + std::to_string(group) + "}";
        from = at;
      }
      text += s.text.substr(from);
      out += "    step send " + mw::str::printable(text) + "\n";
    }
  }
  return out;
}

// A URL of a composite check: every field the parser filled (the password as stars).
std::string mail_url(const mw::config::MailUrl& u) {
  std::string out = u.shown + " scheme " + u.scheme + " tls " + tls_mode(u.tls_mode);
  if (!u.is_file()) out += " at " + u.endpoint.describe();
  if (!u.username.empty()) out += " user " + u.username;
  if (!u.masteruser.empty()) out += " master " + u.masteruser;
  if (!u.password.empty()) out += " password " + std::string(u.password.size(), '*');
  if (!u.path.empty()) out += " path " + u.path;
  out += "\n";
  if (u.tls_mode != mw::config::TlsMode::none) out += "      ssl " + tls(u.tls) + "\n";
  return out;
}

// check replication / check delivery: the composite check's own settings.
std::string composite(const mw::config::Check& chk) {
  std::string out;
  if (const auto* r = chk.as<mw::config::ReplicationCheck>()) {
    for (size_t i = 0; i < r->servers.size(); ++i)
      out += std::string(i ? "    replica " : "    reference ") + mail_url(r->servers[i]);
    out += "    admin " + r->admin + " password " + std::string(r->password.size(), '*') +
           (r->credentials.empty() ? "" : " credentials " + r->credentials) +
           (r->allow_plaintext ? " plaintext" : "") + "\n";
    out += "    users " + (r->all_users ? std::string("all") : mw::str::join(r->users, ", ")) +
           " mailboxes " + (r->all_mailboxes ? "all" : "INBOX") + "\n";
    out += "    status items " + mw::str::join(r->status_items, " ") + "\n";
    out += "    budget " + std::to_string(r->budget_ms) + " ms concurrency " +
           std::to_string(r->concurrency) + (r->failed_only ? " failed only" : "") + "\n";
  } else if (const auto* dc = chk.as<mw::config::DirectorCheck>()) {
    out += "    admin " + dc->admin.describe() + "\n";
    for (const auto& p : dc->polls) {
      const auto& pc = p.port;
      out += "    poll " + p.label + " protocol " + pc.protocol_name + " tls " +
             tls_mode(pc.tls_mode) + " timeout " + std::to_string(p.timeout_ms) + " ms";
      if (p.per_backend) out += " credentials by address";
      if (pc.options.has_login())
        out += " login " + pc.options.username +
               (pc.options.authzid.empty() ? "" : " master " + pc.options.authzid) + " password " +
               std::string(pc.options.password.size(), '*');
      if (pc.options.allow_plaintext) out += " plaintext";
      if (!pc.options.mailbox.empty()) out += " select " + pc.options.mailbox;
      out += "\n";
      if (pc.tls_mode != mw::config::TlsMode::none) out += "      ssl " + tls(pc.tls) + "\n";
    }
    out += "    retry " + std::to_string(dc->retry) + " rapid " + std::to_string(dc->rapid_rounds) +
           " rounds " + std::to_string(dc->rapid_fails) + " fails every " +
           std::to_string(dc->rapid_every_ms) + " ms\n";
    out += "    max down " + std::to_string(dc->max_down) + (dc->max_down_percent ? "%" : "") +
           " release " +
           (dc->release == mw::config::DirectorRelease::flush         ? "flush"
            : dc->release == mw::config::DirectorRelease::reset_users ? "reset users"
                                                                      : "none") +
           (dc->dry_run ? " dry run" : "") + "\n";
    for (const auto& [ip, a] : dc->accounts)
      out += "    account " + ip + " user " + a.username +
             (a.masteruser.empty() ? "" : " master " + a.masteruser) + " password " +
             std::string(a.password.size(), '*') +
             (a.servername.empty() ? "" : " servername " + a.servername) + "\n";
  } else if (const auto* d = chk.as<mw::config::DeliveryCheck>()) {
    out += "    send " + mail_url(d->send);
    if (!d->send_credentials.empty()) out += "      credentials " + d->send_credentials + "\n";
    out += "    from <" + d->from + "> to <" + d->to + ">\n";
    out += "    receive " + mail_url(d->receive);
    if (!d->receive_credentials.empty())
      out += "      credentials " + d->receive_credentials + "\n";
    out += "    within " + std::to_string(d->within_ms) + " ms" +
           (d->keep_messages ? " keep messages" : "") + (d->allow_plaintext ? " plaintext" : "") +
           "\n";
  } else if (const auto* p = chk.as<mw::config::PingCheck>()) {
    const char* family = p->family == mw::AddressFamily::ipv4   ? " ipv4"
                         : p->family == mw::AddressFamily::ipv6 ? " ipv6"
                                                                : "";
    out += "    icmp echo " + p->host + family + " count " + std::to_string(p->count) + " size " +
           std::to_string(p->size) + "\n";
  }
  return out;
}

// The rule's condition as written ("failed" for every port test).
std::string condition(const mw::config::Rule& r) {
  switch (r.condition) {
    case mw::config::Condition::failed:
      return "failed";
    case mw::config::Condition::out_of_sync:
      return "out of sync " + std::to_string(r.threshold) + " mailboxes";
    case mw::config::Condition::invalid_users:
      return "invalid users";
    case mw::config::Condition::latency:
      return "latency > " + std::to_string(r.threshold) + " ms";
    case mw::config::Condition::backend_down:
      return "backend down";
    case mw::config::Condition::backend_up:
      return "backend up";
    case mw::config::Condition::compare:
      return r.compare->shown;
  }
  return "?";
}

}  // namespace

std::string describe(const mw::config::Config& c) {
  const auto& s = c.settings;
  std::string out = "set daemon " + std::to_string(s.cycle_s) + " start delay " +
                    std::to_string(s.start_delay_s) + " connections " +
                    std::to_string(s.concurrency) + "\n";
  switch (s.log_sink) {
    case mw::config::LogSink::stderr_stream:
      out += "set log stderr\n";
      break;
    case mw::config::LogSink::file:
      out += "set log " + s.logfile + "\n";
      break;
    case mw::config::LogSink::syslog:
      out += "set log syslog facility " + s.syslog_facility + "\n";
      break;
  }
  out += "set ssl " + tls(s.tls) + "\n";
  if (s.director_admin) out += "set director " + s.director_admin->describe() + "\n";
  if (s.user)
    out += "set user " + s.user->name + " uid " + std::to_string(s.user->uid) + " gid " +
           std::to_string(s.user->gid) + "\n";
  for (const auto& svc : c.services) {
    out += "service " + mw::str::quote(svc.name) + " address " + svc.address;
    for (const auto& g : svc.groups) out += " group " + g;
    out += "\n";
    auto program = [&](const char* which, const mw::Boxed<mw::config::ExecSpec>& p) {
      if (!p) return;
      out += std::string("  ") + which + " program " + mw::str::quote(p->command) + " timeout " +
             std::to_string(p->timeout_s) + " s";
      if (p->uid) out += " uid=" + std::to_string(*p->uid);
      out += "\n";
    };
    program("start", svc.start_program);
    program("stop", svc.stop_program);
    program("restart", svc.restart_program);
    for (const auto& l : svc.restart_limits)
      out += "  if " + std::to_string(l.restarts) + " restarts within " + std::to_string(l.cycles) +
             " cycles then " + actions(l.actions) + "\n";
    for (const auto& chk : svc.checks) {
      out += "  check " + mw::str::quote(chk.description) + " timeout " +
             std::to_string(chk.timeout_ms) + " ms deadline " + std::to_string(chk.deadline_ms) +
             " ms retry " + std::to_string(chk.retry) + "\n";
      if (const auto* pc = chk.as<mw::config::PortCheck>()) {
        out += "    port " + pc->endpoint.describe() + " protocol " + pc->protocol_name + " tls " +
               tls_mode(pc->tls_mode);
        if (pc->endpoint.family == mw::AddressFamily::ipv4) out += " ipv4";
        if (pc->endpoint.family == mw::AddressFamily::ipv6) out += " ipv6";
        out += "\n";
        if (pc->tls_mode != mw::config::TlsMode::none) out += "    ssl " + tls(pc->tls) + "\n";
        const auto& o = pc->options;
        if (o.has_login())
          out += "    login " + o.username + (o.authzid.empty() ? "" : " master " + o.authzid) +
                 " password " + std::string(o.password.size(), '*') +
                 (o.allow_plaintext ? " plaintext" : "") + (o.allow_preauth ? " preauth" : "") +
                 "\n";
        if (!o.mailbox.empty()) out += "    select " + o.mailbox + "\n";
        out += dialogue_options(o);
        if (pc->cert_min_days)
          out += "    certificate valid > " + std::to_string(*pc->cert_min_days) + " days\n";
        if (!pc->cert_sha256.empty()) out += "    certificate sha256 " + pc->cert_sha256 + "\n";
        if (pc->max_response_ms)
          out += "    responsetime > " + std::to_string(*pc->max_response_ms) + " ms\n";
      }
      out += composite(chk);
      for (const auto& r : chk.rules)
        out += "    if " + condition(r) + " " + rule(r.fail_rule) + " then " +
               actions(r.fail_actions) + severity(r.severity) + " else " + rule(r.ok_rule) +
               " then " + actions(r.ok_actions) + "\n";
    }
  }
  return out;
}

}  // namespace mwtest
