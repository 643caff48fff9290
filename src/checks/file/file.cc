#include "checks/file/file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/compare.h"
#include "util/clock.h"
#include "util/handles.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw::checks::file {
namespace {

constexpr size_t kHashChunk = 1024 * 1024;      // per turn of the loop
constexpr size_t kContentPerRun = 1024 * 1024;  // new bytes read per run for content rules
constexpr size_t kMaxLine = 4096;

const char* type_name(config::FileType t) {
  switch (t) {
    case config::FileType::directory:
      return "directory";
    case config::FileType::fifo:
      return "fifo";
    case config::FileType::file:
      break;
  }
  return "regular file";
}

bool type_matches(config::FileType t, mode_t mode) {
  switch (t) {
    case config::FileType::directory:
      return S_ISDIR(mode);
    case config::FileType::fifo:
      return S_ISFIFO(mode);
    case config::FileType::file:
      break;
  }
  return S_ISREG(mode);
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

using MdCtx = std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)>;

// The file's checksum in hex, or empty (with a note in details) when it changed while read.
Task<std::string> checksum(RunContext& ctx, const std::string& path, const std::string& algo) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0 && errno == ELOOP) fd.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0)
    throw ProbeError(FailureClass::checksum, "cannot read " + path + " to compute its " + algo +
                                                 " checksum: " + strerror(errno));
  struct stat before;
  if (fstat(fd.get(), &before) != 0)
    throw ProbeError(FailureClass::checksum, "cannot stat " + path + ": " + strerror(errno));
  MdCtx md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const EVP_MD* type = algo == "md5" ? EVP_md5() : algo == "sha1" ? EVP_sha1() : EVP_sha256();
  if (!md || EVP_DigestInit_ex(md.get(), type, nullptr) != 1)
    throw ProbeError(FailureClass::internal, "cannot start a " + algo + " digest");
  std::vector<unsigned char> buf(64 * 1024);
  Sleep yield(ctx.scope());
  for (;;) {
    size_t chunk = 0;
    ssize_t n = 0;
    while (chunk < kHashChunk) {
      n = read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      EVP_DigestUpdate(md.get(), buf.data(), static_cast<size_t>(n));
      chunk += static_cast<size_t>(n);
    }
    if (n < 0)
      throw ProbeError(FailureClass::checksum, "cannot read " + path + ": " + strerror(errno));
    if (n == 0) break;
    Wake w = co_await yield(1);  // let the loop run between chunks
    (void)w;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md.get(), digest, &len);
  struct stat after_fd, after_path;
  if (fstat(fd.get(), &after_fd) != 0 || ::stat(path.c_str(), &after_path) != 0 ||
      !same_file(before, after_fd) || !same_file(before, after_path)) {
    ctx.details["checksum_note"] = path +
                                   " was replaced or changed while its checksum was "
                                   "computed; it is computed again next run";
    log::warning("%s", ctx.details["checksum_note"].get<std::string>().c_str());
    co_return std::string();
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  co_return out;
}

// Lines added since the last run, matched against each content pattern: metric "content_N"
// counts the matching lines, details "content_N" holds the first one.
void read_new_lines(RunContext& ctx, const config::FileCheck& fc, const struct stat& st) {
  auto& mem = ctx.memory;
  uint64_t ino = static_cast<uint64_t>(st.st_ino);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  bool known = mem.is_object() && mem.contains("ino");
  uint64_t offset = known ? mem.value("offset", uint64_t{0}) : size;  // first run: from the end
  if (known && (mem.value("ino", uint64_t{0}) != ino || offset > size)) offset = 0;  // rotated
  std::vector<std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)>> md;
  for (const auto& re : fc.content)
    md.emplace_back(pcre2_match_data_create_from_pattern(re.code.get(), nullptr),
                    pcre2_match_data_free);
  std::vector<int64_t> counts(fc.content.size(), 0);
  std::vector<std::string> first(fc.content.size());
  if (offset < size) {
    UniqueFd fd(open(fc.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0)
      throw ProbeError(FailureClass::content,
                       "cannot read " + fc.path + " for its content: " + strerror(errno));
    std::string data(std::min<uint64_t>(size - offset, kContentPerRun), '\0');
    ssize_t n = pread(fd.get(), data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0)
      throw ProbeError(FailureClass::content, "cannot read " + fc.path + ": " + strerror(errno));
    data.resize(static_cast<size_t>(n));
    // Only whole lines; a partial last line is read again next run (unless it is huge).
    size_t end = data.rfind('\n');
    size_t used = end == std::string::npos ? (data.size() >= kMaxLine ? data.size() : 0) : end + 1;
    size_t pos = 0;
    while (pos < used) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string::npos || nl > used) nl = used;
      std::string_view line(data.data() + pos, std::min(nl - pos, kMaxLine));
      for (size_t i = 0; i < fc.content.size(); ++i) {
        if (pcre2_match(fc.content[i].code.get(), reinterpret_cast<PCRE2_SPTR>(line.data()),
                        line.size(), 0, 0, md[i].get(), nullptr) >= 0) {
          if (counts[i]++ == 0) first[i] = str::printable(std::string(line), 300);
        }
      }
      pos = nl + 1;
    }
    offset += used;
  }
  for (size_t i = 0; i < fc.content.size(); ++i) {
    std::string key = "content_" + std::to_string(i + 1);
    ctx.metrics[key] = static_cast<double>(counts[i]);
    if (counts[i]) ctx.details[key] = first[i];
  }
  mem["ino"] = ino;
  mem["offset"] = offset;
}

}  // namespace

Task<void> run(RunContext& ctx) {
  const auto& fc = *ctx.check().as<config::FileCheck>();
  if (!ctx.memory.is_object()) ctx.memory = nlohmann::json::object();
  struct stat st;
  if (::stat(fc.path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      throw ProbeError(FailureClass::nonexist, fc.path + " does not exist");
    throw ProbeError(FailureClass::nonexist, "cannot stat " + fc.path + ": " + strerror(errno));
  }
  if (!type_matches(fc.type, st.st_mode))
    throw ProbeError(FailureClass::nonexist,
                     fc.path + " is not a " + std::string(type_name(fc.type)));
  auto& m = ctx.metrics;
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  ctx.details["mode"] = mode;
  m["uid"] = st.st_uid;
  m["gid"] = st.st_gid;
  m["size_bytes"] = static_cast<double>(st.st_size);
  double mtime = static_cast<double>(std::max(st.st_mtim.tv_sec, st.st_ctim.tv_sec));
  m["timestamp"] = mtime;
  m["timestamp_age_s"] = std::max(0.0, static_cast<double>(clock::wall()) - mtime);
  if (!fc.hash.empty() && fc.type == config::FileType::file) {
    std::string sum = co_await checksum(ctx, fc.path, fc.hash);
    if (!sum.empty()) ctx.details["checksum"] = sum;
  }
  if (!fc.content.empty() && fc.type == config::FileType::file) read_new_lines(ctx, fc, st);
  co_return;
}

std::pair<std::string, std::string> labels(const config::Check& check) {
  return {"file", check.as<config::FileCheck>()->path};
}

void rows(const CheckResult& r, DetailRows& out) {
  auto text = [&](const char* name) -> std::string {
    return r.details.is_object() && r.details.contains(name) && r.details[name].is_string()
               ? r.details[name].get<std::string>()
               : std::string("-");
  };
  auto metric = [&](const char* name, const char* unit) -> std::string {
    auto it = r.metrics.find(name);
    return it == r.metrics.end() ? std::string("-") : format_value(it->second, unit);
  };
  out.emplace_back("mode", text("mode"));
  out.emplace_back("size", metric("size_bytes", " B"));
  out.emplace_back("modified", metric("timestamp_age_s", " s") + " ago");
  if (r.details.is_object() && r.details.contains("checksum"))
    out.emplace_back("checksum", text("checksum"));
}

}  // namespace mw::checks::file
