#include "checks/delivery/delivery.h"

#include <unistd.h>

#include <cmath>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/delivery/message.h"
#include "checks/delivery/receivers.h"
#include "checks/delivery/senders.h"
#include "net/failure.h"
#include "util/clock.h"
#include "util/strings.h"

namespace mw::checks::delivery {
namespace {

using config::DeliveryCheck;
using nlohmann::json;

constexpr size_t kMaxStaleProbes = 8;  // late probes of past runs still looked for

// Milliseconds with one decimal since the last lap.
class Stopwatch {
 public:
  double lap() {
    int64_t now = clock::now_us();
    double ms = std::round(static_cast<double>(now - last_) / 100.0) / 10.0;
    last_ = now;
    return ms;
  }

 private:
  int64_t last_ = clock::now_us();
};

// Waits until the probe shows up on the receiving side or `within` has passed.
Task<std::vector<std::string>> wait_for_probe(Receiver& receiver, const DeliveryCheck& dc,
                                              const std::string& token) {
  int64_t deadline = clock::now_ms() + dc.within_ms;
  auto found = co_await receiver.find(token, false);
  while (found.empty()) {
    int64_t left = deadline - clock::now_ms();
    if (left <= 0) {
      char text[64];
      snprintf(text, sizeof text, "%.1f s", static_cast<double>(dc.within_ms) / 1000.0);
      std::string within = text;
      if (within.size() > 4 && within.compare(within.size() - 4, 4, ".0 s") == 0)
        within.replace(within.size() - 4, 2, "");
      throw ProbeError(FailureClass::content, "the probe message did not arrive within " + within +
                                                  " at " + dc.receive.shown);
    }
    co_await receiver.wait_for_change(left);
    found = co_await receiver.find(token, false);
  }
  co_return found;
}

std::vector<std::string> stale_tokens(const json& memory) {
  std::vector<std::string> out;
  if (memory.is_object() && memory.contains("unfound") && memory["unfound"].is_array())
    for (const auto& t : memory["unfound"])
      if (t.is_string() && t.get<std::string>().size() == 64) out.push_back(t.get<std::string>());
  return out;
}

// Late probes of earlier runs that are found now are removed; the rest are looked for again.
Task<std::vector<std::string>> clean_stale(Receiver& receiver, std::vector<std::string> stale) {
  std::vector<std::string> left;
  if (!receiver.can_find_old()) co_return left;
  for (const auto& token : stale) {
    auto ids = co_await receiver.find(token, true);
    if (ids.empty()) {
      left.push_back(token);
      continue;
    }
    co_await receiver.remove(ids);
  }
  co_return left;
}

struct Outcome {
  json steps = json::object();
  std::string step = "connect";
  std::optional<ProbeError> error;
  std::string problem;  // found, but twice or altered (reported after the cleanup)
  std::optional<double> delivery_ms;
};

}  // namespace

Task<void> run(RunContext& ctx) {
  const auto& dc = *ctx.check().as<DeliveryCheck>();
  std::string token = new_token();
  std::vector<std::string> stale = stale_tokens(ctx.memory);
  auto receiver = make_receiver(ctx, dc);
  auto sender = make_sender(ctx, dc);
  Outcome out;
  Stopwatch watch;
  std::vector<std::string> found;
  try {
    // The receiving side is ready before anything is sent, so that a fast delivery cannot be
    // missed and what was there already is not taken for the probe.
    co_await receiver->open();
    out.steps["connect"] = watch.lap();

    // Sending is one step from the connection to the accepted message: a sending server that
    // is down fails "send", as does one that refuses the message.
    out.step = "send";
    co_await sender->send(token);
    double send_ms = watch.lap();
    out.steps["send"] = send_ms;

    out.step = "wait";
    found = co_await wait_for_probe(*receiver, dc, token);
    double wait_ms = watch.lap();
    out.steps["wait"] = wait_ms;
    out.delivery_ms = std::round((send_ms + wait_ms) * 10.0) / 10.0;

    out.step = "found";
    std::string text = co_await receiver->fetch(found[0]);
    std::string altered = receiver->altered(text, token);
    if (found.size() > 1) {
      out.problem = "the probe message arrived " + std::to_string(found.size()) + " times";
    } else if (!altered.empty()) {
      out.problem = "the probe message arrived altered: " + altered;
    }
    out.steps["found"] = watch.lap();

    out.step = "clean";
    if (!dc.keep_messages) {
      // A second copy that came meanwhile is a duplicate too.
      auto again = co_await receiver->find(token, false);
      if (again.size() > found.size() && out.problem.empty())
        out.problem = "the probe message arrived " + std::to_string(again.size()) + " times";
      // The latest search names the copies as the receiver sees them now (POP3 message
      // numbers belong to one session).
      if (!again.empty()) found = again;
      co_await receiver->remove(found);
      stale = co_await clean_stale(*receiver, stale);
    }
    co_await receiver->close();
    out.steps["clean"] = watch.lap();
  } catch (const ProbeError& e) {
    out.error = e;
    out.steps[out.step] = watch.lap();  // how long the failed step went on
  }
  if (out.error && out.step == "wait") {
    stale.push_back(token);
    if (stale.size() > kMaxStaleProbes) stale.erase(stale.begin());
  }
  ctx.memory = json{{"unfound", stale}};
  ctx.details = json{{"token", token}, {"steps_ms", out.steps}};
  if (out.delivery_ms) {
    ctx.details["delivery_ms"] = *out.delivery_ms;
    ctx.metrics["latency_ms"] = *out.delivery_ms;
  }
  if (out.error) {
    ctx.details["failed_step"] = out.step;
    throw ProbeError(out.error->cls(), out.step + ": " + out.error->what(),
                     out.error->server_line());
  }
  if (!out.problem.empty()) {
    ctx.details["failed_step"] = "found";
    throw ProbeError(FailureClass::content, "found: " + out.problem);
  }
}

std::pair<std::string, std::string> labels(const config::Check& check) {
  const auto& dc = *check.as<config::DeliveryCheck>();
  return {dc.send.scheme + ">" + dc.receive.scheme, dc.send.endpoint.describe()};
}

void rows(const CheckResult& r, DetailRows& out) {
  if (!r.details.is_object()) return;
  if (auto it = r.details.find("delivery_ms"); it != r.details.end() && it->is_number())
    out.emplace_back("delivery time",
                     std::to_string(it->get<double>() / 1000.0).substr(0, 6) + " s");
  if (auto it = r.details.find("steps_ms"); it != r.details.end() && it->is_object()) {
    std::string steps;
    for (const auto& [step, ms] : it->items()) {
      if (!ms.is_number()) continue;
      char buf[64];
      snprintf(buf, sizeof buf, "%s%s %.0f ms", steps.empty() ? "" : ", ", step.c_str(),
               ms.get<double>());
      steps += buf;
    }
    if (!steps.empty()) out.emplace_back("steps", steps);
  }
  if (auto it = r.details.find("failed_step"); it != r.details.end() && it->is_string())
    out.emplace_back("failed step", it->get<std::string>());
}

}  // namespace mw::checks::delivery
