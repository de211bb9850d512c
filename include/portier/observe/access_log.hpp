#pragma once
// One JSON line per request or tunnel, written when it ends: successes, denials and failures alike.
#include <chrono>
#include <cstdint>
#include <string>

namespace portier::observe {

struct AccessRecord {
  std::chrono::system_clock::time_point start;
  std::uint64_t request_id = 0;
  std::uint64_t connection = 0;
  std::string listener;
  std::string client;    // "ip:port"
  std::string method;
  std::string target;    // "host:port"
  std::string path;      // without query unless configured
  int status = 0;        // 0: nothing was sent
  std::string decision;  // forward | tunnel | deny | error
  std::uint64_t bytes_up = 0;    // client -> upstream
  std::uint64_t bytes_down = 0;  // upstream -> client
  std::int64_t duration_ms = 0;
  std::string upstream;  // "ip:port" dialled
  std::string error;     // reason, empty when none
  std::string rule;      // rule id that decided, empty when none
  std::string entry;     // list entry that matched ("file:line"), empty when none
  std::string user;      // verified user, empty when none
  std::string groups;    // the user's groups, comma-separated
  std::string sni;       // tunnels: TLS server name the client sent
  std::string region;    // egress region the request left through (a fallback region when it failed over)
  std::string exit;      // the exit's name ("direct" for the built-in region)
  std::string chain;     // the exit's hops: "http://a:3128,socks5://b:1080", or "direct"
  std::string session;   // sticky session id from the proxy user name
  std::string route;     // reverse listeners: the route's name
  std::string backend;   // reverse listeners: the backend ("host:port" as configured)
  std::int64_t connect_ms = -1;  // time to open the path to the target (-1: no connection was opened)
  std::int64_t connect_us = -1;  // the same for metrics, finer; -1 also for a pooled connection (not logged)

  // Back to a new record's values, keeping the strings' memory: a keep-alive connection starts
  // a record per request, and assigning a new record would free and rebuild twenty strings.
  void reset() noexcept;
};

// "2026-11-22T07:12:03.120Z"
std::string format_timestamp(std::chrono::system_clock::time_point t);
// The JSON object, without the newline.
std::string to_json(const AccessRecord& r);
// 16 lowercase hex digits.
std::string format_request_id(std::uint64_t id);

// Appends lines to stdout or a file opened with O_APPEND. Each record is one write(2), so lines
// from several worker threads never interleave, with no lock in user space.
class AccessLog {
 public:
  // path: "-" stdout, "" or "off" disabled, else a file.
  static AccessLog open(const std::string& path, std::string* error);
  AccessLog() = default;
  AccessLog(AccessLog&&) noexcept;
  AccessLog& operator=(AccessLog&&) noexcept;
  ~AccessLog();

  bool enabled() const noexcept { return fd_ >= 0; }
  void write(const AccessRecord& r) const;

  // SIGUSR1 (logrotate): opens the file by its path again, so lines go to the new file once the
  // old one was renamed. Safe while workers write. On failure the old file stays in use.
  bool reopen(std::string* error);

 private:
  int fd_ = -1;
  bool owned_ = false;
  std::string path_;
};

}  // namespace portier::observe
