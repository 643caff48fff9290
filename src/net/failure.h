// How a test fails: a class an administrator can act on, a message, and the server's line.
#pragma once

#include <stdexcept>
#include <string>

namespace mw {

enum class FailureClass {
  none,
  connect,   // no TCP connection (refused, unreachable, DNS)
  timeout,   // the server went silent, or the test ran past its deadline
  tls,       // handshake failed, certificate not trusted, wrong name
  protocol,  // the server broke the protocol (bad greeting, garbage, closed early, line too long)
  auth,      // the login was refused
  rejected,  // the server refused service (BYE greeting, 4xx/5xx where success was required)
  missing_feature,  // the server does not offer what the rule needs (STARTTLS, an AUTH mechanism)
  certificate,      // certificate too close to expiry or not the expected one
  responsetime,     // the dialogue worked but took longer than the rule allows
  content,   // a delivery/replication check found the data wrong (missing, altered, out of sync)
  internal,  // mailwarden could not run the test (resources, a bug)
};

[[nodiscard]] const char* failure_class_name(FailureClass c);
// The class with that name, or `unknown` when no class has it.
[[nodiscard]] FailureClass failure_class_from_name(const std::string& name, FailureClass unknown);

// Thrown inside protocol code; the engine's base turns it into the test result.
class ProbeError : public std::runtime_error {
 public:
  ProbeError(FailureClass cls, std::string message, std::string server_line = {})
      : std::runtime_error(message), cls_(cls), server_line_(std::move(server_line)) {}
  [[nodiscard]] FailureClass cls() const { return cls_; }
  [[nodiscard]] const std::string& server_line() const { return server_line_; }

 private:
  FailureClass cls_;
  std::string server_line_;
};

}  // namespace mw
