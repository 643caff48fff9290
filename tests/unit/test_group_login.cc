// "allow @group": group membership, the shadow file check, the cache of verified passwords, the
// failure delay, and PAM rounds on a private configuration (pam_permit, pam_deny).
#include <CppUTest/TestHarness.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "http/group_login.h"
#include "support.h"
#include "util/accounts.h"
#include "util/strings.h"

namespace {

std::string root_group() {
  const passwd* pw = getpwuid(0);
  const group* gr = pw ? getgrgid(pw->pw_gid) : nullptr;
  return gr ? gr->gr_name : "root";
}

// A PAM configuration directory with one service, "mailwarden", that answers with `module`.
std::string pam_dir(const std::string& module) {
  char path[] = "/tmp/mw-pam-XXXXXX";
  if (!mkdtemp(path)) return "";
  std::ofstream(std::string(path) + "/mailwarden")
      << "auth required " << module << "\naccount required " << module << "\n";
  return path;
}

void remove_pam_dir(const std::string& dir) {
  (void)unlink((dir + "/mailwarden").c_str());
  (void)rmdir(dir.c_str());
}

}  // namespace

TEST_GROUP(GroupLogin){};

TEST(GroupLogin, MembershipByPrimaryAndSupplementaryGroup) {
  // root's primary group, asked among others; a group it is not in; a user who does not exist.
  std::string primary = root_group();
  auto found = mw::accounts::member_groups("root", {"no-such-group-mw", primary});
  LONGS_EQUAL(1, found.size());
  STRCMP_EQUAL(primary.c_str(), found[0].c_str());
  CHECK(mw::accounts::member_groups("no-such-user-mw", {primary}).empty());
  CHECK(mw::accounts::member_groups("", {primary}).empty());
  CHECK(mw::accounts::group_exists(primary));
  CHECK_FALSE(mw::accounts::group_exists("no-such-group-mw"));
  // A supplementary group: the first group in /etc/group that lists a member.
  setgrent();
  std::string user, name;
  while (const group* gr = getgrent()) {
    if (gr->gr_mem && gr->gr_mem[0] && getpwnam(gr->gr_mem[0]) &&
        getpwnam(gr->gr_mem[0])->pw_gid != gr->gr_gid) {
      user = gr->gr_mem[0];
      name = gr->gr_name;
      break;
    }
  }
  endgrent();
  if (!user.empty()) {
    found = mw::accounts::member_groups(user, {name});
    LONGS_EQUAL(1, found.size());
    STRCMP_EQUAL(name.c_str(), found[0].c_str());
  }
}

TEST(GroupLogin, ShadowReadableByOwnerGroupOrRoot) {
  char path[] = "/tmp/mw-shadow-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  CHECK(chown(path, 0, 4242) == 0);
  CHECK(chmod(path, 0640) == 0);
  CHECK(mw::accounts::can_read_shadow(0, 0, "", path));
  CHECK(mw::accounts::can_read_shadow(4343, 4242, "", path));  // by its primary group
  CHECK_FALSE(mw::accounts::can_read_shadow(4343, 4343, "", path));
  CHECK(chmod(path, 0600) == 0);
  CHECK_FALSE(mw::accounts::can_read_shadow(4343, 4242, "", path));
  CHECK(chmod(path, 0644) == 0);
  CHECK(mw::accounts::can_read_shadow(4343, 4343, "", path));
  unlink(path);
  CHECK(mw::accounts::can_read_shadow(4343, 4343, "", path));  // no shadow file: nothing to read
}

TEST(GroupLogin, CacheKeysHidePasswordsAndExpire) {
  mw::http::LoginCache cache, other;
  std::string key = cache.key("alice", "s3cret-password");
  LONGS_EQUAL(32, key.size());
  CHECK(key.find("s3cret") == std::string::npos);
  STRCMP_EQUAL(mw::str::base64_encode(key).c_str(),
               mw::str::base64_encode(cache.key("alice", "s3cret-password")).c_str());
  CHECK(key != cache.key("alice", "s3cret-passwore"));
  CHECK(key != cache.key("alicf", "s3cret-password"));
  CHECK(cache.key("a", "b:c") != cache.key("a:b", "c"));
  CHECK(key != other.key("alice", "s3cret-password"));  // salted per cache (per process)
  CHECK(cache.find(key, 1000) == nullptr);
  cache.remember(key, {"admins"}, 1000);
  const auto* groups = cache.find(key, 1000 + mw::http::LoginCache::kTtlUs - 1);
  CHECK(groups != nullptr);
  STRCMP_EQUAL("admins", groups->at(0).c_str());
  CHECK(cache.find(key, 1000 + mw::http::LoginCache::kTtlUs) == nullptr);
  CHECK(cache.find(cache.key("alice", "wrong"), 1000) == nullptr);
  for (int i = 0; i < 1000; ++i) cache.remember(cache.key("u" + std::to_string(i), "p"), {}, 2000);
  CHECK(cache.size() <= mw::http::LoginCache::kMaxEntries);
  cache.clear();
  LONGS_EQUAL(0, cache.size());
}

TEST(GroupLogin, FailureDelayDoublesToFourSeconds) {
  LONGS_EQUAL(0, mw::http::failure_delay_us(0));
  LONGS_EQUAL(250000, mw::http::failure_delay_us(1));
  LONGS_EQUAL(500000, mw::http::failure_delay_us(2));
  LONGS_EQUAL(1000000, mw::http::failure_delay_us(3));
  LONGS_EQUAL(4000000, mw::http::failure_delay_us(5));
  LONGS_EQUAL(4000000, mw::http::failure_delay_us(100));
}

TEST(GroupLogin, PamRoundOnAPrivateConfiguration) {
  std::string permit = pam_dir("pam_permit.so"), deny = pam_dir("pam_deny.so");
  std::string why;
  CHECK_TEXT(mw::http::pam_login("mailwarden", permit, "root", "anything", "127.0.0.1", why),
             why.c_str());
  CHECK_FALSE(mw::http::pam_login("mailwarden", deny, "root", "anything", "127.0.0.1", why));
  STRCMP_EQUAL("Authentication failure", why.c_str());
  remove_pam_dir(permit);
  remove_pam_dir(deny);
}

TEST(GroupLogin, PeerNames) {
  sockaddr_in a4{};
  a4.sin_family = AF_INET;
  a4.sin_addr.s_addr = htonl(0x7f000001);
  STRCMP_EQUAL("127.0.0.1", mw::http::peer_name(reinterpret_cast<sockaddr*>(&a4)).c_str());
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_addr.s6_addr[10] = 0xff;
  a6.sin6_addr.s6_addr[11] = 0xff;
  a6.sin6_addr.s6_addr[12] = 10;
  a6.sin6_addr.s6_addr[15] = 1;
  STRCMP_EQUAL("10.0.0.1", mw::http::peer_name(reinterpret_cast<sockaddr*>(&a6)).c_str());
  sockaddr un{};
  un.sa_family = AF_UNIX;
  STRCMP_EQUAL("local", mw::http::peer_name(&un).c_str());
}
