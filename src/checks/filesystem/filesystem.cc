#include "checks/filesystem/filesystem.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "engine/compare.h"
#include "util/procfs.h"

namespace mw::checks::filesystem {
namespace {

// The mount point of a block device, from /proc/mounts (bounded); empty when not mounted.
std::string mount_point_of(const std::string& device) {
  auto table = procfs::read_small("/proc/mounts", 1024 * 1024);
  if (!table) return {};
  std::istringstream in(*table);
  std::string dev, dir, rest;
  while (in >> dev >> dir && std::getline(in, rest))
    if (dev == device) return dir;
  return {};
}

std::string flags_text(unsigned long f) {
  std::string out = (f & ST_RDONLY) ? "ro" : "rw";
  if (f & ST_NOSUID) out += ",nosuid";
  if (f & ST_NODEV) out += ",nodev";
  if (f & ST_NOEXEC) out += ",noexec";
  if (f & ST_SYNCHRONOUS) out += ",sync";
  if (f & ST_NOATIME) out += ",noatime";
  return out;
}

}  // namespace

Task<void> run(RunContext& ctx) {
  const auto& fc = *ctx.check().as<config::FilesystemCheck>();
  std::string path = fc.path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw ProbeError(FailureClass::nonexist,
                     "filesystem path " + path + " does not exist (" + strerror(errno) + ")");
  if (S_ISBLK(st.st_mode)) {
    path = mount_point_of(fc.path);
    if (path.empty())
      throw ProbeError(FailureClass::nonexist, "device " + fc.path + " is not mounted");
  }
  struct statvfs vfs;
  if (statvfs(path.c_str(), &vfs) != 0)
    throw ProbeError(FailureClass::nonexist,
                     "cannot read filesystem " + path + ": " + strerror(errno));
  const double unit = static_cast<double>(vfs.f_frsize) / 1024.0;  // kB per block
  double used = static_cast<double>(vfs.f_blocks - vfs.f_bfree);
  double usable = used + static_cast<double>(vfs.f_bavail);  // as df: reserved blocks excluded
  auto& m = ctx.metrics;
  m["space_total_kb"] = static_cast<double>(vfs.f_blocks) * unit;
  m["space_used_kb"] = used * unit;
  m["space_free_kb"] = static_cast<double>(vfs.f_bavail) * unit;
  m["space_percent"] = usable > 0 ? 100.0 * used / usable : 0.0;
  m["space_free_percent"] = usable > 0 ? 100.0 - m["space_percent"] : 0.0;
  if (vfs.f_files > 0) {  // some filesystems (btrfs, vfat) have no inode table
    double iused = static_cast<double>(vfs.f_files - vfs.f_ffree);
    m["inode_total"] = static_cast<double>(vfs.f_files);
    m["inode_used"] = iused;
    m["inode_free"] = static_cast<double>(vfs.f_favail);
    m["inode_percent"] = 100.0 * iused / static_cast<double>(vfs.f_files);
    m["inode_free_percent"] = 100.0 - m["inode_percent"];
  }
  ctx.details["fsflags"] = flags_text(vfs.f_flag);
  ctx.details["mountpoint"] = path;
  co_return;
}

std::pair<std::string, std::string> labels(const config::Check& check) {
  return {"filesystem", check.as<config::FilesystemCheck>()->path};
}

void rows(const CheckResult& r, DetailRows& out) {
  auto metric = [&](const char* name, const char* unit) -> std::string {
    auto it = r.metrics.find(name);
    return it == r.metrics.end() ? std::string("-") : format_value(it->second, unit);
  };
  out.emplace_back(
      "space", metric("space_percent", "%") + " used, " + metric("space_free_kb", " kB") + " free");
  out.emplace_back("inodes", metric("inode_percent", "%") + " used");
  if (r.details.is_object() && r.details.contains("fsflags") && r.details["fsflags"].is_string())
    out.emplace_back("flags", r.details["fsflags"].get<std::string>());
}

}  // namespace mw::checks::filesystem
