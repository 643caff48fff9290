#include "state/snapshot.h"

#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <limits>
#include <type_traits>

#include "util/clock.h"
#include "util/files.h"

namespace mw::state {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;

// A state file may have been edited by hand, truncated, or written by another version: every
// member is read with its expected type, and anything else counts as absent.
template <typename T>
T get(const json& j, const char* key, T fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->template get<std::string>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : fallback;
  } else if constexpr (std::is_same_v<T, double>) {
    return it->is_number() ? it->template get<double>() : fallback;
  } else if constexpr (std::is_unsigned_v<T>) {
    return it->is_number_unsigned() ? it->template get<T>() : fallback;
  } else {
    if (!it->is_number_integer()) return fallback;
    if (it->is_number_unsigned() &&
        it->template get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return fallback;
    int64_t v = it->template get<int64_t>();
    if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        v > static_cast<int64_t>(std::numeric_limits<T>::max()))
      return fallback;
    return static_cast<T>(v);
  }
}

std::string get(const json& j, const char* key, const char* fallback) {
  return get<std::string>(j, key, std::string(fallback));
}

const json& array_member(const json& j, const char* key) {
  static const json empty = json::array();
  if (!j.is_object()) return empty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : empty;
}

RuleState state_from(const std::string& s) {
  if (s == "ok") return RuleState::ok;
  if (s == "failed") return RuleState::failed;
  return RuleState::init;
}

CheckResult result_from(const json& j) {
  CheckResult r;
  r.ok = get(j, "status", "failed") == "ok";
  r.cls = failure_class_from_name(get(j, "class", "none"), FailureClass::internal);
  r.message = get(j, "message", "");
  r.server_line = get(j, "server_line", "");
  r.response_ms = get(j, "response_ms", 0.0);
  r.attempts = get(j, "attempts", 1);
  r.checked_at = static_cast<time_t>(get(j, "checked_at_unix", int64_t{0}));
  if (j.contains("metrics") && j["metrics"].is_object())
    for (auto& [k, v] : j["metrics"].items())
      if (v.is_number()) r.metrics[k] = v.get<double>();
  if (j.contains("details")) r.details = j["details"];
  if (j.contains("certificate") && j["certificate"].is_object()) {
    const json& c = j["certificate"];
    CertInfo info;
    info.days_left = get(c, "days_left", 0);
    info.not_after = static_cast<time_t>(get(c, "not_after_unix", int64_t{0}));
    info.subject = get(c, "subject", "");
    info.issuer = get(c, "issuer", "");
    info.sha256 = get(c, "sha256", "");
    info.verify_error = get(c, "verify_error", "");
    info.tls_version = get(c, "tls_version", "");
    r.certificate = std::make_shared<const CertInfo>(std::move(info));
  }
  return r;
}

}  // namespace

json result_to_json(const CheckResult& r) {
  json j;
  j["status"] = r.ok ? "ok" : "failed";
  j["class"] = failure_class_name(r.cls);
  j["message"] = r.message;
  if (!r.server_line.empty()) j["server_line"] = r.server_line;
  j["response_ms"] = r.response_ms;
  j["attempts"] = r.attempts;
  j["checked_at"] = clock::format_utc(r.checked_at);
  j["checked_at_unix"] = static_cast<int64_t>(r.checked_at);
  if (!r.metrics.empty()) j["metrics"] = r.metrics;
  if (!r.details.is_null()) j["details"] = r.details;
  if (r.certificate) {
    const CertInfo& c = *r.certificate;
    j["certificate"] = {{"days_left", c.days_left},
                        {"not_after", clock::format_utc(c.not_after)},
                        {"not_after_unix", static_cast<int64_t>(c.not_after)},
                        {"subject", c.subject},
                        {"issuer", c.issuer},
                        {"sha256", c.sha256},
                        {"verify_error", c.verify_error},
                        {"tls_version", c.tls_version}};
  }
  return j;
}

namespace {

// The state file is one JSON document, indented by one space per level. It is written piece by
// piece, check after check (the nested values -- a result, a composite's memory -- dumped by
// nlohmann and indented to their depth), so that the memory a save needs is a piece of the text,
// not a document of the whole state (for ten thousand checks with their history, tens of
// megabytes more on the writer thread). The text is the same, byte for byte, as the dump of the
// whole document: nlohmann's objects sort their keys, so the members below are written in that
// order.
void append_dump(std::string& out, const json& j, int depth) {
  // A byte sequence that is not UTF-8 must not make the state unwritable.
  std::string text = j.dump(1, ' ', false, json::error_handler_t::replace);
  // A dumped string never holds a raw line feed: each one starts a line of the document.
  size_t start = 0;
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    out.append(text, start, nl + 1 - start);
    out.append(static_cast<size_t>(depth), ' ');
    start = nl + 1;
  }
  out.append(text, start, std::string::npos);
}

void append_member(std::string& out, int depth, const char* key, bool& first) {
  out += first ? "\n" : ",\n";
  first = false;
  out.append(static_cast<size_t>(depth), ' ');
  out += '"';
  out += key;
  out += "\": ";
}

template <typename Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// A number as nlohmann writes it ("5.0", "0.125", null for what is not finite).
void append_double(std::string& out, double v) {
  out += json(v).dump();
}

void open_line(std::string& out, int depth, bool first) {
  out += first ? "\n" : ",\n";
  out.append(static_cast<size_t>(depth), ' ');
}

// A check at depth 4 (an element of a service's "checks"), its members at depth 5. The members
// with the most values -- the history and the rules -- are written directly; the others are
// dumped by nlohmann.
void append_check(std::string& out, const CheckSnapshot& c) {
  out += '{';
  bool first = true;
  append_member(out, 5, "description", first);
  append_dump(out, c.description, 5);
  if (!c.history.empty()) {
    append_member(out, 5, "history", first);
    out += '[';
    bool first_point = true;
    for (const auto& h : c.history) {
      open_line(out, 6, first_point);
      first_point = false;
      out += "[\n       ";
      append_int(out, static_cast<int64_t>(h.at));
      out += h.ok ? ",\n       1,\n       " : ",\n       0,\n       ";
      append_double(out, h.response_ms);
      // A class name is a word of letters and underscores: nothing to escape.
      out += ",\n       \"";
      out += failure_class_name(h.cls);
      out += "\"\n      ]";
    }
    out += "\n     ]";
  }
  append_member(out, 5, "id", first);
  append_dump(out, c.id, 5);
  if (!c.kind.empty()) {
    append_member(out, 5, "kind", first);
    append_dump(out, c.kind, 5);
  }
  if (c.last) {
    append_member(out, 5, "last", first);
    append_dump(out, result_to_json(*c.last), 5);
  }
  if (!c.memory.is_null()) {
    append_member(out, 5, "memory", first);
    append_dump(out, c.memory, 5);
  }
  if (!c.protocol.empty()) {
    append_member(out, 5, "protocol", first);
    append_dump(out, c.protocol, 5);
  }
  append_member(out, 5, "rules", first);
  if (c.rules.empty()) {
    out += "[]";
  } else {
    out += '[';
    bool first_rule = true;
    for (const auto& r : c.rules) {
      open_line(out, 6, first_rule);
      first_rule = false;
      out += '{';
      bool first_member = true;
      append_member(out, 7, "cycles_in_state", first_member);
      append_int(out, r.cycles_in_state);
      append_member(out, 7, "history", first_member);
      append_int(out, r.history);
      if (!r.previous.is_null()) {
        append_member(out, 7, "previous", first_member);
        append_dump(out, r.previous, 7);
      }
      append_member(out, 7, "recorded", first_member);
      append_int(out, r.recorded);
      append_member(out, 7, "state", first_member);
      out += '"';
      out += rule_state_name(r.state);  // a word: nothing to escape
      out += "\"\n      }";
    }
    out += "\n     ]";
  }
  append_member(out, 5, "runs", first);
  append_int(out, c.runs);
  if (c.since) {
    append_member(out, 5, "since_unix", first);
    append_int(out, static_cast<int64_t>(c.since));
  }
  if (!c.target.empty()) {
    append_member(out, 5, "target", first);
    append_dump(out, c.target, 5);
  }
  out += "\n    }";
}

// A service at depth 2 (an element of "services"), its checks at depth 4.
void append_service(std::string& out, const ServiceSnapshot& svc) {
  out += "  {";
  bool first = true;
  append_member(out, 3, "checks", first);
  if (svc.checks.empty()) {
    out += "[]";
  } else {
    out += '[';
    for (size_t i = 0; i < svc.checks.size(); ++i) {
      out += i ? ",\n    " : "\n    ";
      append_check(out, svc.checks[i]);
    }
    out += "\n   ]";
  }
  if (!svc.groups.empty()) {
    append_member(out, 3, "groups", first);
    append_dump(out, svc.groups, 3);
  }
  if (!svc.monitored) {
    append_member(out, 3, "monitored", first);
    out += "false";
  }
  append_member(out, 3, "name", first);
  append_dump(out, svc.name, 3);
  if (!svc.type.empty()) {
    append_member(out, 3, "type", first);
    append_dump(out, svc.type, 3);
  }
  out += "\n  }";
}

// The document into `out`; after each service `spill(out)` may take what is there so far.
template <typename Spill>
void write_document(const Snapshot& s, std::string& out, Spill spill) {
  out += "{";
  bool first = true;
  append_member(out, 1, "actions", first);
  append_dump(out, s.actions, 1);
  if (!s.boot_id.empty()) {
    append_member(out, 1, "boot_id", first);
    append_dump(out, s.boot_id, 1);
  }
  append_member(out, 1, "cycles", first);
  out += std::to_string(s.cycles);
  append_member(out, 1, "format", first);
  out += std::to_string(kFormatVersion);
  append_member(out, 1, "pid", first);
  out += std::to_string(s.pid);
  append_member(out, 1, "services", first);
  if (s.services.empty()) {
    out += "[]";
  } else {
    out += '[';
    for (size_t i = 0; i < s.services.size(); ++i) {
      out += i ? ",\n" : "\n";
      append_service(out, s.services[i]);
      spill(out);
    }
    out += "\n ]";
  }
  append_member(out, 1, "started_unix", first);
  out += std::to_string(static_cast<int64_t>(s.started));
  append_member(out, 1, "written", first);
  append_dump(out, clock::format_utc(s.written), 1);
  append_member(out, 1, "written_unix", first);
  out += std::to_string(static_cast<int64_t>(s.written));
  out += "\n}\n";
}

}  // namespace

std::string to_text(const Snapshot& s) {
  std::string out;
  write_document(s, out, [](std::string&) {});
  return out;
}

bool from_text(const std::string& text, Snapshot& out, std::string& error) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = "not a mailwarden state file (invalid JSON)";
    return false;
  }
  auto format = j.find("format");
  if (format == j.end() || !format->is_number_integer() ||
      format->get<int64_t>() != kFormatVersion) {
    error = "unknown state file format " +
            (format == j.end() ? std::string("(none)") : format->dump().substr(0, 40));
    return false;
  }
  try {
    Snapshot s;
    s.pid = get(j, "pid", 0);
    s.started = static_cast<time_t>(get(j, "started_unix", int64_t{0}));
    s.written = static_cast<time_t>(get(j, "written_unix", int64_t{0}));
    s.cycles = std::max<int64_t>(0, get(j, "cycles", int64_t{0}));
    s.boot_id = get(j, "boot_id", "").substr(0, 64);
    for (const auto& js : array_member(j, "services")) {
      if (!js.is_object()) continue;
      ServiceSnapshot svc;
      svc.name = get(js, "name", "");
      svc.type = get(js, "type", "");
      svc.monitored = get(js, "monitored", true);
      for (const auto& g : array_member(js, "groups"))
        if (g.is_string()) svc.groups.push_back(g.get<std::string>());
      for (const auto& jc : array_member(js, "checks")) {
        if (!jc.is_object()) continue;
        CheckSnapshot c;
        c.id = get(jc, "id", "");
        c.description = get<std::string>(jc, "description", c.id);
        c.runs = get(jc, "runs", int64_t{0});
        c.kind = get(jc, "kind", "");
        c.protocol = get(jc, "protocol", "");
        c.target = get(jc, "target", "");
        c.since = static_cast<time_t>(get(jc, "since_unix", int64_t{0}));
        for (const auto& jh : array_member(jc, "history")) {
          if (!jh.is_array() || jh.size() < 4 || c.history.size() >= kHistoryLength) continue;
          HistoryPoint h;
          h.at = static_cast<time_t>(jh[0].is_number_integer() ? jh[0].get<int64_t>() : 0);
          h.ok = jh[1].is_number_integer() && jh[1].get<int64_t>() == 1;
          h.response_ms = jh[2].is_number() ? jh[2].get<double>() : 0.0;
          h.cls = failure_class_from_name(jh[3].is_string() ? jh[3].get<std::string>() : "",
                                          FailureClass::internal);
          c.history.push_back(h);
        }
        for (const auto& jr : array_member(jc, "rules")) {
          if (!jr.is_object()) continue;
          c.rules.push_back(RuleSnapshot{state_from(get(jr, "state", "init")),
                                         get(jr, "history", uint64_t{0}), get(jr, "recorded", 0),
                                         get(jr, "cycles_in_state", int64_t{0}),
                                         jr.contains("previous") ? jr["previous"] : json()});
        }
        if (jc.contains("last") && jc["last"].is_object())
          c.last = std::make_shared<const CheckResult>(result_from(jc["last"]));
        if (jc.contains("memory") && jc["memory"].is_object()) c.memory = jc["memory"];
        svc.checks.push_back(std::move(c));
      }
      s.services.push_back(std::move(svc));
    }
    if (j.contains("actions") && j["actions"].is_object()) s.actions = j["actions"];
    out = std::move(s);
  } catch (const std::exception& e) {
    error = std::string("state file has an unexpected shape: ") + e.what();
    return false;
  }
  return true;
}

bool save(const std::string& path, const Snapshot& s, std::string& error) {
  // Written in pieces of about 256 KB: the whole text of a large state never sits in memory.
  constexpr size_t kPiece = 256 * 1024;
  files::AtomicFile file;
  if (!file.open(path, 0600, error)) return false;
  std::string piece;
  piece.reserve(kPiece + 64 * 1024);
  bool ok = true;
  write_document(s, piece, [&](std::string& out) {
    if (ok && out.size() < kPiece) return;
    ok = ok && file.write(out, error);
    out.clear();  // after a failed write: nothing more to keep
  });
  return ok && file.write(piece, error) && file.commit(error);
}

bool load(const std::string& path, Snapshot& out, std::string& error) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    out = Snapshot{};
    return true;
  }
  // Regular files only (never a FIFO or /dev/zero behind a link), bounded in size.
  auto text = files::read(path, error, kMaxStateFileBytes);
  if (!text) return false;
  if (!from_text(*text, out, error)) {
    error = path + ": " + error;
    return false;
  }
  return true;
}

}  // namespace mw::state
