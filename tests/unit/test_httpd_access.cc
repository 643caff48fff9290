// Who may use the HTTP interface: nets and masks, htpasswd files and their hashes.
#include <CppUTest/TestHarness.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "http/access.h"
#include "http/from_config.h"
#include "support.h"

namespace {

sockaddr_storage peer(const char* text) {
  sockaddr_storage ss{};
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
  } else {
    a6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &a6->sin6_addr);
  }
  return ss;
}

bool allows(const std::vector<mw::http::Network>& nets, const char* who) {
  auto ss = peer(who);
  return mw::http::network_allows(nets, reinterpret_cast<sockaddr*>(&ss));
}

std::string write_file(const std::string& body, mode_t mode) {
  char path[] = "/tmp/mw-htpasswd-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return "";
  if (write(fd, body.data(), body.size()) != static_cast<ssize_t>(body.size())) return "";
  close(fd);
  chmod(path, mode);
  return path;
}

}  // namespace

TEST_GROUP(HttpdAccess){};

TEST(HttpdAccess, NetsMasksAndMappedAddresses) {
  std::string errors;
  auto cfg = mwtest::parse_text(
      "set httpd port 2812 allow 10.1.0.0/16 allow 192.168.7.0/255.255.255.128 allow 2001:db8::/32 "
      "allow 127.0.0.1\n",
      &errors);
  CHECK_TEXT(cfg != nullptr, errors.c_str());
  std::vector<std::string> warnings;
  auto nets =
      mw::http::resolve_networks(mw::http::from_config(cfg->settings.httpd).networks, warnings);
  CHECK(warnings.empty());
  CHECK(allows(nets, "10.1.255.3"));
  CHECK_FALSE(allows(nets, "10.2.0.1"));
  CHECK(allows(nets, "192.168.7.127"));
  CHECK_FALSE(allows(nets, "192.168.7.128"));
  CHECK(allows(nets, "2001:db8:ffff::1"));
  CHECK_FALSE(allows(nets, "2001:db9::1"));
  CHECK(allows(nets, "::ffff:127.0.0.1"));  // an IPv4 peer on an IPv6 listener
  CHECK_FALSE(allows(nets, "127.0.0.2"));
}

TEST(HttpdAccess, HashesOfEveryKind) {
  mw::http::FileUser apr{{"a", "", false}, "$apr1$saltsalt$X8iAgaDJSyuAMkpLmM5/H/", false};
  CHECK(mw::http::password_matches(apr, "secret pw"));
  CHECK_FALSE(mw::http::password_matches(apr, "secret pW"));
  STRCMP_EQUAL("$apr1$saltsalt$X8iAgaDJSyuAMkpLmM5/H/",
               mw::http::apr1_crypt("secret pw", "saltsalt").c_str());
  mw::http::FileUser md5{{"m", "", false}, "$1$abc$Kb85XxsXB.VXinPhbS4431", false};
  CHECK(mw::http::password_matches(md5, "pw"));
  CHECK_FALSE(mw::http::password_matches(md5, "pw "));
  mw::http::FileUser clear{{"c", "", false}, "plain", true};
  CHECK(mw::http::password_matches(clear, "plain"));
  CHECK_FALSE(mw::http::password_matches(clear, "plai"));
  mw::http::FileUser broken{{"b", "", false}, "*", false};
  CHECK_FALSE(mw::http::password_matches(broken, ""));
}

TEST(HttpdAccess, HtpasswdFilesBoundedAndChecked) {
  std::string good = write_file("# comment\nann:$1$abc$Kb85XxsXB.VXinPhbS4431\nbob:bogus\n", 0600);
  mw::http::Htpasswd h;
  h.hash = mw::http::Htpasswd::Hash::md5;
  h.path = good;
  std::vector<mw::http::FileUser> users;
  std::vector<std::string> warnings;
  std::string error;
  CHECK_TEXT(mw::http::load_htpasswd({h}, users, warnings, error), error.c_str());
  LONGS_EQUAL(1, users.size());
  STRCMP_EQUAL("ann", users[0].user.name.c_str());
  LONGS_EQUAL(1, warnings.size());
  STRCMP_EQUAL((good + ":3: the hash of user 'bob' is not one this file's kind can check; the "
                       "user is left out")
                   .c_str(),
               warnings[0].c_str());

  std::string bad = write_file("ann:$1$abc$Kb85XxsXB.VXinPhbS4431\nno colon here\n", 0600);
  h.path = bad;
  CHECK_FALSE(mw::http::load_htpasswd({h}, users, warnings, error));
  STRCMP_EQUAL((bad + ":2: expected USER:HASH").c_str(), error.c_str());

  std::string loose = write_file("ann:plain\n", 0640);
  h.path = loose;
  h.hash = mw::http::Htpasswd::Hash::cleartext;
  CHECK_FALSE(mw::http::load_htpasswd({h}, users, warnings, error));
  STRCMP_EQUAL(("the htpasswd file " + loose +
                " is accessible by group or others (mode 0640); run: chmod 600 " + loose)
                   .c_str(),
               error.c_str());

  std::string big = write_file(std::string(mw::http::kMaxHtpasswdBytes + 1, 'x'), 0600);
  h.path = big;
  CHECK_FALSE(mw::http::load_htpasswd({h}, users, warnings, error));
  STRCMP_EQUAL(("the htpasswd file " + big + " is larger than 1 MB").c_str(), error.c_str());
  for (const auto& p : {good, bad, loose, big}) unlink(p.c_str());
}
