// What the HTTP interface and the Alertmanager posts are told by the control file:
// `set httpd ...` and `set alertmanager ...`. Plain values, part of the immutable model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/tls.h"

namespace mw::http {

// "allow NAME:PASSWORD [read-only]": a user of the basic authentication.
struct User {
  std::string name;
  std::string password;
  bool read_only = false;
};

// "allow 10.0.0.0/8", "allow ::1", "allow monitor.example.org": who may connect over TCP.
struct Network {
  std::string shown;   // as written
  int family = 0;      // AF_INET or AF_INET6; 0: `host` is a name, resolved when served
  uint8_t addr[16]{};  // network address, host bits cleared
  int prefix = 0;
  std::string host;
};

// "allow [cleartext|crypt|md5] FILE [USER ...]": users and password hashes read from a file
// (at start and on every reload).
struct Htpasswd {
  enum class Hash { cleartext, crypt, md5 } hash = Hash::cleartext;
  std::string path;
  std::vector<std::string> users;  // empty: every user of the file
  bool read_only = false;
};

// "allow @GROUP [read-only]": every Unix user of the group (primary or supplementary) whose
// password PAM accepts (service "mailwarden": pam_authenticate, then pam_acct_mgmt).
struct Group {
  std::string name;
  bool read_only = false;
};

// A user of an htpasswd file, as read: `hash` is checked with crypt(3) (or compared, for a
// cleartext file).
struct FileUser {
  User user;  // its name and read-only flag (no password: `hash` stands for it)
  std::string hash;
  bool cleartext = false;
};

// "with ssl { pemfile: P | pemchain: P pemkey: K [clientpemfile: CA] }".
struct ServerTls {
  bool enabled = false;
  std::string cert_file;  // the certificate (and its chain); the key too when key_file is empty
  std::string key_file;
  std::string client_ca;  // clients must show a certificate signed by these CAs
  bool allow_selfsigned_clients = false;
};

struct HttpdSettings {
  bool enabled = false;
  std::string where;  // "FILE:LINE:COL" of the statement, for -t warnings
  std::string address = "127.0.0.1";
  uint16_t port = 0;        // 0: no TCP listener
  ServerTls tls;            // on the TCP listener
  std::string unix_socket;  // a listener on this path too (plain HTTP: the file mode guards it)
  int socket_uid = -1, socket_gid = -1;
  int socket_mode = 0660;
  std::vector<User> users;  // empty (and no file, no group): no authentication
  std::vector<Htpasswd> htpasswd;
  std::vector<FileUser> file_users;  // read from `htpasswd` by the server when it is configured
  std::vector<Group> groups;         // "allow @group": checked with PAM (group_login.h)
  std::vector<Network> networks;     // empty: every TCP peer may try to log in
  bool read_only = false;            // nobody may act (check now, monitor, unmonitor)
  // Bounds on what a client may cost: a slow or hostile one never delays a probe.
  size_t max_header_bytes = 8 * 1024;
  size_t max_body_bytes = 16 * 1024;
  int timeout_s = 10;        // a request must arrive (and its response leave) within this
  int max_connections = 64;  // open at once; more are closed at once
  // Whether requests need a password: any kind of user is configured.
  [[nodiscard]] bool has_users() const {
    return !users.empty() || !htpasswd.empty() || !groups.empty() || !file_users.empty();
  }
  // The user the CLI logs in as unless told otherwise (src/cli/remote.h): the first read-write
  // user of the control file, else the first one; none when only htpasswd files and groups
  // are allowed (their passwords are not in the control file).
  [[nodiscard]] const User* cli_user() const {
    for (const auto& u : users)
      if (!u.read_only) return &u;
    return users.empty() ? nullptr : &users.front();
  }
};

// `set alertmanager "URL", ... [username "U" password "P"]`: every alert event is also posted
// to each of them (POST /api/v2/alerts).
struct AlertmanagerSettings {
  std::vector<std::string> urls;  // http://host:port or https://host:port, optional path prefix
  std::string username;
  std::string password;
  TlsSettings tls;
  [[nodiscard]] bool enabled() const { return !urls.empty(); }
};

}  // namespace mw::http
