#include "util/interned.h"

#include <mutex>
#include <unordered_set>

namespace mw {
namespace {

const std::string* intern(const std::string& text) {
  static std::mutex lock;
  static std::unordered_set<std::string> texts;
  std::lock_guard<std::mutex> guard(lock);
  return &*texts.insert(text).first;
}

}  // namespace

Interned::Interned() : text_(intern("")) {}
Interned::Interned(const std::string& text) : text_(intern(text)) {}

}  // namespace mw
