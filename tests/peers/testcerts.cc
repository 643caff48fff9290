// Test certificates made with the OpenSSL 3 API; see testcerts.h.
#include "testcerts.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "handles.h"

namespace mwtest {
namespace {

using peerimpl::BignumPtr;
using peerimpl::BioPtr;
using peerimpl::PkeyPtr;
using peerimpl::UniqueFd;
using peerimpl::X509ExtPtr;
using peerimpl::X509Ptr;

constexpr long kHour = 60L * 60;
constexpr long kDay = 24 * kHour;
constexpr const char* kLocalSan = "DNS:localhost,IP:127.0.0.1";

struct CertSpec {
  std::string_view name;
  const char* cn;
  const char* san;  // nullptr for the CA
  long not_before;  // seconds relative to now
  long not_after;   // seconds relative to now
  bool ca_signed;   // false: self-signed
};

constexpr CertSpec kCaSpec = {"ca", "mailwarden test CA", nullptr, -kHour, 3650 * kDay, false};

constexpr CertSpec kLeafSpecs[] = {
    {"good", "localhost", kLocalSan, -kHour, 365 * kDay, true},
    {"wronghost", "wrong.example", "DNS:wrong.example", -kHour, 365 * kDay, true},
    {"expired", "localhost", kLocalSan, -30 * kDay, -kDay, true},
    {"expiring10", "localhost", kLocalSan, -kHour, 10 * kDay, true},
    {"selfsigned", "localhost", kLocalSan, -kHour, 365 * kDay, false},
};

constexpr bool specs_follow_leaf_names() {
  for (size_t i = 0; i < TestCerts::kLeafNames.size(); ++i) {
    if (kLeafSpecs[i].name != TestCerts::kLeafNames[i]) return false;
  }
  return std::size(kLeafSpecs) == TestCerts::kLeafNames.size();
}
static_assert(specs_follow_leaf_names(), "kLeafSpecs and TestCerts::kLeafNames disagree");

[[noreturn]] void fail(const std::string& what) {
  std::string detail;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    detail += detail.empty() ? ": " : "; ";
    detail += buf;
  }
  throw std::runtime_error("testcerts: " + what + detail);
}

PkeyPtr make_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EC P-256 key generation failed");
  return key;
}

void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) fail(std::string("extension ") + value);
}

void set_random_serial(X509* cert) {
  BignumPtr serial(BN_new());
  if (!serial || !BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert))) {
    fail("serial number");
  }
}

void set_subject(X509* cert, const char* cn) {
  X509_NAME* name = X509_get_subject_name(cert);
  auto text = [](const char* s) { return reinterpret_cast<const unsigned char*>(s); };
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, text("mailwarden tests"), -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, text(cn), -1, -1, 0)) {
    fail("subject name");
  }
}

void add_extensions(X509* cert, X509* issuer, const CertSpec& spec) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  if (!spec.san) {  // the CA
    add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(cert, &ctx, NID_subject_key_identifier, "hash");
    return;
  }
  add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert, &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  add_ext(cert, &ctx, NID_ext_key_usage, "serverAuth");
  add_ext(cert, &ctx, NID_subject_alt_name, spec.san);
  add_ext(cert, &ctx, NID_subject_key_identifier, "hash");
  add_ext(cert, &ctx, NID_authority_key_identifier, "keyid");
}

struct Issuer {
  X509* cert;
  EVP_PKEY* key;
};

// Makes the certificate described by spec for key; issuer == nullptr means self-signed.
X509Ptr make_cert(const CertSpec& spec, EVP_PKEY* key, const Issuer* issuer) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3)) fail("X509_new");
  set_random_serial(cert.get());
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after)) {
    fail("validity");
  }
  set_subject(cert.get(), spec.cn);
  X509* issuer_cert = issuer ? issuer->cert : cert.get();
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) ||
      !X509_set_pubkey(cert.get(), key)) {
    fail("issuer or public key");
  }
  add_extensions(cert.get(), issuer_cert, spec);
  if (X509_sign(cert.get(), issuer ? issuer->key : key, EVP_sha256()) <= 0) fail("signing");
  return cert;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string cert_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) fail("PEM certificate");
  return bio_text(bio.get());
}

std::string key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    fail("PEM key");
  }
  return bio_text(bio.get());
}

[[noreturn]] void fail_errno(const std::string& what, const std::string& path) {
  throw std::runtime_error("testcerts: " + what + " " + path + ": " + std::strerror(errno));
}

// Writes content to path through a temporary file and rename(), with the given mode.
void write_file(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd || ::fchmod(fd.get(), mode) != 0) fail_errno("cannot create", tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("cannot write", tmp);
    done += static_cast<size_t>(n);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail_errno("cannot rename to", path);
}

void save(const std::string& dir, const std::string& name, X509* cert, EVP_PKEY* key) {
  write_file(dir + "/" + name + ".key", key_pem(key), 0600);
  write_file(dir + "/" + name + ".pem", cert_pem(cert), 0644);
}

std::string absolute_dir(const std::string& dir) {
  std::string abs = std::filesystem::absolute(dir).lexically_normal().string();
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  return abs;
}

TestCerts paths_for(const std::string& dir) {
  TestCerts certs;
  certs.dir = absolute_dir(dir);
  certs.ca_file = certs.dir + "/ca.pem";
  return certs;
}

bool readable(const std::string& path) {
  return ::access(path.c_str(), R_OK) == 0;
}

bool leaf_exists(const TestCerts& certs, const std::string& name) {
  return readable(certs.cert(name)) && readable(certs.key(name));
}

void make_leaf(const TestCerts& certs, const CertSpec& spec, const Issuer& ca) {
  PkeyPtr key = make_key();
  X509Ptr cert = make_cert(spec, key.get(), spec.ca_signed ? &ca : nullptr);
  save(certs.dir, std::string(spec.name), cert.get(), key.get());
}

BioPtr open_for_reading(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) fail("cannot read " + path);
  return bio;
}

// The CA of an existing directory (ca.pem and ca.key), e.g. one made by mwharness/certs.py.
struct LoadedCa {
  X509Ptr cert;
  PkeyPtr key;
};

LoadedCa load_ca(const TestCerts& certs) {
  LoadedCa ca;
  ca.cert.reset(
      PEM_read_bio_X509(open_for_reading(certs.ca_file).get(), nullptr, nullptr, nullptr));
  ca.key.reset(PEM_read_bio_PrivateKey(open_for_reading(certs.dir + "/ca.key").get(), nullptr,
                                       nullptr, nullptr));
  if (!ca.cert || !ca.key || X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    fail("bad CA in " + certs.dir);
  }
  return ca;
}

}  // namespace

bool TestCerts::is_leaf_name(std::string_view name) {
  return std::find(kLeafNames.begin(), kLeafNames.end(), name) != kLeafNames.end();
}

std::string TestCerts::cert(const std::string& name) const {
  if (!is_leaf_name(name)) throw std::invalid_argument("testcerts: unknown certificate " + name);
  return dir + "/" + name + ".pem";
}

std::string TestCerts::key(const std::string& name) const {
  if (!is_leaf_name(name)) throw std::invalid_argument("testcerts: unknown certificate " + name);
  return dir + "/" + name + ".key";
}

TestCerts TestCerts::create(const std::string& dir) {
  TestCerts certs = paths_for(dir);
  std::error_code ec;
  std::filesystem::create_directories(certs.dir, ec);
  if (ec) throw std::runtime_error("testcerts: cannot create " + certs.dir + ": " + ec.message());

  PkeyPtr ca_key = make_key();
  X509Ptr ca_cert = make_cert(kCaSpec, ca_key.get(), nullptr);
  save(certs.dir, "ca", ca_cert.get(), ca_key.get());
  const Issuer ca{ca_cert.get(), ca_key.get()};
  for (const auto& spec : kLeafSpecs) make_leaf(certs, spec, ca);
  return certs;
}

TestCerts TestCerts::open_or_create(const std::string& dir) {
  TestCerts certs = paths_for(dir);
  if (!readable(certs.ca_file) || !readable(certs.dir + "/ca.key")) return create(dir);
  std::optional<LoadedCa> loaded;
  for (const auto& spec : kLeafSpecs) {
    if (leaf_exists(certs, std::string(spec.name))) continue;
    if (!loaded) loaded = load_ca(certs);
    make_leaf(certs, spec, Issuer{loaded->cert.get(), loaded->key.get()});
  }
  return certs;
}

}  // namespace mwtest
