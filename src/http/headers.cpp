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

void Headers::add(std::string_view name, std::string_view value) {
  fields_.push_back(Header{std::string(name), std::string(value)});
}

void Headers::set(std::string_view name, std::string_view value) {
  auto it = std::find_if(fields_.begin(), fields_.end(), [&](const Header& h) { return iequals(h.name, name); });
  if (it == fields_.end()) {
    add(name, value);
    return;
  }
  // The first occurrence keeps its position (with the new spelling); the others go.
  it->name.assign(name);
  it->value.assign(value);
  const auto first = it - fields_.begin();
  fields_.erase(std::remove_if(fields_.begin() + first + 1, fields_.end(),
                               [&](const Header& h) { return iequals(h.name, name); }),
                fields_.end());
}

const std::string* Headers::find(std::string_view name) const noexcept {
  for (const Header& h : fields_) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

std::size_t Headers::remove(std::string_view name) {
  const std::size_t before = fields_.size();
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(), [&](const Header& h) { return iequals(h.name, name); }),
                fields_.end());
  return before - fields_.size();
}

bool Headers::has_token(std::string_view name, std::string_view token) const noexcept {
  if (token.empty()) return false;
  for (const Header& h : fields_) {
    if (iequals(h.name, name) && list_has_token(h.value, token)) return true;
  }
  return false;
}

void Headers::append_to_list(std::string_view name, std::string_view value) {
  for (auto it = fields_.rbegin(); it != fields_.rend(); ++it) {
    if (iequals(it->name, name)) {
      if (trim_ows(it->value).empty()) {
        it->value.assign(value);
      } else {
        it->value.append(", ");
        it->value.append(value);
      }
      return;
    }
  }
  add(name, value);
}

}  // namespace portier::http
