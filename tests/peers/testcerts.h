// Test certificates made in-process with the OpenSSL 3 API (EC P-256 keys).
//
// TestCerts::create(dir) writes into dir (created if needed):
//   ca.pem, ca.key                  test CA (CN=mailwarden test CA), valid 10 years
//   good.pem, good.key              CN=localhost, SAN DNS:localhost + IP:127.0.0.1, CA-signed, 1
//   year wronghost.pem, wronghost.key    CN=wrong.example, SAN DNS:wrong.example only, CA-signed
//   expired.pem, expired.key        like good, valid from 30 days ago until 1 day ago
//   expiring10.pem, expiring10.key  like good, notAfter = now + 10 days
//   selfsigned.pem, selfsigned.key  like good, but self-signed (not CA-signed)
// Keys are mode 0600, certificates 0644; every file is written to a temporary name and renamed,
// so a concurrent reader never sees half a file.  The names match tests/harness/mwharness/certs.py.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace mwtest {

struct TestCerts {
  std::string dir;
  std::string ca_file;  // dir + "/ca.pem": the trust anchor a client under test should load

  // Paths of a leaf's certificate (dir/NAME.pem) and key (dir/NAME.key); NAME must be one of
  // kLeafNames, else std::invalid_argument.
  std::string cert(const std::string& name) const;
  std::string key(const std::string& name) const;

  // Always makes a fresh CA and fresh leaves (so validity windows are counted from now).
  static TestCerts create(const std::string& dir);
  // Reuses what dir holds: with no CA (ca.pem + ca.key) it is create(dir); otherwise each
  // missing leaf is made and signed by the existing CA (so a directory made by
  // mwharness/certs.py, which has no wronghost, gains one without a new CA).  Existing files are
  // not checked for staleness: run create() (mw-peer --make-certs) once per test run.
  static TestCerts open_or_create(const std::string& dir);

  // The leaf certificates, by name.  (Constants, not function-local statics: CppUTest's leak
  // checker would count a lazily built container as a leak of the first test that used it.)
  static constexpr std::array<std::string_view, 5> kLeafNames = {"good", "wronghost", "expired",
                                                                 "expiring10", "selfsigned"};
  static bool is_leaf_name(std::string_view name);
};

}  // namespace mwtest
