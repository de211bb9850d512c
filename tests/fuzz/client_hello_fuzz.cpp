// libFuzzer entry point for the ClientHello parser (not built by meson). Build and run, e.g.:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//     tests/fuzz/client_hello_fuzz.cpp src/http/client_hello.cpp src/core/ip.cpp -o client_hello_fuzz
//   ./client_hello_fuzz -max_len=20000
// Besides memory safety it checks that feeding the input whole and in pieces (sizes taken from the
// input's first byte) reaches the same verdict and the same facts.
#include "portier/http/client_hello.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t max_bytes = 64 + (static_cast<std::size_t>(data[0]) << 6);

  portier::http::ClientHelloParser whole(max_bytes);
  const auto a = whole.feed(input);

  portier::http::ClientHelloParser pieces(max_bytes);
  auto b = pieces.feed({});
  for (std::size_t i = 0; i < input.size(); i += step) b = pieces.feed(input.substr(i, step));

  const auto& x = whole.info();
  const auto& y = pieces.info();
  if (a != b || whole.bytes_seen() != pieces.bytes_seen() || x.sni != y.sni || x.has_sni != y.has_sni ||
      x.has_ech != y.has_ech || x.alpn != y.alpn || x.legacy_version != y.legacy_version ||
      x.offers_tls13 != y.offers_tls13 || x.sni_ip_literal != y.sni_ip_literal || whole.bytes_seen() > max_bytes) {
    std::abort();
  }
  return 0;
}
