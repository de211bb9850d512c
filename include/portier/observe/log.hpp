#pragma once
// The error log: what portier tells its operators on stderr (the journal under systemd), one line
// per event: "portier: <level>: [req <id>] <message>". The request id is the access log's "req", so
// a line leads to its access record. Each line goes out in one write(2): lines from worker threads
// never interleave. Lines below the configured level ("error_log.level") are not written.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portier::observe {

enum class Level { debug, info, warning, error };

std::string_view level_name(Level l) noexcept;
std::optional<Level> parse_level(std::string_view name) noexcept;

void set_log_level(Level l) noexcept;
bool log_enabled(Level l) noexcept;

void log(Level level, std::string_view message);
void log(Level level, std::uint64_t request_id, std::string_view message);
// An info line written whatever the level: the start-up and shutdown lines ("listening on",
// "ready", "stopped") that supervisors, scripts and tests wait for.
void announce(std::string_view message);

// The line as written (without the newline), for tests and for callers that print elsewhere.
std::string format_log_line(Level level, std::uint64_t request_id, std::string_view message);

}  // namespace portier::observe
