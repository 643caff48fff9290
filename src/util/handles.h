// RAII owners for every C handle mailwarden uses (libevent, OpenSSL, PCRE2).
#pragma once

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unistd.h>

#include <memory>
#include <utility>

namespace mw {

template <auto Fn>
struct FnDeleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};

using EventBasePtr = std::unique_ptr<event_base, FnDeleter<event_base_free>>;
using EventPtr = std::unique_ptr<event, FnDeleter<event_free>>;
using BuffereventPtr = std::unique_ptr<bufferevent, FnDeleter<bufferevent_free>>;
using EvconnListenerPtr = std::unique_ptr<evconnlistener, FnDeleter<evconnlistener_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, FnDeleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, FnDeleter<SSL_free>>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, FnDeleter<SSL_SESSION_free>>;
using X509Ptr = std::unique_ptr<X509, FnDeleter<X509_free>>;
using Pcre2CodePtr = std::unique_ptr<pcre2_code, FnDeleter<pcre2_code_free>>;
using Pcre2MatchDataPtr = std::unique_ptr<pcre2_match_data, FnDeleter<pcre2_match_data_free>>;

inline void free_evdns_base(evdns_base* b) {
  evdns_base_free(b, 1);
}
using EvdnsBasePtr = std::unique_ptr<evdns_base, FnDeleter<free_evdns_base>>;

// A file descriptor closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace mw
