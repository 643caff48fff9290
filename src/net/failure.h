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
  // The local service types (process, program, file, filesystem, system), named as monit
  // names its events so that `alert ... on { checksum, resource }` reads unchanged.
  nonexist,    // the process, file or filesystem is not there (or its pidfile is unusable)
  resource,    // cpu, memory, children, load, space, inodes past a limit
  checksum,    // a file's checksum differs from the expected one, or changed
  permission,  // a file's mode is not the expected one
  uid,         // a file's owner is not the expected one
  gid,         // a file's group is not the expected one
  timestamp,   // a file's modification time is too old, or changed
  size,        // a file's size is past a limit, or changed
  status,      // a program's exit status is past a limit, or changed
  exec,        // a program or a start/stop program could not run, failed, or timed out
  instance,    // mailwarden itself started, stopped or reloaded
  fsflags,     // a filesystem's mount flags changed (a read-only remount)
  pid,         // a process's pid changed
  ppid,        // a process's parent pid changed
  uptime,      // a process's or the system's uptime is below a limit
};
constexpr FailureClass kLastFailureClass = FailureClass::uptime;

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
