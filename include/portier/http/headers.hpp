#pragma once
// An ordered list of header fields with case-insensitive lookup. Order and duplicates are kept
// because a proxy must forward what it does not own exactly as it came.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
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

// The fields live in slots that outlive clear() and remove(): a connection parses, rewrites and
// forwards a head per request, and reusing the slots' strings makes that allocation-free once
// the first requests have sized them (the dead slots past size() keep their capacity).
class Headers {
 public:
  Headers() = default;
  Headers(const Headers& o) : slots_(o.begin(), o.end()), size_(o.size_) {}
  Headers& operator=(const Headers& o) {
    if (this != &o) {
      clear();
      for (const Header& h : o) add(h.name, h.value);
    }
    return *this;
  }
  // A moved-from Headers is empty (the defaults would leave size_ pointing past its slots).
  Headers(Headers&& o) noexcept : slots_(std::move(o.slots_)), size_(std::exchange(o.size_, 0)) {}
  Headers& operator=(Headers&& o) noexcept {
    slots_ = std::move(o.slots_);
    size_ = std::exchange(o.size_, 0);
    return *this;
  }

  void add(std::string_view name, std::string_view value);
  // A new last field with empty name and value, for a caller that fills it in place.
  Header& add_empty();
  // Inserts a field before all others.
  void add_first(std::string_view name, std::string_view value);
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
  // Removes every field for which pred(const Header&) is true, keeping the others' order.
  template <class Pred>
  std::size_t remove_if(Pred pred) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      if (pred(static_cast<const Header&>(slots_[i]))) continue;
      if (kept != i) {
        slots_[kept].name.swap(slots_[i].name);
        slots_[kept].value.swap(slots_[i].value);
      }
      ++kept;
    }
    const std::size_t removed = size_ - kept;
    size_ = kept;
    return removed;
  }
  // True when a comma-separated token list in any field of that name holds `token`
  // (case-insensitive, surrounding whitespace ignored): has_token("Connection", "close").
  bool has_token(std::string_view name, std::string_view token) const noexcept;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept { size_ = 0; }
  const Header* begin() const noexcept { return slots_.data(); }
  const Header* end() const noexcept { return slots_.data() + size_; }
  Header* begin() noexcept { return slots_.data(); }
  Header* end() noexcept { return slots_.data() + size_; }
  Header& operator[](std::size_t i) noexcept { return slots_[i]; }
  const Header& operator[](std::size_t i) const noexcept { return slots_[i]; }
  Header& back() noexcept { return slots_[size_ - 1]; }
  const Header& back() const noexcept { return slots_[size_ - 1]; }
  void reserve(std::size_t n) { slots_.reserve(n); }

 private:
  std::vector<Header> slots_;  // [0, size_) are the fields; the rest are spare
  std::size_t size_ = 0;
};

}  // namespace portier::http
