#include "checks/registry.h"

#include <cstdio>
#include <cstdlib>

#include "checks/delivery/delivery.h"
#include "checks/director/director.h"
#include "checks/file/file.h"
#include "checks/filesystem/filesystem.h"
#include "checks/ping/ping.h"
#include "checks/port/port.h"
#include "checks/process/process.h"
#include "checks/program/program.h"
#include "checks/replication/replication.h"
#include "checks/system/system.h"
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
      {.name = "director",
       .keyword = "director",
       .parse = [](Parser& p) { p.check_director(); },
       .run = director::run,
       .labels = director::labels,
       .rows = director::rows},
      // monit's local service types (src/config/parse_local.cc reads them).
      {.name = "process",
       .keyword = "process",
       .parse = [](Parser& p) { p.check_process(); },
       .run = process::run,
       .labels = process::labels,
       .rows = process::rows},
      {.name = "program",
       .keyword = "program",
       .parse = [](Parser& p) { p.check_program(); },
       .run = program::run,
       .labels = program::labels,
       .rows = program::rows},
      {.name = "file",
       .keyword = "file",
       .parse = [](Parser& p) { p.check_file(); },
       .run = file::run,
       .labels = file::labels,
       .rows = file::rows},
      {.name = "directory",
       .keyword = "directory",
       .parse = [](Parser& p) { p.check_directory(); },
       .run = file::run,
       .labels = file::labels,
       .rows = file::rows},
      {.name = "fifo",
       .keyword = "fifo",
       .parse = [](Parser& p) { p.check_fifo(); },
       .run = file::run,
       .labels = file::labels,
       .rows = file::rows},
      {.name = "filesystem",
       .keyword = "filesystem",
       .parse = [](Parser& p) { p.check_filesystem(); },
       .run = filesystem::run,
       .labels = filesystem::labels,
       .rows = filesystem::rows},
      {.name = "device",
       .keyword = "device",
       .parse = [](Parser& p) { p.check_filesystem(); },
       .run = filesystem::run,
       .labels = filesystem::labels,
       .rows = filesystem::rows},
      {.name = "system",
       .keyword = "system",
       .parse = [](Parser& p) { p.check_system(); },
       .run = system::run,
       .labels = system::labels,
       .rows = system::rows},
      {.name = "ping", .run = ping::run, .labels = ping::labels, .rows = ping::rows},
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
