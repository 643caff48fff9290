#include "net/failure.h"

namespace mw {

const char* failure_class_name(FailureClass c) {
  switch (c) {
    case FailureClass::none:
      return "none";
    case FailureClass::connect:
      return "connect";
    case FailureClass::timeout:
      return "timeout";
    case FailureClass::tls:
      return "tls";
    case FailureClass::protocol:
      return "protocol";
    case FailureClass::auth:
      return "auth";
    case FailureClass::rejected:
      return "rejected";
    case FailureClass::missing_feature:
      return "missing-feature";
    case FailureClass::certificate:
      return "certificate";
    case FailureClass::responsetime:
      return "responsetime";
    case FailureClass::content:
      return "content";
    case FailureClass::internal:
      return "internal";
    case FailureClass::nonexist:
      return "nonexist";
    case FailureClass::resource:
      return "resource";
    case FailureClass::checksum:
      return "checksum";
    case FailureClass::permission:
      return "permission";
    case FailureClass::uid:
      return "uid";
    case FailureClass::gid:
      return "gid";
    case FailureClass::timestamp:
      return "timestamp";
    case FailureClass::size:
      return "size";
    case FailureClass::status:
      return "status";
    case FailureClass::exec:
      return "exec";
    case FailureClass::instance:
      return "instance";
    case FailureClass::fsflags:
      return "fsflags";
    case FailureClass::pid:
      return "pid";
    case FailureClass::ppid:
      return "ppid";
    case FailureClass::uptime:
      return "uptime";
  }
  return "unknown";
}

FailureClass failure_class_from_name(const std::string& name, FailureClass unknown) {
  for (int i = 0; i <= static_cast<int>(kLastFailureClass); ++i)
    if (name == failure_class_name(static_cast<FailureClass>(i)))
      return static_cast<FailureClass>(i);
  return unknown;
}

}  // namespace mw
