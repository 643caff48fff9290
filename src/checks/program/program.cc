#include "checks/program/program.h"

#include <pcre2.h>

#include "engine/compare.h"
#include "net/child.h"
#include "util/strings.h"

namespace mw::checks::program {
namespace {

constexpr size_t kKeptOutput = 64 * 1024;  // read for content rules
constexpr size_t kShownOutput = 4096;      // kept in the state

// Its output as kept in the state: lines and tabs stay, other control bytes become '?'.
std::string keepable(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') c = '?';
  return text;
}

}  // namespace

Task<void> run(RunContext& ctx) {
  const auto& pc = *ctx.check().as<config::ProgramCheck>();
  ChildSpec spec;
  spec.command = pc.command;
  spec.timeout_ms = ctx.check().timeout_ms;
  spec.max_output = kKeptOutput;
  ChildOutcome o = co_await run_child(ctx.scope(), spec);
  std::string shown = o.output.substr(0, kShownOutput);
  while (!shown.empty() && (shown.back() == '\n' || shown.back() == '\r')) shown.pop_back();
  ctx.details["output"] = keepable(shown);
  ctx.details["output_bytes"] = o.output_bytes;
  if (o.truncated()) ctx.details["output_truncated"] = true;
  std::string first_line = str::printable(shown.substr(0, shown.find('\n')), 200);
  if (o.timed_out)
    throw ProbeError(FailureClass::timeout,
                     "program did not exit within " + std::to_string(spec.timeout_ms / 1000) +
                         " s; stopped (TERM, then KILL to its process group)",
                     first_line);
  if (!o.exited)
    throw ProbeError(FailureClass::exec, "program was killed by signal " + std::to_string(o.signal),
                     first_line);
  if (o.exit_code == 126 || o.exit_code == 127)
    throw ProbeError(FailureClass::exec,
                     std::string("program could not be run (") +
                         (o.exit_code == 127 ? "not found" : "not executable") + ", exit status " +
                         std::to_string(o.exit_code) + ")",
                     first_line);
  ctx.metrics["status"] = o.exit_code;
  for (size_t i = 0; i < pc.content.size(); ++i) {
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
        pcre2_match_data_create_from_pattern(pc.content[i].code.get(), nullptr),
        pcre2_match_data_free);
    int rc = pcre2_match(pc.content[i].code.get(), reinterpret_cast<PCRE2_SPTR>(o.output.data()),
                         o.output.size(), 0, 0, md.get(), nullptr);
    ctx.metrics["content_" + std::to_string(i + 1)] = rc >= 0 ? 1 : 0;
  }
}

std::pair<std::string, std::string> labels(const config::Check& check) {
  return {"program", check.as<config::ProgramCheck>()->command};
}

void rows(const CheckResult& r, DetailRows& out) {
  if (auto it = r.metrics.find("status"); it != r.metrics.end())
    out.emplace_back("exit status", format_value(it->second, ""));
  if (r.details.is_object() && r.details.contains("output") && r.details["output"].is_string()) {
    std::string text = r.details["output"].get<std::string>();
    out.emplace_back("output", text.substr(0, text.find('\n')));
  }
}

}  // namespace mw::checks::program
