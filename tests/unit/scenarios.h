// Tables of port tests against scripted peers. Each row names a script in tests/peers/scripts,
// the rest of the port test, and the exact outcome: status, failure class and message ({port}
// is the peer's port, {any} stands for any text). A row that passes must also have followed its
// script to the letter.
#pragma once

#include "tests/peers/peer.h"  // before CppUTest: its new macros break STL headers

#include <cstdint>
#include <string>

#include "engine/result.h"

namespace mwtest {

struct Scenario {
  const char* script;  // "" = nothing listens on the port
  const char* rule;    // what follows "if failed port N"
  bool ok;
  const char* cls;
  const char* message;
};

// The test certificates every scenario's peer uses (CA-signed, expired, self-signed, ...).
const TestCerts& scenario_certs();

// A port nothing listens on.
uint16_t free_port();

// Runs one port test against `script`; `port` is the peer's, `config_errors` says why the control
// text was refused, `peer_errors` what the peer saw go wrong.
mw::CheckResult run_rule(const std::string& script, const std::string& rule, uint16_t& port,
                         std::string& config_errors, std::string& peer_errors);

// Runs every row; returns the mismatches, one paragraph each (empty: all as expected), and the
// number of rows that ran.
std::string run_scenarios(const Scenario* begin, const Scenario* end, int& ran);

}  // namespace mwtest
