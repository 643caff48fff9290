#include "config_cases.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "config/parser.h"
#include "support.h"

namespace mwtest {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Copies the case folder into a private directory: control files with passwords must be 0600,
// and "loose-*" cases are made group-readable on purpose.
void copy_tree(const std::string& from, const std::string& to) {
  mkdir(to.c_str(), 0700);
  DIR* d = opendir(from.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string src = from + "/" + name, dst = to + "/" + name;
    struct stat st;
    if (stat(src.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      copy_tree(src, dst);
      continue;
    }
    std::ofstream(dst) << slurp(src);
    chmod(dst.c_str(), name.rfind("loose-", 0) == 0 ? 0644 : 0600);
  }
  closedir(d);
}

std::vector<std::string> case_names(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 3 && name.compare(name.size() - 3, 3, ".rc") == 0)
      out.push_back(name.substr(0, name.size() - 3));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

std::string run_case(const std::string& dir, const std::string& name, ModelDump dump) {
  auto parsed = mw::config::parse_file(dir + "/" + name + ".rc");
  std::string out;
  if (parsed.config) {
    for (const auto& w : parsed.config->warnings) out += w + "\n";
    out += "Control file syntax OK\n" + dump(*parsed.config);
  } else {
    for (const auto& d : parsed.diagnostics.items()) out += d.str() + "\n";
  }
  return replace_all(out, dir + "/", "");
}

}  // namespace

std::string check_config_cases(const std::string& folder, ModelDump dump, size_t& cases) {
  std::string suffix = folder.empty() ? "" : "/" + folder;
  std::string source = srcdir() + "/tests/unit/config" + suffix;
  std::string work = tmpdir() + "/config-cases" + (folder.empty() ? "" : "-" + folder);
  copy_tree(source, work);
  auto names = case_names(work);
  cases = names.size();
  bool update = getenv("MW_UPDATE_EXPECTED") != nullptr;
  std::string failures;
  for (const auto& name : names) {
    std::string got = run_case(work, name, dump);
    std::string expected_path = source + "/" + name + ".expected";
    if (update) {
      std::ofstream(expected_path) << got;
      continue;
    }
    std::string expected = slurp(expected_path);
    if (got != expected) failures += "\n--- " + name + ".expected\n" + expected + "+++ got\n" + got;
  }
  return failures;
}

}  // namespace mwtest
