// Where a test connects: a host and port (optionally one address family) or a unix socket.
#pragma once

#include <cstdint>
#include <string>

namespace mw {

enum class AddressFamily { any, ipv4, ipv6 };

struct Endpoint {
  std::string host;  // name or address literal
  uint16_t port = 0;
  AddressFamily family = AddressFamily::any;
  std::string unix_path;  // when set, host/port are unused

  [[nodiscard]] std::string describe() const {
    if (!unix_path.empty()) return unix_path;
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
  }
};

}  // namespace mw
