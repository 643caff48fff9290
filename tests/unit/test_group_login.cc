// "allow @group": group membership, the shadow file check, the cache of verified passwords, the
// failure delay, and PAM rounds on a private configuration (pam_permit, pam_deny).
#include <CppUTest/TestHarness.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/remote.h"
#include "http/access.h"
#include "http/group_login.h"
#include "support.h"
#include "util/accounts.h"
#include "util/handles.h"
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

TEST_GROUP(CliLogin){void teardown() override{
    for (const char* v
         : {"MAILWARDEN_HTTP_USER", "MAILWARDEN_HTTP_PASSWORD", "MAILWARDEN_HTTP_CREDENTIALS"})
        unsetenv(v);
}
}
;

TEST(CliLogin, EnvironmentThenCredentialsFileThenControlFile) {
  mw::http::HttpdSettings s;
  s.groups = {{"admins", false}};
  mw::cli::Login login;
  std::string error;
  // Only a group: nobody to log in as, and the error says what to set.
  CHECK_FALSE(mw::cli::cli_login(s, login, error));
  CHECK(error.find("MAILWARDEN_HTTP_USER=NAME") != std::string::npos);
  CHECK(error.find("MAILWARDEN_HTTP_CREDENTIALS=FILE") != std::string::npos);
  s.users = {{"viewer", "look", true}, {"admin", "s3cret", false}};
  CHECK(mw::cli::cli_login(s, login, error));
  STRCMP_EQUAL("admin", login.user.c_str());
  STRCMP_EQUAL("the control file", login.from.c_str());

  setenv("MAILWARDEN_HTTP_PASSWORD", "pw", 1);
  CHECK_FALSE(mw::cli::cli_login(s, login, error));
  STRCMP_EQUAL(
      "MAILWARDEN_HTTP_PASSWORD is set, but MAILWARDEN_HTTP_USER (whose password it is) is not",
      error.c_str());
  setenv("MAILWARDEN_HTTP_USER", "alice", 1);
  CHECK(mw::cli::cli_login(s, login, error));
  STRCMP_EQUAL("alice", login.user.c_str());
  STRCMP_EQUAL("pw", login.password.c_str());
  STRCMP_EQUAL("MAILWARDEN_HTTP_USER", login.from.c_str());
  unsetenv("MAILWARDEN_HTTP_USER");
  unsetenv("MAILWARDEN_HTTP_PASSWORD");

  char path[] = "/tmp/mw-cli-credentials-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  std::string body = "httpd: { username = \"bob\"; password = \"b0b-pass\"; };\n";
  CHECK(write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()));
  close(fd);
  setenv("MAILWARDEN_HTTP_CREDENTIALS", path, 1);
  CHECK_TEXT(mw::cli::cli_login(s, login, error), error.c_str());
  STRCMP_EQUAL("bob", login.user.c_str());
  STRCMP_EQUAL("b0b-pass", login.password.c_str());
  STRCMP_EQUAL((std::string(path) + " (entry httpd)").c_str(), login.from.c_str());
  chmod(path, 0644);  // readable by others: refused, as for `set credentials`
  CHECK_FALSE(mw::cli::cli_login(s, login, error));
  CHECK(error.rfind("MAILWARDEN_HTTP_CREDENTIALS: ", 0) == 0);
  CHECK(error.find("b0b-pass") == std::string::npos);
  std::ofstream(path) << "other: { username = \"x\"; password = \"y\"; };\n";
  chmod(path, 0600);
  CHECK_FALSE(mw::cli::cli_login(s, login, error));
  STRCMP_EQUAL((std::string("MAILWARDEN_HTTP_CREDENTIALS: ") + path +
                " has no entry httpd: { username = \"...\"; password = \"...\"; }")
                   .c_str(),
               error.c_str());
  unlink(path);
}

namespace {

// GroupLogin behind a real evhttp server on loopback: each request's basic-auth user and
// password are checked, and the answer says the outcome and whether it came at once (the cache).
struct LoginServer {
  mw::EventBasePtr base{event_base_new()};
  std::unique_ptr<evhttp, void (*)(evhttp*)> http{evhttp_new(base.get()), evhttp_free};
  std::unique_ptr<mw::http::GroupLogin> login;
  int port = 0;

  explicit LoginServer(const std::string& confdir, bool read_only_group) {
    setenv("MAILWARDEN_PAM_CONFDIR", confdir.c_str(), 1);
    login = std::make_unique<mw::http::GroupLogin>(base.get());
    unsetenv("MAILWARDEN_PAM_CONFDIR");
    login->configure({{"no-such-group-mw", false}, {root_group(), read_only_group}}, false);
    evhttp_bound_socket* s = evhttp_bind_socket_with_handle(http.get(), "127.0.0.1", 0);
    sockaddr_in a{};
    socklen_t n = sizeof a;
    getsockname(evhttp_bound_socket_get_fd(s), reinterpret_cast<sockaddr*>(&a), &n);
    port = ntohs(a.sin_port);
    evhttp_set_gencb(http.get(), &LoginServer::on_request, this);
  }

  static void on_request(evhttp_request* req, void* arg) {
    auto* self = static_cast<LoginServer*>(arg);
    std::string name, password;
    const char* auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    CHECK(mw::http::basic_credentials(auth, name, password));
    auto returned = std::make_shared<bool>(false);
    self->login->check(req, "127.0.0.1", name, password,
                       [req, returned](mw::http::GroupLogin::Outcome o, const mw::http::User* u) {
                         using O = mw::http::GroupLogin::Outcome;
                         int code = o == O::allowed ? 200 : o == O::busy ? 503 : 401;
                         std::string body = *returned ? "later" : "at once";
                         if (u) body += std::string(" ") + u->name + (u->read_only ? " ro" : " rw");
                         evbuffer* buf = evbuffer_new();
                         evbuffer_add(buf, body.data(), body.size());
                         evhttp_send_reply(req, code, "x", buf);
                         evbuffer_free(buf);
                       });
    *returned = true;
  }

  // Runs the loop until each of `credentials` has had its answer (one client thread each).
  std::vector<std::string> run(const std::vector<std::string>& credentials) {
    std::vector<std::string> out(credentials.size());
    std::atomic<size_t> done{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < credentials.size(); ++i)
      threads.emplace_back([&, i] {
        out[i] = get(credentials[i]);
        ++done;
      });
    while (done < credentials.size()) {
      event_base_loop(base.get(), EVLOOP_NONBLOCK);
      usleep(1000);
    }
    for (auto& t : threads) t.join();
    return out;
  }

  // "STATUS BODY" of one GET with basic auth `credentials` ("user:password").
  std::string get(const std::string& credentials) const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "connect failed";
    std::string request = "GET / HTTP/1.0\r\nAuthorization: Basic " +
                          mw::str::base64_encode(credentials) + "\r\n\r\n";
    if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size()))
      return "write failed";
    std::string response;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) response.append(buf, static_cast<size_t>(n));
    close(fd);
    auto body = response.find("\r\n\r\n");
    return response.substr(9, 3) + " " +
           (body == std::string::npos ? "" : response.substr(body + 4));
  }
};

}  // namespace

TEST(GroupLogin, VerdictsComeBackToTheLoopAndSuccessesAreRemembered) {
  std::string permit = pam_dir("pam_permit.so");
  {
    LoginServer server(permit, false);
    auto first = server.run({"root:pw"});
    STRCMP_EQUAL("200 later root rw", first[0].c_str());
    // The same password again: from the cache, answered at once; another password: PAM again.
    auto again = server.run({"root:pw"});
    STRCMP_EQUAL("200 at once root rw", again[0].c_str());
    auto other = server.run({"root:other"});
    STRCMP_EQUAL("200 later root rw", other[0].c_str());
    // A user in none of the groups, or none at all: refused without PAM's say.
    auto stranger = server.run({"no-such-user-mw:pw"});
    STRCMP_EQUAL("401 later", stranger[0].c_str());
  }
  {
    LoginServer server(permit, true);  // root's group allowed read-only
    STRCMP_EQUAL("200 later root ro", server.run({"root:pw"})[0].c_str());
  }
  remove_pam_dir(permit);
}

TEST(GroupLogin, FailuresAreDelayedAndOneSourceHasFourChecksAtMost) {
  std::string deny = pam_dir("pam_deny.so");
  LoginServer server(deny, false);
  // Five at once from one address: four are checked, and each answered after its delay (250 ms
  // for the first failure, doubling: failure_delay_us, tested above); the fifth is turned away
  // at once. No wall-clock bound is asserted: on a loaded machine the answers only come later.
  auto five = server.run({"root:b1", "root:b2", "root:b3", "root:b4", "root:b5"});
  int refused = 0, busy = 0;
  for (const auto& r : five) {
    if (r == "401 later") ++refused;
    if (r == "503 at once") ++busy;
  }
  LONGS_EQUAL(4, refused);
  LONGS_EQUAL(1, busy);
  LONGS_EQUAL(0, server.login->waiting());
  remove_pam_dir(deny);
}
