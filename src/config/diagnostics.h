// Errors found in control files, reported as FILE:LINE:COL: message.
#pragma once

#include <string>
#include <vector>

#include "config/model.h"

namespace mw::config {

struct Diagnostic {
  Location where;
  std::string message;
  [[nodiscard]] std::string str() const {
    return where.line > 0 ? where.str() + ": " + message : where.file.str() + ": " + message;
  }
  // "FILE:LINE:COL: warning: message"
  [[nodiscard]] std::string warning_str() const {
    return (where.line > 0 ? where.str() : where.file.str()) + ": warning: " + message;
  }
};

class Diagnostics {
 public:
  void error(const Location& where, std::string message) {
    if (items_.size() < kMaxErrors) items_.push_back({where, std::move(message)});
    ++count_;
  }
  [[nodiscard]] bool empty() const { return count_ == 0; }
  [[nodiscard]] size_t count() const { return count_; }
  [[nodiscard]] const std::vector<Diagnostic>& items() const { return items_; }
  [[nodiscard]] bool too_many() const { return count_ >= kMaxErrors; }

  // Something accepted that the reader should know about ("accepted for monit compatibility; no
  // effect", "only the connection is checked"). Warnings never reject a file: -t prints them
  // before "Control file syntax OK" and the daemon logs them when it loads the file.
  void warning(const Location& where, std::string message) {
    if (warnings_.size() < kMaxWarnings) warnings_.push_back({where, std::move(message)});
  }
  [[nodiscard]] const std::vector<Diagnostic>& warnings() const { return warnings_; }

 private:
  static constexpr size_t kMaxErrors = 100;
  static constexpr size_t kMaxWarnings = 200;
  std::vector<Diagnostic> items_;
  std::vector<Diagnostic> warnings_;
  size_t count_ = 0;
};

}  // namespace mw::config
