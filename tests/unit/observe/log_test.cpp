#include <doctest/doctest.h>

#include "portier/observe/log.hpp"

using namespace portier::observe;

TEST_CASE("log: a line has the level and, when there is one, the request id") {
  CHECK(format_log_line(Level::info, 0, "ready") == "portier: info: ready");
  CHECK(format_log_line(Level::warning, 0x5f0c2a91d3e4b6a7ULL, "502 GET x") ==
        "portier: warning: [req 5f0c2a91d3e4b6a7] 502 GET x");
  CHECK(format_log_line(Level::error, 1, "boom") == "portier: error: [req 0000000000000001] boom");
}

TEST_CASE("log: levels by name, and the threshold") {
  CHECK(parse_level("debug") == Level::debug);
  CHECK(parse_level("warning") == Level::warning);
  CHECK_FALSE(parse_level("warn").has_value());
  CHECK(level_name(Level::error) == "error");
  set_log_level(Level::warning);
  CHECK_FALSE(log_enabled(Level::info));
  CHECK(log_enabled(Level::warning));
  CHECK(log_enabled(Level::error));
  set_log_level(Level::info);
  CHECK(log_enabled(Level::info));
  CHECK_FALSE(log_enabled(Level::debug));
}
