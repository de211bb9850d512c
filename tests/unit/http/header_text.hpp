#pragma once
// Test helpers: Headers built from a list, and written as "Name: value\n" lines to compare.
#include <initializer_list>
#include <string>
#include <utility>

#include "portier/http/headers.hpp"

namespace portier::http::test {

inline Headers make_headers(std::initializer_list<std::pair<const char*, const char*>> fields) {
  Headers h;
  for (const auto& [name, value] : fields) h.add(name, value);
  return h;
}

inline std::string header_text(const Headers& h) {
  std::string out;
  for (const auto& f : h) out += f.name + ": " + f.value + "\n";
  return out;
}

}  // namespace portier::http::test
