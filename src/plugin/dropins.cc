#include "plugin/dropins.h"

#include "util/log.h"

namespace mw::plugin {

const std::vector<DropIn>& dropins() {
  static const std::vector<DropIn> rows = {
      {"check_imap", &run_mail_dropin},
      {"check_simap", &run_mail_dropin},
      {"check_pop", &run_mail_dropin},
      {"check_spop", &run_mail_dropin},
      {"check_smtp", &run_mail_dropin},
      {"check_cyrus_replication", &run_cyrus_replication_dropin},
      {"check_delivery", &run_delivery_dropin},
  };
  return rows;
}

std::optional<int> run_dropin(const char* argv0, const std::vector<std::string>& args) {
  std::string_view name = argv0 ? argv0 : "";
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  for (const auto& d : dropins()) {
    if (d.name != name) continue;
    // A plugin's stdout belongs to Nagios: mailwarden's own log lines stay out of it.
    log::set_verbose(false);
    return d.run(name, args);
  }
  return std::nullopt;
}

}  // namespace mw::plugin
