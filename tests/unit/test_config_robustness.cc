// Bad input never crashes the parser: every good control file of the parser's cases is cut,
// spliced and sprinkled with bytes (a fixed seed, so a failure replays), and each result must
// be either a model or diagnostics in FILE:LINE:COL form.
#include <CppUTest/TestHarness.h>
#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "config/parser.h"
#include "support.h"

namespace {

std::vector<std::string> good_cases() {
  std::vector<std::string> out;
  std::string dir = mwtest::srcdir() + "/tests/unit/config";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("good-", 0) == 0 && name.size() > 3 &&
          name.compare(name.size() - 3, 3, ".rc") == 0) {
        std::ifstream in(dir + "/" + name);
        std::stringstream ss;
        ss << in.rdbuf();
        out.push_back(ss.str());
      }
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string mutate(const std::string& text, std::mt19937& rng) {
  static const std::string noise =
      "{}\",:#\\'\n\t =<>!()0123456789abcdefghijklmnopqrstuvwxyz\x01\xff";
  std::string s = text;
  int edits = 1 + static_cast<int>(rng() % 8);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    size_t at = rng() % s.size();
    switch (rng() % 4) {
      case 0:
        s.erase(at, 1 + rng() % 12);
        break;  // cut
      case 1:
        s.insert(at, 1, noise[rng() % noise.size()]);
        break;  // sprinkle
      case 2:
        s[at] = noise[rng() % noise.size()];
        break;  // replace
      case 3:
        s.insert(at, s.substr(rng() % s.size(), rng() % 40));
        break;  // splice
    }
  }
  return s;
}

}  // namespace

TEST_GROUP(ConfigRobustness){};

TEST(ConfigRobustness, MutatedControlFilesGiveAModelOrLocatedErrors) {
  auto cases = good_cases();
  CHECK_TEXT(!cases.empty(), "no good-*.rc cases found");
  std::mt19937 rng(20261125);
  const std::regex located(R"(^.+:[0-9]+:[0-9]+: .+$)");
  std::string failures;
  int runs = 0;
  for (int round = 0; round < 1500; ++round) {
    std::string text = mutate(cases[static_cast<size_t>(round) % cases.size()], rng);
    std::string path = mwtest::write_file("robust.rc", text);
    auto parsed = mw::config::parse_file(path);
    ++runs;
    if (parsed.config) continue;
    if (parsed.diagnostics.empty())
      failures += "\nround " + std::to_string(round) + ": no model and no error";
    for (const auto& d : parsed.diagnostics.items()) {
      std::string line = d.str();
      if (!std::regex_match(line, located))
        failures += "\nround " + std::to_string(round) + ": not FILE:LINE:COL: " + line;
    }
  }
  LONGS_EQUAL(1500, runs);
  if (!failures.empty()) FAIL(failures.substr(0, 4000).c_str());
}
