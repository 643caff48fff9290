// Who may use the HTTP interface, beside the basic-auth users of the control file (server.h):
//   - hosts and nets ("allow 10.0.0.0/8", "allow ::1", "allow monitor.example.org"): when any is
//     given, a TCP peer outside all of them is refused before it is asked for a password
//     (monit's rule); a host name is resolved when the interface is configured (start, reload);
//   - htpasswd files ("allow [cleartext|crypt|md5] FILE [USER ...]"): read at start and on every
//     reload, bounded, with the permissions of a secret file; hashes checked by crypt(3)
//     (libxcrypt: bcrypt $2b$/$2y$, sha512-crypt $6$, sha256-crypt $5$, md5-crypt $1$, DES) and
//     Apache's $apr1$ md5, or compared as cleartext;
//   - Unix groups ("allow @group"): members checked with PAM off the event loop (group_login.h).
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/settings.h"

namespace mw::http {

// Host names of `nets` resolved to addresses (getaddrinfo: this runs at start and on reload, as
// monit does it). A name that does not resolve admits nobody; it is named in `warnings`.
[[nodiscard]] std::vector<Network> resolve_networks(const std::vector<Network>& nets,
                                                    std::vector<std::string>& warnings);

// Whether the peer address is inside one of `nets` (IPv4-mapped IPv6 peers count as IPv4).
[[nodiscard]] bool network_allows(const std::vector<Network>& nets, const sockaddr* peer);

// Reads the users of every htpasswd file. False with `error` ("FILE:LINE: ...") when a file
// cannot be read, is too large, is accessible by others when it holds cleartext passwords (or
// writable by others at all), or has a malformed line. Entries a file's hash kind cannot check
// are left out and named in `warnings`.
constexpr size_t kMaxHtpasswdBytes = 1024 * 1024;
constexpr size_t kMaxHtpasswdUsers = 10000;
[[nodiscard]] bool load_htpasswd(const std::vector<Htpasswd>& files, std::vector<FileUser>& out,
                                 std::vector<std::string>& warnings, std::string& error);

// Checks `password` against a user of a file: crypt(3) for a hash, a constant-time comparison
// for cleartext.
[[nodiscard]] bool password_matches(const FileUser& user, const std::string& password);

// The user name and password of a basic-auth Authorization header; false when it is not one.
[[nodiscard]] bool basic_credentials(const char* authorization_header, std::string& name,
                                     std::string& password);

// HMAC-SHA256 of `data` under `key`: 32 raw bytes (CSRF tokens, digests compared in constant
// time, the login cache's keys).
[[nodiscard]] std::string hmac_sha256(std::string_view key, std::string_view data);

// Apache's "$apr1$SALT$HASH" (md5-crypt with its own magic), which libxcrypt does not know.
[[nodiscard]] std::string apr1_crypt(const std::string& password, const std::string& salt);

}  // namespace mw::http
