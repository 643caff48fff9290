// A string kept once per distinct value for the life of the process: a pointer to copy, however
// many places hold it. For the few texts a large configuration repeats thousands of times
// (the name of its file in every location, the CA file in every check's TLS settings), not for
// anything whose values are unbounded: nothing is ever freed. Reads like a const std::string:
// it converts to one, compares, and concatenates with strings.
#pragma once

#include <string>

namespace mw {

class Interned {
 public:
  Interned();
  Interned(const std::string& text);  // NOLINT: implicit, so that Location{path, 1, 1} works
  Interned(const char* text) : Interned(std::string(text)) {}  // NOLINT
  [[nodiscard]] const std::string& str() const { return *text_; }
  operator const std::string&() const { return *text_; }  // NOLINT
  [[nodiscard]] const char* c_str() const { return text_->c_str(); }
  [[nodiscard]] bool empty() const { return text_->empty(); }
  [[nodiscard]] size_t size() const { return text_->size(); }
  friend bool operator==(const Interned& a, const Interned& b) { return a.text_ == b.text_; }
  friend bool operator==(const Interned& a, const std::string& b) { return *a.text_ == b; }
  friend bool operator<(const Interned& a, const Interned& b) { return *a.text_ < *b.text_; }
  friend std::string operator+(const Interned& a, const std::string& b) { return *a.text_ + b; }
  friend std::string operator+(const std::string& a, const Interned& b) { return a + *b.text_; }
  friend std::string operator+(const Interned& a, const char* b) { return *a.text_ + b; }
  friend std::string operator+(const char* a, const Interned& b) { return a + *b.text_; }

 private:
  const std::string* text_;  // owned by the process-wide table, never freed
};

}  // namespace mw
