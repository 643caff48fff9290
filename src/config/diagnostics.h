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
    return where.line > 0 ? where.str() + ": " + message : where.file + ": " + message;
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

 private:
  static constexpr size_t kMaxErrors = 100;
  std::vector<Diagnostic> items_;
  size_t count_ = 0;
};

}  // namespace mw::config
