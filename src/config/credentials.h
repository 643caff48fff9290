// Logins kept out of the control file: `set credentials "PATH"` names a libconfig file of test
// accounts (dovemon's fields), and a test says `credentials "NAME"` to use one of them. The
// file is read once per parse, must not be readable by group or others, and every entry a
// test uses must exist, so that a model that parsed can log in.
//
//   probe:    { username = "alice@example.test"; password = "secret"; };
//   backend1: { username = "user0001"; masteruser = "master"; password = "masterpassword"; };
//   b75:      { address = "10.2.2.75"; servername = "imap1.example.net"; username = ...; };
//
// masteruser: SASL PLAIN where `masteruser` authenticates with its own password and
// `username` is the authorization identity (the mailbox actually used).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "config/model.h"

namespace mw::config {

struct Credential {
  std::string username;
  std::string password;
  std::string masteruser;  // empty: log in as `username` itself
  // check director: the backend this account is for, as HOST-LIST shows it, and the name its
  // certificate carries (a backend listed by IP cannot be verified against its IP).
  std::string address;
  std::string servername;
};

class CredentialsFile {
 public:
  // Reads `path`. On failure returns nullopt with `error_at` (the file, and the line when
  // the file's content is at fault) and `error` set: unreadable, readable by group/others
  // (with the chmod that fixes it), a libconfig syntax error, or a malformed entry.
  [[nodiscard]] static std::optional<CredentialsFile> load(const std::string& path,
                                                           Location& error_at, std::string& error);
  [[nodiscard]] const Credential* find(const std::string& name) const;
  [[nodiscard]] size_t size() const { return entries_.size(); }
  [[nodiscard]] const std::map<std::string, Credential>& entries() const { return entries_; }

 private:
  std::map<std::string, Credential> entries_;
};

}  // namespace mw::config
