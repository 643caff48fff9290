#include "checks/ping/ping.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "net/connection.h"
#include "net/failure.h"
#include "util/clock.h"
#include "util/handles.h"
#include "util/log.h"

namespace mw::checks::ping {
namespace {

constexpr int64_t kIntervalMs = 200;
constexpr size_t kMaxPacket = 65536;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// An ICMP socket for `family`: a datagram one if the kernel lets this group have it, else raw.
int open_socket(int family, bool& raw, std::string& why) {
  int proto = family == AF_INET ? static_cast<int>(IPPROTO_ICMP) : static_cast<int>(IPPROTO_ICMPV6);
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd >= 0) {
    raw = false;
    return fd;
  }
  why = std::string("datagram: ") + strerror(errno);
  fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd >= 0) {
    raw = true;
    return fd;
  }
  why += std::string("; raw: ") + strerror(errno);
  return -1;
}

uint16_t checksum(const unsigned char* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len % 2) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// An echo request: type, code, checksum, identifier, sequence, then `size` payload bytes.
std::vector<unsigned char> echo_request(int family, uint16_t id, uint16_t seq, int size) {
  std::vector<unsigned char> p(8 + static_cast<size_t>(size));
  p[0] = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
  p[4] = static_cast<unsigned char>(id >> 8);
  p[5] = static_cast<unsigned char>(id & 0xff);
  p[6] = static_cast<unsigned char>(seq >> 8);
  p[7] = static_cast<unsigned char>(seq & 0xff);
  for (size_t i = 8; i < p.size(); ++i) p[i] = static_cast<unsigned char>('m' + i % 13);
  if (family == AF_INET) {  // ICMPv6's checksum is the kernel's (it covers a pseudo-header)
    uint16_t sum = checksum(p.data(), p.size());
    p[2] = static_cast<unsigned char>(sum >> 8);
    p[3] = static_cast<unsigned char>(sum & 0xff);
  }
  return p;
}

// The sequence number of an echo reply meant for us, or -1. A raw IPv4 socket sees the IP
// header and every ICMP packet of the host (our own requests on loopback too); a datagram
// socket sees only replies to itself, with the identifier the kernel chose.
int reply_sequence(int family, bool raw, uint16_t id, const unsigned char* p, size_t n) {
  if (family == AF_INET && raw) {
    if (n < 20) return -1;
    size_t header = static_cast<size_t>(p[0] & 0x0f) * 4;
    if (header < 20 || n < header) return -1;
    p += header;
    n -= header;
  }
  if (n < 8) return -1;
  int want = family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY;
  if (p[0] != want) return -1;
  if (raw && (p[4] << 8 | p[5]) != id) return -1;
  return p[6] << 8 | p[7];
}

void on_readable(evutil_socket_t, short, void* arg) {
  static_cast<Waiter*>(arg)->notify();
}

}  // namespace

Task<void> run(RunContext& ctx) {
  const auto& pc = *ctx.check().as<config::PingCheck>();
  const int64_t timeout_ms = ctx.check().timeout_ms;
  Endpoint ep;
  ep.host = pc.host;
  ep.family = pc.family;
  auto addresses = co_await resolve_addresses(ctx.io(), ctx.scope(), ep, timeout_ms);
  if (addresses.empty()) throw ProbeError(FailureClass::connect, "no address for " + pc.host);
  const ResolvedAddress& to = addresses.front();
  const int family = to.addr.ss_family;
  char shown[INET6_ADDRSTRLEN] = "?";
  const void* raw_addr =
      family == AF_INET
          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&to.addr)->sin_addr)
          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&to.addr)->sin6_addr);
  inet_ntop(family, raw_addr, shown, sizeof shown);

  bool raw = false;
  std::string why;
  Fd sock;
  sock.fd = open_socket(family, raw, why);
  if (sock.fd < 0)
    throw ProbeError(FailureClass::internal,
                     "cannot open an ICMP socket (" + why +
                         "): unprivileged ICMP needs this group in net.ipv4.ping_group_range, "
                         "a raw socket needs root or CAP_NET_RAW");
  log::debug("ping %s: %s", shown,
             raw ? "raw ICMP socket (root or CAP_NET_RAW)"
                 : "unprivileged ICMP datagram socket (net.ipv4.ping_group_range)");

  Waiter waiter(ctx.scope());
  EventPtr ev(event_new(ctx.io().base, sock.fd, EV_READ | EV_PERSIST, &on_readable, &waiter));
  if (!ev || event_add(ev.get(), nullptr) != 0)
    throw ProbeError(FailureClass::internal, "cannot watch the ICMP socket");

  const uint16_t id = static_cast<uint16_t>(getpid() ^ reinterpret_cast<uintptr_t>(&ctx));
  std::map<int, int64_t> sent_at;  // sequence -> when (us)
  std::vector<double> rtts;
  int sent = 0;
  int64_t next_send = clock::now_us();
  int64_t last_send = next_send;
  std::vector<unsigned char> buf(kMaxPacket);
  for (;;) {
    int64_t now = clock::now_us();
    if (sent < pc.count && now >= next_send) {
      auto packet = echo_request(family, id, static_cast<uint16_t>(sent), pc.size);
      ssize_t w = sendto(sock.fd, packet.data(), packet.size(), 0,
                         reinterpret_cast<const sockaddr*>(&to.addr), to.len);
      if (w < 0)
        throw ProbeError(FailureClass::connect, "cannot send an ICMP echo request to " +
                                                    std::string(shown) + ": " + strerror(errno));
      sent_at[sent] = now;
      ++sent;
      last_send = now;
      next_send = now + kIntervalMs * 1000;
      continue;
    }
    if (rtts.size() == static_cast<size_t>(pc.count)) break;
    int64_t end = last_send + timeout_ms * 1000;
    if (sent == pc.count && now >= end) break;
    int64_t wake = sent < pc.count ? std::min(next_send, end) : end;
    Wake why_woke = co_await waiter.wait(std::max<int64_t>(1, (wake - now + 999) / 1000));
    if (why_woke == Wake::timed_out) continue;
    for (int n = 0; n < 64; ++n) {  // what has arrived, bounded per wake-up
      ssize_t r = recv(sock.fd, buf.data(), buf.size(), 0);
      if (r <= 0) break;
      int seq = reply_sequence(family, raw, id, buf.data(), static_cast<size_t>(r));
      auto it = sent_at.find(seq);
      if (it == sent_at.end()) continue;
      double ms = static_cast<double>(clock::now_us() - it->second) / 1000.0;
      rtts.push_back(ms);
      log::debug("ping %s: reply %d in %.3f ms", shown, seq, ms);
      sent_at.erase(it);
    }
  }
  double loss = 100.0 * static_cast<double>(pc.count - static_cast<int>(rtts.size())) /
                static_cast<double>(pc.count);
  ctx.metrics["loss_percent"] = std::round(loss * 10) / 10;
  ctx.details["sent"] = pc.count;
  ctx.details["received"] = rtts.size();
  ctx.details["socket"] = raw ? "raw" : "datagram";
  if (rtts.empty())
    throw ProbeError(FailureClass::timeout, "no ICMP echo reply from " + std::string(shown) +
                                                " within " + std::to_string(timeout_ms / 1000) +
                                                " s (" + std::to_string(pc.count) + " sent)");
  double sum = 0;
  for (double r : rtts) sum += r;
  double mean = std::round(sum / static_cast<double>(rtts.size()) * 1000) / 1000;
  ctx.metrics["ping_ms"] = mean;
}

std::pair<std::string, std::string> labels(const config::Check& check) {
  const auto& pc = *check.as<config::PingCheck>();
  return {"icmp", pc.host};
}

void rows(const CheckResult& r, DetailRows& out) {
  if (!r.details.is_object()) return;
  auto sent = r.details.find("sent");
  auto received = r.details.find("received");
  if (sent != r.details.end() && received != r.details.end() && sent->is_number() &&
      received->is_number())
    out.emplace_back("echo replies", std::to_string(received->get<int>()) + " of " +
                                         std::to_string(sent->get<int>()));
  if (auto it = r.metrics.find("ping_ms"); it != r.metrics.end()) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f ms", it->second);
    out.emplace_back("round trip", buf);
  }
}

}  // namespace mw::checks::ping
