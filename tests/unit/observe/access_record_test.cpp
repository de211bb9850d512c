#include <doctest/doctest.h>

#include "portier/observe/access_log.hpp"

using portier::observe::AccessRecord;
using portier::observe::to_json;

TEST_CASE("AccessRecord::reset() gives a new record's values for every field") {
  AccessRecord r;
  r.start = std::chrono::system_clock::now();
  r.request_id = 7;
  r.connection = 9;
  r.status = 502;
  r.bytes_up = 10;
  r.bytes_down = 20;
  r.duration_ms = 30;
  r.connect_ms = 4;
  r.connect_us = 4000;
  for (std::string* f : {&r.listener, &r.client, &r.method, &r.target, &r.path, &r.decision, &r.upstream, &r.error,
                         &r.rule, &r.entry, &r.user, &r.groups, &r.sni, &r.region, &r.exit, &r.chain, &r.session,
                         &r.route, &r.backend})
    *f = "a value longer than fifteen bytes";
  const AccessRecord fresh;
  REQUIRE(to_json(r) != to_json(fresh));
  r.reset();
  CHECK(to_json(r) == to_json(fresh));
  CHECK(r.start == fresh.start);
  CHECK(r.connect_us == fresh.connect_us);
  // Guards against a field added to the struct but not to reset(): the record is the nineteen
  // strings plus the scalars checked above (time point, two ids, status padded to 8 bytes, two
  // byte counts, three durations).
  constexpr std::size_t scalars = sizeof(std::chrono::system_clock::time_point) + 2 * 8 + 8 + 2 * 8 + 3 * 8;
  CHECK(sizeof(AccessRecord) == 19 * sizeof(std::string) + scalars);
}
