#include "http/server_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "net/tls.h"

namespace mw::http {
namespace {

// A self-signed client certificate is accepted when "selfsigned: allow" says so; the chain of
// any other must verify against the client CA file.
int accept_selfsigned_clients(int ok, X509_STORE_CTX* store) {
  if (ok) return 1;
  int err = X509_STORE_CTX_get_error(store);
  return err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
         err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
}

bool key_file_private(const std::string& path, std::string& error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    error = "cannot read the TLS key file " + path + ": " + std::strerror(errno);
    return false;
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    error = "the TLS key file " + path + " is accessible by group or others (mode " + mode +
            "); run: chmod 600 " + path;
    return false;
  }
  return true;
}

}  // namespace

SslCtxPtr make_server_context(const ServerTls& t, std::string& error) {
  const std::string& key = t.key_file.empty() ? t.cert_file : t.key_file;
  if (!key_file_private(key, error)) return nullptr;
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    error = "cannot create a TLS context: " + tls::drain_errors();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), t.cert_file.c_str()) != 1) {
    error = "cannot load the certificate " + t.cert_file + ": " + tls::drain_errors();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load the private key " + key + ": " + tls::drain_errors();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    error = "the private key " + key + " does not match the certificate " + t.cert_file;
    return nullptr;
  }
  if (!t.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), t.client_ca.c_str(), nullptr) != 1) {
      error = "cannot load the client CA file " + t.client_ca + ": " + tls::drain_errors();
      return nullptr;
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(t.client_ca.c_str()))
      SSL_CTX_set_client_CA_list(ctx.get(), names);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       t.allow_selfsigned_clients ? accept_selfsigned_clients : nullptr);
    static const unsigned char sid[] = "mailwarden-httpd";
    SSL_CTX_set_session_id_context(ctx.get(), sid, sizeof sid - 1);
  }
  return ctx;
}

std::string pem_fingerprint(const std::string& path, std::string& error) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "re"), fclose);
  if (!f) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return "";
  }
  X509Ptr cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    error = "no certificate in " + path;
    (void)tls::drain_errors();
    return "";
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &len) != 1) {
    error = "cannot digest the certificate of " + path;
    return "";
  }
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

}  // namespace mw::http
