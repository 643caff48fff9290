// "set httpd ...": monit's HTTP interface statement, read into HttpdSettings, which the HTTP
// interface serves. Every form monit documents is read (with and without "and"/"use", in any
// order): port, address, unixsocket, ssl { ... } (and the older "ssl enable", "pemfile",
// "allowselfcertification"), signature, read-only, and each kind of "allow".
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "config/parser.h"
#include "config/parser_impl.h"
#include "util/accounts.h"
#include "util/files.h"
#include "util/strings.h"

namespace mw::config::parsing {
namespace {

// "10.0.0.0/8", "10.0.0.0/255.0.0.0", "192.0.2.7", "2001:db8::/32", "::1"; false when the text
// is not a numeric address (it is then a host name).
bool parse_network(const std::string& text, HttpdNetwork& net, std::string& error) {
  std::string addr = text, mask;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    addr = text.substr(0, slash);
    mask = text.substr(slash + 1);
  }
  int family = 0, bits = 0;
  if (inet_pton(AF_INET, addr.c_str(), net.addr) == 1) {
    family = AF_INET;
    bits = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), net.addr) == 1) {
    family = AF_INET6;
    bits = 128;
  } else {
    return false;
  }
  int prefix = bits;
  if (!mask.empty()) {
    uint8_t m[4];
    if (mask.find_first_not_of("0123456789") == std::string::npos && mask.size() <= 3) {
      prefix = std::stoi(mask);
    } else if (family == AF_INET && inet_pton(AF_INET, mask.c_str(), m) == 1) {
      // A netmask: its one bits must be contiguous.
      uint32_t v = (uint32_t{m[0]} << 24) | (uint32_t{m[1]} << 16) | (uint32_t{m[2]} << 8) | m[3];
      prefix = 0;
      while (prefix < 32 && (v & (0x80000000u >> prefix))) ++prefix;
      if (prefix < 32 && (v << prefix) != 0) {
        error = "netmask " + mask + " is not contiguous";
        return true;
      }
    } else {
      error = "'" + mask + "' is neither a prefix length nor a netmask";
      return true;
    }
    if (prefix > bits) {
      error = "prefix /" + mask + " is longer than the address (" + std::to_string(bits) + ")";
      return true;
    }
  }
  for (int i = prefix; i < bits; ++i) net.addr[i / 8] &= static_cast<uint8_t>(~(0x80u >> (i % 8)));
  net.family = family;
  net.prefix = prefix;
  net.shown = text;
  return true;
}

bool loopback(const std::string& address) {
  if (str::iequals(address, "localhost") || address == "::1") return true;
  in_addr a4;
  if (inet_pton(AF_INET, address.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return false;
}

}  // namespace

// A file the interface reads: made absolute, and it must exist. A secret (a cleartext htpasswd,
// a PEM file with the private key) must not be readable by group or others, as monit demands.
std::string Parser::httpd_file(const std::string& what, bool secret) {
  Location where = peek().where;
  std::string path = path_value(what);
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) != 0)
    fail(where, "cannot read " + what + " " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(where, what + " " + path + " is not a file");
  if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    fail(where, what + " " + path + " is accessible by group or others (mode " + mode +
                    "); run: chmod 600 " + path);
  }
  return path;
}

void Parser::set_httpd() {
  HttpdSettings& h = cfg_.settings.httpd;
  Location where = prev().where;
  if (h.enabled) fail(where, "set httpd is already given at " + h.where.str());
  h.enabled = true;
  h.where = where;
  bool address_given = false;
  static const std::vector<std::string> words = {"port",  "address",   "unixsocket",
                                                 "ssl",   "signature", "read-only",
                                                 "allow", "pemfile",   "clientpemfile"};
  for (;;) {
    Location at_kw = peek().where;
    if (accept("port")) {
      h.port = static_cast<uint16_t>(number("the HTTP port", 1, 65535));
    } else if (accept("address")) {
      h.address = value("the address to listen on");
      address_given = true;
    } else if (accept("unixsocket")) {
      Location path_at = peek().where;
      h.unix_socket = path_value("the unix socket path");
      if (h.unix_socket.empty()) fail(path_at, "the unix socket path cannot be empty");
      for (;;) {
        if (accept("uid")) {
          h.socket_uid = resolve_user(value("a user name or uid"));
        } else if (accept("gid")) {
          h.socket_gid = resolve_group(value("a group name or gid"));
        } else if (accept("permission")) {
          const Token& t = peek();
          if (t.kind != Token::Kind::number ||
              t.text.find_first_not_of("01234567") != std::string::npos || t.text.size() > 4)
            fail_expected("an octal permission such as 0660");
          h.socket_permission = static_cast<int>(std::stol(t.text, nullptr, 8));
          next();
        } else {
          break;
        }
      }
    } else if (accept("ssl") || accept("tls")) {
      if (peek().kind == Token::Kind::lbrace) {
        parse_httpd_ssl_block(h);
      } else {
        h.ssl = parse_bool("'ssl'");
      }
    } else if (accept("pemfile")) {
      h.pemfile = httpd_file("the PEM file", true);
    } else if (accept("clientpemfile")) {
      h.clientpemfile = httpd_file("the client CA PEM file", false);
    } else if (accept("allowselfcertification")) {
      h.allow_selfsigned_clients = true;
    } else if (accept("signature")) {
      h.signature = parse_bool("'signature'");
    } else if (accept("read-only") || accept("readonly")) {
      h.read_only = true;
    } else if (accept("allow")) {
      parse_httpd_allow(h);
    } else {
      (void)at_kw;
      break;
    }
  }
  check_statement_end("set httpd", words);
  if (h.ssl && h.pemfile.empty() && (h.pemchain.empty() || h.pemkey.empty()))
    fail(where,
         "set httpd with ssl needs a pemfile (the server's certificate and key), or a pemchain "
         "and a pemkey");
  if (h.port == 0 && h.unix_socket.empty())
    fail(where, "set httpd needs 'port N' or 'unixsocket PATH'");
  if (h.port != 0 && !h.ssl && !loopback(h.address))
    warn(where, "set httpd listens on " + h.address +
                    " without ssl: passwords and status cross the network in clear");
  if (!address_given && h.port != 0)
    warn(where,
         "set httpd listens on 127.0.0.1 only (monit listens on every address); add "
         "'use address ADDR' to serve others");
  // A group may be made after the control file is written: not an error, but worth a word.
  for (const auto& a : h.allow)
    if (a.kind == HttpdAllow::Kind::group && !accounts::group_exists(a.group))
      warn(a.where, "allow @" + a.group + ": there is no Unix group '" + a.group +
                        "' (yet); nobody logs in through it until there is");
}

void Parser::parse_httpd_ssl_block(HttpdSettings& h) {
  next();  // {
  h.ssl = true;
  static const std::vector<std::string> keys = {"pemfile",    "pemchain", "pemkey", "clientpemfile",
                                                "selfsigned", "enable",   "disable"};
  while (peek().kind != Token::Kind::rbrace) {
    if (peek().kind == Token::Kind::end) fail_expected("'}' to close the ssl block of set httpd");
    if (peek().kind == Token::Kind::comma) {
      next();
      continue;
    }
    const Token key = peek();
    std::string k = key.kind == Token::Kind::word ? str::lower(key.text) : "";
    next();
    accept_colon();
    if (k == "pemfile") {
      h.pemfile = httpd_file("the PEM file", true);
    } else if (k == "pemchain") {
      h.pemchain = httpd_file("the PEM chain file", false);
    } else if (k == "pemkey") {
      h.pemkey = httpd_file("the PEM key file", true);
    } else if (k == "clientpemfile") {
      h.clientpemfile = httpd_file("the client CA PEM file", false);
    } else if (k == "selfsigned") {
      if (accept("allow")) {
        h.allow_selfsigned_clients = true;
      } else if (accept("reject")) {
        h.allow_selfsigned_clients = false;
      } else {
        fail_expected("'allow' or 'reject' after 'selfsigned:'", {"allow", "reject"});
      }
    } else if (k == "enable" || k == "enabled") {
      h.ssl = true;
    } else if (k == "disable" || k == "disabled") {
      h.ssl = false;
    } else if (k == "verify" || k == "version" || k == "ciphers") {
      // Client-side options monit also allows here: read, applied nowhere.
      while (peek().kind == Token::Kind::word || peek().kind == Token::Kind::string) {
        if (peek(1).kind == Token::Kind::colon) break;
        next();
      }
      warn(key.where, "'" + k +
                          ":' in the ssl block of set httpd accepted for monit "
                          "compatibility; no effect");
    } else {
      fail(key.where, "unknown option " + describe(key) + " in the ssl block of set httpd (" +
                          one_of(keys) + ")" + did_you_mean(k, keys));
    }
  }
  next();
}

void Parser::parse_httpd_allow(HttpdSettings& h) {
  HttpdAllow a;
  a.where = prev().where;
  const Token t = peek();
  std::string text = t.kind == Token::Kind::string ? unescape_plain(t.text) : t.text;
  if (t.kind != Token::Kind::word && t.kind != Token::Kind::string)
    fail_expected("what to allow (user:password, a host or network, @group or an htpasswd file)");
  std::string lower = str::lower(text);
  bool hash_word = lower == "cleartext" || lower == "crypt" || lower == "md5";
  auto read_only_suffix = [&] {
    if (accept("read-only") || accept("readonly")) a.read_only = true;
  };
  if (!text.empty() && text[0] == '@') {
    next();
    a.kind = HttpdAllow::Kind::group;
    a.group = text.substr(1);
    if (a.group.empty()) fail(t.where, "'@' must be followed by a group name");
    read_only_suffix();
  } else if (hash_word || (!text.empty() && text[0] == '/') || str::istarts_with(text, "~/") ||
             str::istarts_with(text, "./")) {
    a.kind = HttpdAllow::Kind::htpasswd;
    if (hash_word) {
      next();
      a.htpasswd.hash = lower == "cleartext" ? HttpdHtpasswd::Hash::cleartext
                        : lower == "crypt"   ? HttpdHtpasswd::Hash::crypt
                                             : HttpdHtpasswd::Hash::md5;
    }
    a.htpasswd.path =
        httpd_file("the htpasswd file", a.htpasswd.hash == HttpdHtpasswd::Hash::cleartext);
    static const std::set<std::string> stop = {
        "allow", "read-only", "readonly",  "port",    "address",       "unixsocket",
        "ssl",   "tls",       "signature", "pemfile", "clientpemfile", "allowselfcertification",
        "set",   "check",     "include"};
    while ((peek().kind == Token::Kind::word || peek().kind == Token::Kind::string) &&
           !stop.count(str::lower(peek().text)))
      a.htpasswd.users.push_back(value("a user name"));
    // monit takes no "read-only" here: one that follows is the statement's own.
  } else {
    next();
    std::string error;
    if (parse_network(text, a.network, error)) {
      if (!error.empty()) fail(t.where, error);
      a.kind = HttpdAllow::Kind::network;
    } else if (text.find(':') != std::string::npos ||
               (peek().kind == Token::Kind::colon && t.kind == Token::Kind::word)) {
      // user:password, or user: "password with blanks"
      a.kind = HttpdAllow::Kind::user;
      if (peek().kind == Token::Kind::colon) {
        next();
        a.user = text;
        a.password = value("the password after 'user:'");
      } else {
        auto colon = text.find(':');
        a.user = text.substr(0, colon);
        a.password = text.substr(colon + 1);
      }
      if (a.user.empty()) fail(t.where, "allow user:password needs a user name");
      if (a.password.empty()) fail(t.where, "user '" + a.user + "' has no password");
      note_secret(t.where);
      read_only_suffix();
    } else {
      if (text.find_first_of("/ \t") != std::string::npos || text.empty())
        fail(t.where, "'" + str::printable(text, 80) + "' is not an address, network or host name");
      a.kind = HttpdAllow::Kind::network;
      a.network.host = text;
      a.network.shown = text;
    }
  }
  h.allow.push_back(std::move(a));
}

}  // namespace mw::config::parsing
