#include "checks/registry.h"

#include <cstdio>
#include <cstdlib>

#include "checks/delivery/delivery.h"
#include "checks/port/port.h"
#include "checks/replication/replication.h"
#include "config/parser_impl.h"

namespace mw::checks {

// One row per kind. A new kind is a folder under src/checks/ and a row here.
const std::vector<Kind>& all() {
  using config::parsing::Parser;
  static const std::vector<Kind> kinds = {
      {.name = "host", .keyword = "host", .parse = [](Parser& p) { p.check_host(); }},
      {.name = "port", .run = port::run, .finish = port::finish, .labels = port::labels},
      {.name = "replication",
       .keyword = "replication",
       .parse = [](Parser& p) { p.check_replication(); },
       .run = replication::run,
       .labels = replication::labels,
       .rows = replication::rows},
      {.name = "delivery",
       .keyword = "delivery",
       .parse = [](Parser& p) { p.check_delivery(); },
       .run = delivery::run,
       .labels = delivery::labels,
       .rows = delivery::rows},
  };
  return kinds;
}

const Kind& get(std::string_view name) {
  for (const auto& k : all())
    if (k.name == name) return k;
  fprintf(stderr, "mailwarden: internal error: no check kind named '%.*s'\n",
          static_cast<int>(name.size()), name.data());
  abort();
}

const Kind* by_keyword(std::string_view keyword) {
  for (const auto& k : all())
    if (!k.keyword.empty() && k.keyword == keyword) return &k;
  return nullptr;
}

}  // namespace mw::checks
