#include "portier/http/headers.hpp"

#include <algorithm>

namespace portier::http {
namespace {

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// True when the comma-separated list `list` holds `token` (case-insensitive, OWS ignored).
bool list_has_token(std::string_view list, std::string_view token) noexcept {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view item = trim_ows(list.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

Header& Headers::add_empty() {
  if (size_ == slots_.size()) {
    slots_.emplace_back();
  } else {
    slots_[size_].name.clear();
    slots_[size_].value.clear();
  }
  return slots_[size_++];
}

void Headers::add(std::string_view name, std::string_view value) {
  Header& h = add_empty();
  h.name.assign(name);
  h.value.assign(value);
}

void Headers::add_first(std::string_view name, std::string_view value) {
  add(name, value);
  // Rotate the new field to the front by swapping strings: no copies, no allocation.
  for (std::size_t i = size_ - 1; i > 0; --i) {
    slots_[i].name.swap(slots_[i - 1].name);
    slots_[i].value.swap(slots_[i - 1].value);
  }
}

void Headers::set(std::string_view name, std::string_view value) {
  Header* first = std::find_if(begin(), end(), [&](const Header& h) { return iequals(h.name, name); });
  if (first == end()) {
    add(name, value);
    return;
  }
  // The first occurrence keeps its position (with the new spelling); the others go.
  first->name.assign(name);
  first->value.assign(value);
  const Header* keep = first;
  remove_if([&](const Header& h) { return &h != keep && iequals(h.name, name); });
}

const std::string* Headers::find(std::string_view name) const noexcept {
  for (const Header& h : *this) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

std::size_t Headers::remove(std::string_view name) {
  return remove_if([&](const Header& h) { return iequals(h.name, name); });
}

bool Headers::has_token(std::string_view name, std::string_view token) const noexcept {
  if (token.empty()) return false;
  for (const Header& h : *this) {
    if (iequals(h.name, name) && list_has_token(h.value, token)) return true;
  }
  return false;
}

void Headers::append_to_list(std::string_view name, std::string_view value) {
  for (std::size_t i = size_; i-- > 0;) {
    Header& h = slots_[i];
    if (iequals(h.name, name)) {
      if (trim_ows(h.value).empty()) {
        h.value.assign(value);
      } else {
        h.value.append(", ");
        h.value.append(value);
      }
      return;
    }
  }
  add(name, value);
}

}  // namespace portier::http
