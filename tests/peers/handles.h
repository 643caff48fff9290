// RAII owners for the libevent and OpenSSL handles used by the scripted peers.
// (Self-contained on purpose: the test peers do not depend on src/.)
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <memory>
#include <utility>

// Internal to the peers (namespace peerimpl), so that test code in namespace mwtest may define
// its own helpers with the same names.
namespace mwtest::peerimpl {

template <auto Fn>
struct FnDeleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};

template <typename T, auto Fn>
using Owned = std::unique_ptr<T, FnDeleter<Fn>>;

using EventBasePtr = Owned<event_base, event_base_free>;
using EventPtr = Owned<event, event_free>;
using BuffereventPtr = Owned<bufferevent, bufferevent_free>;
using ListenerPtr = Owned<evconnlistener, evconnlistener_free>;
using SslCtxPtr = Owned<SSL_CTX, SSL_CTX_free>;
using SslPtr = Owned<SSL, SSL_free>;
using X509Ptr = Owned<X509, X509_free>;
using X509ExtPtr = Owned<X509_EXTENSION, X509_EXTENSION_free>;
using PkeyPtr = Owned<EVP_PKEY, EVP_PKEY_free>;
using BioPtr = Owned<BIO, BIO_free_all>;
using BignumPtr = Owned<BIGNUM, BN_free>;

// A file descriptor closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace mwtest::peerimpl
