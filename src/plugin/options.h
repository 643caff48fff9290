// Command-line options the way the Nagios plugins take them (getopt_long): "-H host", "-Hhost",
// "--hostname=host", "--hostname host", flags, and repeated options in order.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mw::plugin {

struct OptionSpec {
  char short_name;  // 0: long only
  std::string_view long_name;
  bool takes_value;
  int id;
};

struct GivenOption {
  int id;
  std::string value;
  std::string name;  // as written ("-H", "--hostname"), for messages
};

// Fills `out` in argv order; false with `error` set on an unknown option, a missing value, or
// an argument that is not an option.
[[nodiscard]] bool parse_options(const std::vector<std::string>& args,
                                 const std::vector<OptionSpec>& specs,
                                 std::vector<GivenOption>& out, std::string& error);

// A whole non-negative number; nullopt when `text` is not one or is above `max`.
[[nodiscard]] std::optional<long long> whole_number(std::string_view text, long long max);
// A finite decimal number with '.' whatever the locale.
[[nodiscard]] std::optional<double> decimal(std::string_view text);

// A secret from a file (first line; the file must not be readable by group or others) or an
// environment variable; false with `error` set.
[[nodiscard]] bool read_password_file(const std::string& path, std::string& out,
                                      std::string& error);

}  // namespace mw::plugin
