#include "config/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <libconfig.h++>

#include "config/parser_impl.h"
#include "util/handles.h"
#include "util/strings.h"

namespace mw::config {
namespace {

constexpr size_t kMaxFileBytes = 1024 * 1024;

// Reads the file through one descriptor, so the mode checked is the mode of the file read.
std::optional<std::string> read_private(const std::string& path, std::string& error) {
  // O_NONBLOCK: a FIFO must not hang -t (it is refused below, as anything but a regular file).
  UniqueFd f(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!f) {
    error = "cannot read credentials file " + path + ": " + strerror(errno);
    return std::nullopt;
  }
  struct stat st;
  if (fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    error = "credentials file " + path + " is not a regular file";
    return std::nullopt;
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    error = std::string("credentials file is accessible by group or others (mode ") + mode +
            "); run: chmod 600 " + path;
    return std::nullopt;
  }
  if (static_cast<size_t>(st.st_size) > kMaxFileBytes) {
    error = "credentials file " + path + " is larger than 1 MiB";
    return std::nullopt;
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(f.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return text;
}

// libconfig would follow "@include" to files whose mode nobody checked.
int include_line(const std::string& text) {
  int line = 1;
  bool at_start = true;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      at_start = true;
    } else if (at_start && (c == ' ' || c == '\t')) {
      continue;
    } else if (at_start && text.compare(i, 8, "@include") == 0) {
      return line;
    } else {
      at_start = false;
    }
  }
  return 0;
}

bool read_entry(const libconfig::Setting& group, Credential& out, int& line, std::string& error) {
  std::string name = group.getName() ? group.getName() : "?";
  line = static_cast<int>(group.getSourceLine());
  if (!group.isGroup()) {
    error = "entry '" + name + "' must be a group: " + name +
            ": { username = \"...\"; password = \"...\"; };";
    return false;
  }
  for (int i = 0; i < group.getLength(); ++i) {
    const libconfig::Setting& field = group[i];
    std::string key = field.getName() ? field.getName() : "?";
    line = static_cast<int>(field.getSourceLine());
    std::string* target = key == "username"     ? &out.username
                          : key == "password"   ? &out.password
                          : key == "masteruser" ? &out.masteruser
                          : key == "address"    ? &out.address
                          : key == "servername" ? &out.servername
                                                : nullptr;
    if (!target) {
      error = "unknown field '" + key + "' in entry '" + name +
              "' (expected username, password, masteruser, address or servername)";
      return false;
    }
    if (field.getType() != libconfig::Setting::TypeString) {
      error = "field '" + key + "' of entry '" + name + "' must be a string in double quotes";
      return false;
    }
    *target = static_cast<const char*>(field);
    if (target != &out.password) {
      // Names are printed (validate, logs, mails): a CR or ESC in one could forge a line.
      if (auto bad = str::unsafe_character(*target)) {
        error =
            "field '" + key + "' of entry '" + name + "' contains the control character " + *bad;
        return false;
      }
    } else if (out.password.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
      error = "field 'password' of entry '" + name + "' contains CR, LF or NUL";
      return false;
    }
  }
  line = static_cast<int>(group.getSourceLine());
  if (out.username.empty()) {
    error = "entry '" + name + "' has no username";
    return false;
  }
  if (out.password.empty()) {
    error = "entry '" + name + "' has no password";
    return false;
  }
  return true;
}

}  // namespace

std::optional<CredentialsFile> CredentialsFile::load(const std::string& path, Location& error_at,
                                                     std::string& error) {
  error_at = Location{path, 0, 0};
  auto text = read_private(path, error);
  if (!text) return std::nullopt;
  if (int line = include_line(*text)) {
    error_at.line = line;
    error = "@include is not allowed in a credentials file";
    return std::nullopt;
  }
  libconfig::Config cfg;
  try {
    cfg.readString(*text);
  } catch (const libconfig::ParseException& e) {
    error_at.line = e.getLine();
    error = e.getError();
    return std::nullopt;
  }
  CredentialsFile file;
  const libconfig::Setting& root = cfg.getRoot();
  for (int i = 0; i < root.getLength(); ++i) {
    Credential c;
    int line = 0;
    if (!read_entry(root[i], c, line, error)) {
      error_at.line = line;
      return std::nullopt;
    }
    file.entries_[root[i].getName()] = std::move(c);
  }
  return file;
}

const Credential* CredentialsFile::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace mw::config

// ---- the parser's side: `credentials "NAME"` uses, resolved once the whole file is read -----

namespace mw::config::parsing {

void Parser::use_credentials(const std::string& name, const Location& where,
                             std::function<void(const Credential&)> apply) {
  pending_credentials_.push_back({name, where, std::move(apply)});
}

void Parser::resolve_credentials() {
  if (credentials_path_.empty()) {
    for (const auto& use : pending_credentials_)
      d_.error(use.where, "credentials \"" + use.name +
                              "\" need a credentials file: add set credentials \"PATH\"");
    return;
  }
  Location error_at;
  std::string error;
  auto file = CredentialsFile::load(credentials_path_, error_at, error);
  if (!file) {
    // Every error is FILE:LINE:COL: a problem with the file as a whole points at the
    // 'set credentials' statement, a syntax error at its line of the credentials file.
    if (error_at.line == 0) {
      error_at = credentials_at_;
    } else if (error_at.col == 0) {
      error_at.col = 1;
    }
    d_.error(error_at, error);
    return;
  }
  for (const auto& use : pending_credentials_) {
    const Credential* c = file->find(use.name);
    if (!c) {
      d_.error(use.where,
               "credentials file " + credentials_path_ + " has no entry '" + use.name + "'");
      continue;
    }
    use.apply(*c);
  }
}

}  // namespace mw::config::parsing
