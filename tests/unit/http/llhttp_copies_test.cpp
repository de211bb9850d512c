// The two builds of llhttp's parser loop (meson.build, src/http/llhttp_select.c) must parse alike:
// the SSE4.2 copy only skips runs of ordinary bytes faster. Runs both over the same heads, with a
// forbidden byte moved through long names and values (in and out of the 16-byte windows the
// SSE4.2 copy scans), and compares where each stopped, why, and what it reported.
#include <doctest/doctest.h>

#include <llhttp.h>

#include <string>
#include <vector>

#ifdef PORTIER_LLHTTP_COPIES
extern "C" {
int llhttp__internal_execute_generic(llhttp__internal_t* state, const char* p, const char* endp);
int llhttp__internal_execute_sse42(llhttp__internal_t* state, const char* p, const char* endp);
}

namespace {

using Execute = int (*)(llhttp__internal_t*, const char*, const char*);

// Everything the callbacks saw, in order: "f:<name bytes>", "v:<value bytes>", "h" (head done).
std::string& log_of(llhttp_t* p) { return *static_cast<std::string*>(p->data); }
int on_field(llhttp_t* p, const char* at, size_t n) { log_of(p).append("f:").append(at, n).append("|"); return 0; }
int on_value(llhttp_t* p, const char* at, size_t n) { log_of(p).append("v:").append(at, n).append("|"); return 0; }
int on_url(llhttp_t* p, const char* at, size_t n) { log_of(p).append("u:").append(at, n).append("|"); return 0; }
int on_head(llhttp_t* p) { log_of(p).append("h|"); return 0; }

struct Outcome {
  int code;
  long stopped_at;  // error_pos - start, or -1
  std::string log;
};

Outcome run(Execute execute, llhttp_type_t type, const std::string& bytes) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_header_field = on_field;
  settings.on_header_value = on_value;
  settings.on_url = on_url;
  settings.on_headers_complete = on_head;
  llhttp_t p;
  llhttp_init(&p, type, &settings);
  std::string log;
  p.data = &log;
  const int code = execute(&p, bytes.data(), bytes.data() + bytes.size());
  const long at = code == HPE_OK || p.error_pos == nullptr ? -1 : static_cast<long>(p.error_pos - bytes.data());
  return {code, at, log};
}

void same(llhttp_type_t type, const std::string& bytes) {
  const Outcome a = run(llhttp__internal_execute_generic, type, bytes);
  const Outcome b = run(llhttp__internal_execute_sse42, type, bytes);
  INFO("input: " << bytes);
  CHECK(a.code == b.code);
  CHECK(a.stopped_at == b.stopped_at);
  CHECK(a.log == b.log);
}

}  // namespace

TEST_CASE("llhttp's baseline and SSE4.2 copies parse every head alike") {
  if (!__builtin_cpu_supports("sse4.2")) return;  // the SSE4.2 copy cannot run here
  const std::string name(40, 'n');
  const std::string value(40, 'v');
  // Bytes that end or break a name or a value, and ordinary ones that look unusual.
  const std::vector<char> bytes = {'\0', '\x01', '\x0b', '\x7f', '\r', '\n', ' ', '\t', ':', '"', '\x80', '\xff', 'a'};
  for (const char c : bytes) {
    for (std::size_t at = 0; at < 40; ++at) {
      std::string n = name, v = value;
      n[at] = c;
      v[at] = c;
      same(HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\n" + n + ": x\r\n\r\n");
      same(HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + v + "\r\n\r\n");
      same(HTTP_RESPONSE, "HTTP/1.1 200 OK\r\n" + n + ": x\r\nContent-Length: 0\r\n\r\n");
      same(HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nX-Long: " + v + "\r\nContent-Length: 0\r\n\r\n");
    }
  }
  // A well-formed head with long fields gives the same fields from both.
  same(HTTP_REQUEST, "GET /" + std::string(100, 'p') + " HTTP/1.1\r\nHost: example.org\r\nUser-Agent: " +
                         std::string(200, 'u') + "\r\nAccept: */*\r\n\r\n");
}
#endif
