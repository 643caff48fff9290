// Drop-in for check_delivery: its --send/--recv URLs (scheme names, ?ssl_verify=), --wait, its
// INI scenarios (--conf FILE --play NAME, ${section:key} interpolation), --doc, and Nagios or
// JSON output with per-step timings, run as mailwarden's `check delivery`. --wait is an upper
// bound: the probe is reported as soon as it arrives.
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "checks/registry.h"
#include "config/parser.h"
#include "plugin/dropins.h"
#include "plugin/ini.h"
#include "plugin/options.h"
#include "plugin/run_once.h"
#include "report/nagios.h"
#include "util/strings.h"

namespace mw::plugin {
namespace {

using nlohmann::json;
using report::nagios::State;

enum Opt { kSend, kRecv, kWait, kConf, kPlay, kDoc, kOutput, kFrom, kTo, kTimeout, kHelp };

const std::vector<OptionSpec>& specs() {
  static const std::vector<OptionSpec> s = {
      {0, "send", true, kSend},         {0, "recv", true, kRecv},    {0, "wait", true, kWait},
      {0, "conf", true, kConf},         {0, "play", true, kPlay},    {0, "doc", false, kDoc},
      {0, "output", true, kOutput},     {0, "from", true, kFrom},    {0, "to", true, kTo},
      {'t', "timeout", true, kTimeout}, {'h', "help", false, kHelp},
  };
  return s;
}

struct Method {
  const char* scheme;
  bool sends;
  bool receives;
  bool supported;
  const char* doc;
};

const Method kMethods[] = {
    {"smtp", true, false, true, "clear SMTP (AUTH when the URL has user:password)"},
    {"smtps", true, false, true, "SMTP over TLS from the first byte"},
    {"smtpstarttls", true, false, true, "SMTP + STARTTLS"},
    {"imap", false, true, true, "clear IMAP; the path is the mailbox (default INBOX)"},
    {"imaps", false, true, true, "IMAP over TLS from the first byte"},
    {"imapstarttls", false, true, true, "IMAP + STARTTLS"},
    {"file", true, true, true,
     "a local directory: the probe is a file dropped there / found there"},
    {"ftp", true, true, true,
     "FTP (passive); the path is the directory: the probe is a file uploaded / found there"},
    {"ftps", true, true, true,
     "FTP with AUTH TLS (explicit, RFC 4217); data connections resume the TLS session"},
    {"irc", true, true, true,
     "IRC; the user is the nick, the path the channel: irc://nick@host:6667/channel"},
    {"irctls", true, true, true, "IRC over TLS from the first byte (port 6697 style)"},
};

int print_doc() {
  printf("Senders:\n");
  for (const auto& m : kMethods)
    if (m.sends) printf("  %-13s %s\n", m.scheme, m.doc);
  printf("Receivers:\n");
  for (const auto& m : kMethods)
    if (m.receives) printf("  %-13s %s\n", m.scheme, m.doc);
  printf("URL parameter: ?ssl_verify=NONE|OPTIONAL|REQUIRED (default REQUIRED)\n");
  return 0;
}

struct Request {
  std::string send;
  std::string recv;
  double wait_s = 60;
  std::string conf;
  std::string play;
  bool json = false;
  std::string from;
  std::string to;
};

// A seed URL into mailwarden's: the query (?ssl_verify=...) is taken off and applied to TLS.
std::string to_mail_url(const std::string& text, bool sending, config::MailUrl& out) {
  std::string url = text;
  std::string query;
  if (auto q = url.find('?'); q != std::string::npos) {
    query = url.substr(q + 1);
    url = url.substr(0, q);
  }
  std::string scheme = str::lower(url.substr(0, url.find("://")));
  const Method* method = nullptr;
  for (const auto& m : kMethods)
    if (scheme == m.scheme) method = &m;
  if (!method) return "unknown method '" + scheme + "' (see --doc)";
  if (!method->supported) return "method '" + scheme + "' is not supported by this drop-in yet";
  if (sending && !method->sends) return "'" + scheme + "' cannot send (see --doc)";
  if (!sending && !method->receives) return "'" + scheme + "' cannot receive (see --doc)";
  std::string error = config::parsing::parse_mail_url(url, out);
  if (!error.empty()) return error;
  for (char& c : query)
    if (c == '&') c = ' ';
  for (const auto& part : str::split_ws(query)) {
    auto eq = part.find('=');
    std::string key = str::lower(part.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : str::upper(part.substr(eq + 1));
    if (key != "ssl_verify") return "unknown URL parameter '" + key + "'";
    if (value == "NONE") {
      out.tls.verify = false;
    } else if (value == "OPTIONAL" || value == "REQUIRED") {
      out.tls.verify = true;  // a client treats OPTIONAL as REQUIRED (Python's ssl module)
    } else {
      return "ssl_verify takes NONE, OPTIONAL or REQUIRED";
    }
  }
  return {};
}

std::optional<std::string> read_scenario(Request& rq) {
  Ini ini;
  std::string error;
  if (!ini.load(rq.conf, error)) return error;
  auto send = ini.get("scenarios", rq.play + ".send", error);
  if (!send) return error;
  auto recv = ini.get("scenarios", rq.play + ".recv", error);
  if (!recv) return error;
  rq.send = *send;
  rq.recv = *recv;
  return std::nullopt;
}

int unknown(bool as_json, const std::string& why) {
  if (as_json)
    printf("%s\n", json{{"status", "UNKNOWN"}, {"code", 3}, {"message", why}}.dump().c_str());
  else
    printf("DELIVERY UNKNOWN - %s\n", why.c_str());
  return 3;
}

// The seed's step names, from mailwarden's steps (see man mailwarden for the mapping).
std::vector<std::pair<std::string, double>> seed_steps(const CheckResult& r) {
  std::vector<std::pair<std::string, double>> out;
  json steps = r.details.is_object() ? r.details.value("steps_ms", json::object()) : json::object();
  static const std::pair<const char*, const char*> names[] = {
      {"connect", "recv_conn"}, {"send", "send_send"},   {"wait", "waited"},
      {"found", "recv_recv"},   {"clean", "recv_clean"},
  };
  double total = 0;
  for (const auto& [ours, theirs] : names) {
    if (!steps.contains(ours) || !steps[ours].is_number()) continue;
    double s = steps[ours].get<double>() / 1000.0;
    total += s;
    out.emplace_back(theirs, s);
  }
  out.emplace_back("active_duration", total);
  return out;
}

}  // namespace

int run_delivery_dropin(std::string_view, const std::vector<std::string>& args) {
  std::vector<GivenOption> given;
  std::string error;
  Request rq;
  bool as_json = false;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if ((args[i] == "--output" && args[i + 1] == "json") || args[i] == "--output=json")
      as_json = true;
  if (!parse_options(args, specs(), given, error)) return unknown(as_json, error);
  for (const auto& g : given) {
    switch (g.id) {
      case kSend:
        rq.send = g.value;
        break;
      case kRecv:
        rq.recv = g.value;
        break;
      case kWait:
      case kTimeout: {
        auto v = decimal(g.value);
        if (!v || *v < 0 || *v > 86400) return unknown(as_json, g.name + " takes seconds");
        rq.wait_s = *v;
        break;
      }
      case kConf:
        rq.conf = g.value;
        break;
      case kPlay:
        rq.play = g.value;
        break;
      case kDoc:
        return print_doc();
      case kOutput:
        if (g.value != "nagios" && g.value != "json")
          return unknown(as_json, "--output takes nagios or json");
        rq.json = g.value == "json";
        break;
      case kFrom:
        rq.from = g.value;
        break;
      case kTo:
        rq.to = g.value;
        break;
      case kHelp:
        printf("check_delivery (mailwarden drop-in) - see man mailwarden\n");
        return 3;
    }
  }
  if (!rq.play.empty()) {
    if (rq.conf.empty()) return unknown(rq.json, "--play needs --conf FILE");
    if (auto e = read_scenario(rq)) return unknown(rq.json, *e);
  }
  if (rq.send.empty() || rq.recv.empty())
    return unknown(rq.json, "give --send URL and --recv URL (or --conf FILE --play SCENARIO)");

  config::DeliveryCheck dc;
  if (auto e = to_mail_url(rq.send, true, dc.send); !e.empty())
    return unknown(rq.json, "--send: " + e);
  if (auto e = to_mail_url(rq.recv, false, dc.receive); !e.empty())
    return unknown(rq.json, "--recv: " + e);
  // A sender URL with a user but no password names the envelope sender only (no AUTH); for
  // IRC the user is the nick, for FTP the login.
  std::string send_user = dc.send.username;
  if (dc.send.password.empty() && !dc.send.is_irc() && !dc.send.is_ftp()) dc.send.username.clear();
  dc.to = !rq.to.empty() ? rq.to : dc.receive.username;
  dc.from = !rq.from.empty()                           ? rq.from
            : send_user.find('@') != std::string::npos ? send_user
                                                       : dc.to;
  bool smtp = dc.send.scheme.rfind("smtp", 0) == 0;
  if (smtp && dc.to.find('@') == std::string::npos)
    return unknown(rq.json,
                   "the recipient is the --recv URL's user and must be an address "
                   "(user%40domain), or give --to ADDRESS");
  if (dc.from.empty() || (!smtp && dc.from.find('@') == std::string::npos))
    dc.from = "check_delivery@localhost";
  if (dc.to.empty() || !smtp) dc.to = dc.to.find('@') == std::string::npos ? dc.from : dc.to;
  dc.within_ms = static_cast<int64_t>(rq.wait_s * 1000);
  dc.allow_plaintext = true;  // the seed sends what the URL says over what the URL says

  int64_t deadline_ms = dc.within_ms + 60000;
  std::string description = "delivery " + dc.send.shown + " -> " + dc.receive.shown;
  auto cfg =
      one_check_model("check_delivery", config::ServiceKind::delivery, "delivery", description,
                      std::make_shared<config::DeliveryCheck>(std::move(dc)), deadline_ms);
  const auto& service = cfg->services.front();
  CheckResult r = run_once(cfg, service, {&service.checks.front()}).front();

  State s = State::ok;
  std::string message = "token delivered";
  if (!r.ok) {
    s = State::critical;
    message = r.reason();
    // Found more than once: the seed cannot tell which copy is the probe (UNKNOWN).
    if (r.message.find(" times") != std::string::npos && r.cls == FailureClass::content)
      s = State::unknown;
    if (r.cls == FailureClass::internal) s = State::unknown;
  } else if (auto it = r.metrics.find("latency_ms"); it != r.metrics.end()) {
    message += " in " + report::nagios::number(it->second / 1000.0, 3) + " s";
  }
  auto steps = seed_steps(r);
  if (rq.json) {
    json timings = json::object();
    for (const auto& [name, secs] : steps) timings[name] = secs;
    json out = {{"status", report::nagios::state_name(s)},
                {"code", static_cast<int>(s)},
                {"message", message},
                {"timings", timings}};
    if (r.details.is_object() && r.details.contains("token")) out["token"] = r.details["token"];
    if (r.details.is_object() && r.details.contains("failed_step"))
      out["failed_step"] = r.details["failed_step"];
    printf("%s\n", out.dump().c_str());
    return static_cast<int>(s);
  }
  std::vector<report::nagios::Perf> perf;
  for (const auto& [name, secs] : steps) {
    report::nagios::Perf p;
    p.label = name;
    p.value = secs;
    p.uom = "s";
    p.decimals = 3;
    p.min = 0.0;
    perf.push_back(p);
  }
  printf("DELIVERY %s - %s | %s\n", report::nagios::state_name(s), message.c_str(),
         report::nagios::format(perf).c_str());
  return static_cast<int>(s);
}

}  // namespace mw::plugin
