// The Nagios plugins mailwarden stands in for when it is called by their name (a symlink in
// $(libdir)/mailwarden/plugins/): one row per plugin, one file per family.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mw::plugin {

struct DropIn {
  std::string_view name;  // argv[0]'s base name
  int (*run)(std::string_view name, const std::vector<std::string>& args);
};

[[nodiscard]] const std::vector<DropIn>& dropins();

// The exit code when `argv0`'s base name is a drop-in's, else nullopt (mailwarden itself).
[[nodiscard]] std::optional<int> run_dropin(const char* argv0,
                                            const std::vector<std::string>& args);

// mail_plugins.cc: check_imap, check_simap, check_pop, check_spop, check_smtp.
int run_mail_dropin(std::string_view name, const std::vector<std::string>& args);
// cyrus_replication.cc: check_cyrus_replication.
int run_cyrus_replication_dropin(std::string_view name, const std::vector<std::string>& args);
// delivery.cc: check_delivery.
int run_delivery_dropin(std::string_view name, const std::vector<std::string>& args);

}  // namespace mw::plugin
