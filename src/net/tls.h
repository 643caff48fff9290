// TLS client settings, one SSL_CTX per distinct setting, and what a handshake tells us about the
// server's certificate. Verification is on by default: system trust store, TLS 1.2 or newer,
// the host name (or IP address) checked against the certificate.
#pragma once

#include <openssl/ssl.h>

#include <ctime>
#include <map>
#include <optional>
#include <string>

#include "util/handles.h"

namespace mw {

enum class TlsVersion { auto_min, tls12, tls13 };

// Resolved settings for one connection (global `set ssl options` merged with the rule's own).
struct TlsSettings {
  bool verify = true;
  bool allow_selfsigned = false;
  std::string ca_file;
  std::string ca_path;
  TlsVersion min_version = TlsVersion::auto_min;  // auto = TLS 1.2 or newer
  std::string server_name;                        // overrides the host for SNI and the name check
  [[nodiscard]] std::string cache_key() const;
};

// What the handshake showed, recorded even when the dialogue later fails.
struct CertInfo {
  time_t not_after = 0;
  int days_left = 0;
  std::string subject;
  std::string issuer;
  std::string sha256;        // hex fingerprint of the DER certificate
  std::string verify_error;  // empty when the chain and the name verified
  std::string tls_version;   // "TLSv1.3"
  std::string cipher;
};

class TlsContextCache {
 public:
  // Returns a context for these settings, or null with `error` set (unreadable CA file...).
  SSL_CTX* get(const TlsSettings& s, std::string& error);
  // Forgets every context (after a reload). Each SSL object holds a reference to its context,
  // so connections in flight are not affected.
  void clear() { contexts_.clear(); }

 private:
  std::map<std::string, SslCtxPtr> contexts_;
};

namespace tls {

// Prepares a client SSL object: SNI, the expected name or IP, a slot for verification errors.
[[nodiscard]] SslPtr new_client(SSL_CTX* ctx, const std::string& host, const TlsSettings& s,
                                std::string& error);
// After a completed handshake: the certificate facts and the first verification error.
[[nodiscard]] CertInfo describe_peer(SSL* ssl);
// The verification failure that settings `s` do not accept, or empty.
[[nodiscard]] std::string unaccepted_verify_error(SSL* ssl, const TlsSettings& s);
// The OpenSSL error queue as one line (and clears it).
[[nodiscard]] std::string drain_errors();

}  // namespace tls
}  // namespace mw
