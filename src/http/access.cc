#include "http/access.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "util/strings.h"

namespace mw::http {
namespace {

bool prefix_matches(const uint8_t* net, const uint8_t* addr, int prefix) {
  int whole = prefix / 8, rest = prefix % 8;
  if (std::memcmp(net, addr, static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xffu << (8 - rest));
  return (net[whole] & mask) == (addr[whole] & mask);
}

std::string mode_text(mode_t m) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// The whole file, bounded, with its permissions checked on the descriptor that is read.
bool read_secret_file(const Htpasswd& h, std::string& text, std::string& error) {
  int fd = open(h.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    error = "cannot read the htpasswd file " + h.path + ": " + std::strerror(errno);
    return false;
  }
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { close(*f); });
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = "the htpasswd file " + h.path + " is not a file";
    return false;
  }
  mode_t loose = h.hash == Htpasswd::Hash::cleartext ? (S_IRWXG | S_IRWXO) : (S_IWGRP | S_IWOTH);
  if (st.st_mode & loose) {
    error = "the htpasswd file " + h.path + " is " +
            (h.hash == Htpasswd::Hash::cleartext ? "accessible" : "writable") +
            " by group or others (mode " + mode_text(st.st_mode) + "); run: chmod 600 " + h.path;
    return false;
  }
  if (static_cast<size_t>(st.st_size) > kMaxHtpasswdBytes) {
    error = "the htpasswd file " + h.path + " is larger than 1 MB";
    return false;
  }
  text.clear();
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = "cannot read the htpasswd file " + h.path + ": " + std::strerror(errno);
      return false;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxHtpasswdBytes) {  // grew while being read
      error = "the htpasswd file " + h.path + " is larger than 1 MB";
      return false;
    }
  }
  return true;
}

// Whether `hash` is one this file's hash kind can check.
bool hash_usable(Htpasswd::Hash kind, const std::string& hash) {
  if (kind == Htpasswd::Hash::cleartext) return true;
  if (kind == Htpasswd::Hash::md5) return hash.rfind("$apr1$", 0) == 0 || hash.rfind("$1$", 0) == 0;
  if (hash.rfind("$apr1$", 0) == 0) return true;
  // crypt: whatever libxcrypt knows ($2b$, $6$, $5$, $1$, $y$, DES...).
  int ok = crypt_checksalt(hash.c_str());
  return ok == CRYPT_SALT_OK || ok == CRYPT_SALT_METHOD_LEGACY;
}

const char kItoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void to64(std::string& out, unsigned long v, int n) {
  while (n-- > 0) {
    out += kItoa64[v & 0x3f];
    v >>= 6;
  }
}

struct Md5 {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
  Md5() {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) abort();
  }
  void add(const void* p, size_t n) { EVP_DigestUpdate(ctx.get(), p, n); }
  void add(const std::string& s) { add(s.data(), s.size()); }
  void done(unsigned char out[16]) {
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx.get(), out, &n);
  }
};

}  // namespace

std::vector<Network> resolve_networks(const std::vector<Network>& nets,
                                      std::vector<std::string>& warnings) {
  std::vector<Network> out;
  for (const auto& n : nets) {
    if (n.family != 0) {
      out.push_back(n);
      continue;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(n.host.c_str(), nullptr, &hints, &res);
    if (rc != 0) {
      warnings.push_back("allow " + n.shown + ": cannot resolve the host name (" +
                         gai_strerror(rc) + "); it admits nobody");
      continue;
    }
    for (addrinfo* a = res; a && out.size() < 1024; a = a->ai_next) {
      Network r = n;
      if (a->ai_family == AF_INET) {
        r.family = AF_INET;
        r.prefix = 32;
        std::memcpy(r.addr, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, 4);
      } else if (a->ai_family == AF_INET6) {
        r.family = AF_INET6;
        r.prefix = 128;
        std::memcpy(r.addr, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, 16);
      } else {
        continue;
      }
      out.push_back(r);
    }
    freeaddrinfo(res);
  }
  return out;
}

bool network_allows(const std::vector<Network>& nets, const sockaddr* peer) {
  if (!peer) return false;
  int family = peer->sa_family;
  uint8_t addr[16]{};
  if (family == AF_INET) {
    std::memcpy(addr, &reinterpret_cast<const sockaddr_in*>(peer)->sin_addr, 4);
  } else if (family == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      family = AF_INET;
      std::memcpy(addr, a6->s6_addr + 12, 4);
    } else {
      std::memcpy(addr, a6->s6_addr, 16);
    }
  } else {
    return false;
  }
  for (const auto& n : nets)
    if (n.family == family && prefix_matches(n.addr, addr, n.prefix)) return true;
  return false;
}

bool load_htpasswd(const std::vector<Htpasswd>& files, std::vector<FileUser>& out,
                   std::vector<std::string>& warnings, std::string& error) {
  out.clear();
  for (const auto& h : files) {
    std::string text;
    if (!read_secret_file(h, text, error)) return false;
    size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::string_view trimmed = str::trim(line);
      if (trimmed.empty() || trimmed[0] == '#') continue;
      std::string where = h.path + ":" + std::to_string(line_no);
      auto colon = line.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == line.size()) {
        error = where + ": expected USER:HASH";
        return false;
      }
      FileUser u;
      u.user.name = line.substr(0, colon);
      u.hash = line.substr(colon + 1);
      // Apache's htpasswd may add fields after the hash (":comment"); a hash has no ':'.
      if (h.hash != Htpasswd::Hash::cleartext)
        if (auto more = u.hash.find(':'); more != std::string::npos) u.hash.resize(more);
      u.cleartext = h.hash == Htpasswd::Hash::cleartext;
      u.user.read_only = h.read_only;
      if (!h.users.empty() &&
          std::find(h.users.begin(), h.users.end(), u.user.name) == h.users.end())
        continue;
      if (!hash_usable(h.hash, u.hash)) {
        warnings.push_back(where + ": the hash of user '" + str::printable(u.user.name, 64) +
                           "' is not one this file's kind can check; the user is left out");
        continue;
      }
      if (out.size() >= kMaxHtpasswdUsers) {
        error = where + ": more than 10000 users in the htpasswd files";
        return false;
      }
      out.push_back(std::move(u));
    }
  }
  return true;
}

bool password_matches(const FileUser& user, const std::string& password) {
  if (user.cleartext) {
    if (user.hash.size() != password.size()) return false;
    return CRYPTO_memcmp(user.hash.data(), password.data(), password.size()) == 0;
  }
  std::string computed;
  if (user.hash.rfind("$apr1$", 0) == 0) {
    std::string salt = user.hash.substr(6);
    salt = salt.substr(0, salt.find('$'));
    computed = apr1_crypt(password, salt);
  } else {
    crypt_data data{};
    const char* h = crypt_rn(password.c_str(), user.hash.c_str(), &data, sizeof data);
    if (!h || h[0] == '*') return false;
    computed = h;
  }
  return computed.size() == user.hash.size() &&
         CRYPTO_memcmp(computed.data(), user.hash.data(), computed.size()) == 0;
}

std::string apr1_crypt(const std::string& password, const std::string& salt_in) {
  static const std::string magic = "$apr1$";
  std::string salt = salt_in.substr(0, 8);
  unsigned char alt[16], fin[16];
  {
    Md5 m;
    m.add(password);
    m.add(salt);
    m.add(password);
    m.done(alt);
  }
  Md5 ctx;
  ctx.add(password);
  ctx.add(magic);
  ctx.add(salt);
  for (size_t left = password.size(); left > 0; left -= std::min<size_t>(left, 16))
    ctx.add(alt, std::min<size_t>(left, 16));
  const char zero = 0;
  for (size_t i = password.size(); i; i >>= 1) {
    if (i & 1) {
      ctx.add(&zero, 1);
    } else {
      ctx.add(password.data(), 1);
    }
  }
  ctx.done(fin);
  // A thousand rounds, to make guessing slow.
  for (int i = 0; i < 1000; ++i) {
    Md5 r;
    if (i & 1) {
      r.add(password);
    } else {
      r.add(fin, 16);
    }
    if (i % 3) r.add(salt);
    if (i % 7) r.add(password);
    if (i & 1) {
      r.add(fin, 16);
    } else {
      r.add(password);
    }
    r.done(fin);
  }
  std::string out = magic + salt + "$";
  static const int groups[5][3] = {{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}};
  for (const auto& g : groups)
    to64(out,
         (static_cast<unsigned long>(fin[g[0]]) << 16) |
             (static_cast<unsigned long>(fin[g[1]]) << 8) | fin[g[2]],
         4);
  to64(out, fin[11], 2);
  return out;
}

bool basic_credentials(const char* header, std::string& name, std::string& password) {
  if (!header) return false;
  std::string_view h = header;
  if (h.size() < 6 || !str::iequals(h.substr(0, 6), "basic ")) return false;
  std::string_view encoded = str::trim(h.substr(6));
  std::string decoded;
  if (encoded.size() > 1024 || !str::base64_decode(encoded, decoded)) return false;
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  name = decoded.substr(0, colon);
  password = decoded.substr(colon + 1);
  OPENSSL_cleanse(decoded.data(), decoded.size());
  return true;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &n);
  return std::string(reinterpret_cast<const char*>(mac), n);
}

}  // namespace mw::http
