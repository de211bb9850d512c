#include "portier/observe/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "portier/observe/access_log.hpp"

namespace portier::observe {
namespace {

std::atomic<Level> g_level{Level::info};

void write_line(const std::string& line) {
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr is gone: nothing better to do with the line
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

std::string_view level_name(Level l) noexcept {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warning: return "warning";
    case Level::error: return "error";
  }
  return "";
}

std::optional<Level> parse_level(std::string_view name) noexcept {
  for (Level l : {Level::debug, Level::info, Level::warning, Level::error})
    if (level_name(l) == name) return l;
  return std::nullopt;
}

void set_log_level(Level l) noexcept { g_level.store(l, std::memory_order_relaxed); }
bool log_enabled(Level l) noexcept { return l >= g_level.load(std::memory_order_relaxed); }

std::string format_log_line(Level level, std::uint64_t request_id, std::string_view message) {
  std::string line;
  line.reserve(message.size() + 48);
  line.append("portier: ").append(level_name(level)).append(": ");
  if (request_id != 0) line.append("[req ").append(format_request_id(request_id)).append("] ");
  line.append(message);
  return line;
}

void log(Level level, std::string_view message) { log(level, 0, message); }

void announce(std::string_view message) {
  std::string line = format_log_line(Level::info, 0, message);
  line += '\n';
  write_line(line);
}

void log(Level level, std::uint64_t request_id, std::string_view message) {
  if (!log_enabled(level)) return;
  std::string line = format_log_line(level, request_id, message);
  line += '\n';
  write_line(line);
}

}  // namespace portier::observe
