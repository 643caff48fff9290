#include "plugin/options.h"

#include <sys/stat.h>

#include <charconv>
#include <cmath>
#include <fstream>

namespace mw::plugin {

bool parse_options(const std::vector<std::string>& args, const std::vector<OptionSpec>& specs,
                   std::vector<GivenOption>& out, std::string& error) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const OptionSpec* spec = nullptr;
    std::optional<std::string> inline_value;
    std::string name;
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string body = a.substr(2);
      auto eq = body.find('=');
      std::string key = body.substr(0, eq);
      if (eq != std::string::npos) inline_value = body.substr(eq + 1);
      for (const auto& s : specs)
        if (s.long_name == key) spec = &s;
      name = "--" + key;
    } else if (a.size() >= 2 && a[0] == '-' && a[1] != '-') {
      for (const auto& s : specs)
        if (s.short_name == a[1]) spec = &s;
      name = a.substr(0, 2);
      if (a.size() > 2) inline_value = a.substr(2);
    } else {
      error = "unexpected argument '" + a + "'";
      return false;
    }
    if (!spec) {
      error = "unknown option " + name;
      return false;
    }
    GivenOption g{spec->id, {}, name};
    if (spec->takes_value) {
      if (inline_value) {
        g.value = *inline_value;
      } else if (i + 1 < args.size()) {
        g.value = args[++i];
      } else {
        error = "option " + name + " needs a value";
        return false;
      }
    } else if (inline_value) {
      error = "option " + name + " takes no value";
      return false;
    }
    out.push_back(std::move(g));
  }
  return true;
}

std::optional<long long> whole_number(std::string_view text, long long max) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < 0 || v > max)
    return std::nullopt;
  return v;
}

std::optional<double> decimal(std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
    return std::nullopt;
  return v;
}

bool read_password_file(const std::string& path, std::string& out, std::string& error) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    error = "cannot read the password file " + path;
    return false;
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    error = "the password file " + path + " is readable by others: chmod 600 it";
    return false;
  }
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line.size() > 4096) {
    error = "cannot read a password from " + path;
    return false;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  out = line;
  return true;
}

}  // namespace mw::plugin
