#include "plugin/ini.h"

#include <sys/stat.h>

#include <fstream>

#include "util/strings.h"

namespace mw::plugin {

namespace {
constexpr size_t kMaxFileBytes = 1024 * 1024;
constexpr size_t kMaxLine = 64 * 1024;
}  // namespace

bool Ini::load(const std::string& path, std::string& error) {
  path_ = path;
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && st.st_size > static_cast<off_t>(kMaxFileBytes)) {
    error = path + ": more than 1 MiB: not an INI file of plugin options";
    return false;
  }
  std::ifstream in(path);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  std::string line, section;
  std::string* last_value = nullptr;
  size_t total = 0;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    total += line.size() + 1;
    if (total > kMaxFileBytes || line.size() > kMaxLine) {
      error = path + ":" + std::to_string(lineno) + ": file too large for an INI file";
      return false;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string_view t = str::trim(line);
    if (t.empty() || t[0] == ';' || t[0] == '#') {
      if (t.empty()) last_value = nullptr;
      continue;
    }
    bool indented = line[0] == ' ' || line[0] == '\t';
    if (indented && last_value) {
      *last_value += "\n" + std::string(t);  // a continuation line
      continue;
    }
    if (t[0] == '[') {
      if (t.back() != ']') {
        error = path + ":" + std::to_string(lineno) + ": expected ']' to close the section name";
        return false;
      }
      section = std::string(str::trim(t.substr(1, t.size() - 2)));
      sections_[section];
      last_value = nullptr;
      continue;
    }
    auto sep = t.find_first_of("=:");
    if (sep == std::string_view::npos) {
      error = path + ":" + std::to_string(lineno) + ": expected 'key = value'";
      return false;
    }
    if (section.empty()) {
      error = path + ":" + std::to_string(lineno) + ": a key before any [section]";
      return false;
    }
    std::string key = str::lower(str::trim(t.substr(0, sep)));
    std::string value(str::trim(t.substr(sep + 1)));
    auto& entries = sections_[section];
    entries.emplace_back(key, value);
    last_value = &entries.back().second;
  }
  return true;
}

bool Ini::has_section(const std::string& section) const {
  return sections_.count(section) > 0;
}

std::vector<std::string> Ini::keys(const std::string& section) const {
  std::vector<std::string> out;
  if (auto it = sections_.find(section); it != sections_.end())
    for (const auto& [k, v] : it->second) out.push_back(k);
  return out;
}

std::optional<std::string> Ini::raw(const std::string& section, const std::string& key) const {
  auto it = sections_.find(section);
  if (it == sections_.end()) return std::nullopt;
  std::optional<std::string> found;
  for (const auto& [k, v] : it->second)
    if (k == str::lower(key)) found = v;  // the last one wins, as in ConfigParser(strict=False)
  return found;
}

std::optional<std::string> Ini::get(const std::string& section, const std::string& key,
                                    std::string& error) const {
  auto v = raw(section, key);
  if (!v) {
    error = path_ + ": no key '" + key + "' in section [" + section + "]";
    return std::nullopt;
  }
  return resolve(section, *v, 0, error);
}

std::optional<std::string> Ini::resolve(const std::string& section, const std::string& value,
                                        int depth, std::string& error) const {
  if (depth > 10) {
    error = path_ + ": ${...} references nest more than 10 deep (a loop?)";
    return std::nullopt;
  }
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '$') {
      out += value[i];
      continue;
    }
    if (i + 1 < value.size() && value[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 >= value.size() || value[i + 1] != '{') {
      error = path_ + ": in [" + section + "]: '$' must be followed by '{' or '$'";
      return std::nullopt;
    }
    auto close = value.find('}', i + 2);
    if (close == std::string::npos) {
      error = path_ + ": in [" + section + "]: unterminated ${...}";
      return std::nullopt;
    }
    std::string ref = value.substr(i + 2, close - i - 2);
    auto colon = ref.find(':');
    std::string ref_section = colon == std::string::npos ? section : ref.substr(0, colon);
    std::string ref_key = colon == std::string::npos ? ref : ref.substr(colon + 1);
    auto target = raw(ref_section, ref_key);
    if (!target) {
      error = path_ + ": in [" + section + "]: ${" + ref + "} names no key";
      return std::nullopt;
    }
    auto resolved = resolve(ref_section, *target, depth + 1, error);
    if (!resolved) return std::nullopt;
    out += *resolved;
    i = close;
  }
  return out;
}

}  // namespace mw::plugin
