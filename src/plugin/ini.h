// The INI files the seed plugins read: Python ConfigParser's format (sections, "key = value" or
// "key: value", indented continuation lines, ';' and '#' comments, keys case-insensitive) with
// its ExtendedInterpolation: ${key} from the same section, ${section:key} from another.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mw::plugin {

class Ini {
 public:
  // false with `error` ("FILE:LINE: ...") when the file cannot be read or is not INI.
  [[nodiscard]] bool load(const std::string& path, std::string& error);
  [[nodiscard]] bool has_section(const std::string& section) const;
  // The keys of a section, in file order.
  [[nodiscard]] std::vector<std::string> keys(const std::string& section) const;
  // The raw value, or nullopt.
  [[nodiscard]] std::optional<std::string> raw(const std::string& section,
                                               const std::string& key) const;
  // The value with ${...} resolved (at most 10 levels deep); nullopt with `error` set when the
  // key is missing or a reference cannot be resolved.
  [[nodiscard]] std::optional<std::string> get(const std::string& section, const std::string& key,
                                               std::string& error) const;

 private:
  [[nodiscard]] std::optional<std::string> resolve(const std::string& section,
                                                   const std::string& value, int depth,
                                                   std::string& error) const;
  std::string path_;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> sections_;
};

}  // namespace mw::plugin
