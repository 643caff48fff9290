// if failed ping|icmp|ping4|ping6 [type echo] [count N] [size N] [with timeout N seconds]
// [retry N] [for N cycles | N times within M cycles] then ...: ICMP echo to the host's address
// (monit's icmp test). The check runs in src/checks/ping/.
#include <algorithm>

#include "checks/registry.h"
#include "config/parser_impl.h"
#include "util/strings.h"

namespace mw::config::parsing {

void Parser::parse_ping_test(size_t index, const Location& where) {
  Service& svc = cfg_.services[index];
  std::string kind = str::lower(next().text);  // ping, icmp, ping4, ping6
  Check chk;
  chk.where = where;
  chk.timeout_ms = 0;  // none written: set limits { networktimeout } decides, in finalize()
  PingCheck ping;
  ping.host = svc.address;
  if (kind == "ping4") ping.family = AddressFamily::ipv4;
  if (kind == "ping6") ping.family = AddressFamily::ipv6;
  Rule rule;
  rule.where = where;
  static const std::vector<std::string> clauses = {"type",  "count", "size", "timeout",
                                                   "retry", "for",   "then"};
  for (;;) {
    const Token& t = peek();
    if (is_kw(t, "then")) break;
    if (t.kind == Token::Kind::number) {
      parse_cycles(rule.fail_rule);
      continue;
    }
    if (t.kind != Token::Kind::word) fail_expected("a ping clause or 'then'", clauses);
    std::string k = str::lower(t.text);
    Location at_kw = t.where;
    next();
    if (k == "type") {
      if (!accept("echo"))
        fail_expected("'echo' after 'type' (ICMP echo is the only type)", {"echo"});
    } else if (k == "count") {
      ping.count = static_cast<int>(number("the number of echo requests", 1, 20));
    } else if (k == "size") {
      ping.size = static_cast<int>(number("the payload size in bytes", 8, 1452));
    } else if (k == "timeout") {
      chk.timeout_ms = duration_ms("the timeout", 100);
    } else if (k == "retry") {
      chk.retry = static_cast<int>(number("the number of retries", 0, 10));
    } else if (k == "for") {
      parse_cycles(rule.fail_rule);  // N cycles, N times within M cycles
    } else {
      fail(at_kw, "unknown " + kind + " clause '" + t.text + "' (a ping test takes " +
                      one_of(clauses) + ")" + did_you_mean(k, clauses));
    }
  }
  next();  // then
  parse_rule_tail(rule, "if failed " + kind);
  if (ping.host.empty()) fail(where, "the ping test has no host (the service has no address)");
  bool default_timeout = chk.timeout_ms == 0;
  if (default_timeout) chk.timeout_ms = default_timeout_ms_;
  chk.deadline_ms = 3 * chk.timeout_ms;
  chk.description = (kind == "icmp" ? std::string("ping") : kind) + " " + ping.host;
  assign_check_id(svc, chk);
  chk.kind = &checks::get("ping");
  chk.spec = std::make_shared<PingCheck>(std::move(ping));
  chk.rules.push_back(std::move(rule));
  svc.checks.push_back(std::move(chk));
  if (default_timeout) pending_timeouts_.push_back({index, svc.checks.size() - 1, false});
}

}  // namespace mw::config::parsing
