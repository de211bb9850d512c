#pragma once
// An ordered list of header fields with case-insensitive lookup. Order and duplicates are kept
// because a proxy must forward what it does not own exactly as it came.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace portier::http {

// ASCII case-insensitive equality. Inline: it runs for nearly every field of every message, and
// most calls end at the length comparison.
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x == y) continue;
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + ('a' - 'A'));
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + ('a' - 'A'));
    if (x != y) return false;
  }
  return true;
}

struct Header {
  std::string name;
  std::string value;
};

class Headers {
 public:
  void add(std::string_view name, std::string_view value);
  // Appends ", value" to the last field of that name (a list-valued field such as Via or
  // X-Forwarded-For), or adds the field when there is none.
  void append_to_list(std::string_view name, std::string_view value);
  // Replaces every field of that name with one field (appended if absent).
  void set(std::string_view name, std::string_view value);
  // First field of that name, or nullptr.
  const std::string* find(std::string_view name) const noexcept;
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }
  // Removes every field of that name; returns how many were removed.
  std::size_t remove(std::string_view name);
  // True when a comma-separated token list in any field of that name holds `token`
  // (case-insensitive, surrounding whitespace ignored): has_token("Connection", "close").
  bool has_token(std::string_view name, std::string_view token) const noexcept;

  std::size_t size() const noexcept { return fields_.size(); }
  bool empty() const noexcept { return fields_.empty(); }
  void clear() noexcept { fields_.clear(); }
  auto begin() const noexcept { return fields_.begin(); }
  auto end() const noexcept { return fields_.end(); }
  std::vector<Header>& fields() noexcept { return fields_; }
  const std::vector<Header>& fields() const noexcept { return fields_; }

 private:
  std::vector<Header> fields_;
};

}  // namespace portier::http
