#include "portier/session/probe.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace portier::session;

namespace {

// Feeds results ("+" success, "-" failure) and returns the transitions as a string:
// "." none, "D" went down, "U" came up.
std::string run(ProbeCounts& c, std::string_view results, unsigned rise, unsigned fall) {
  std::string out;
  for (char r : results) {
    switch (record_probe(c, r == '+', rise, fall)) {
      case ProbeTransition::none: out += '.'; break;
      case ProbeTransition::went_down: out += 'D'; break;
      case ProbeTransition::came_up: out += 'U'; break;
    }
  }
  return out;
}

}  // namespace

TEST_SUITE("session.probe") {
  TEST_CASE("an exit starts up and successes keep it up") {
    ProbeCounts c;
    CHECK(run(c, "+++++", 2, 3) == ".....");
    CHECK_FALSE(c.down);
  }

  TEST_CASE("fall failures in a row take it down, once") {
    ProbeCounts c;
    CHECK(run(c, "--", 2, 3) == "..");
    CHECK_FALSE(c.down);
    CHECK(run(c, "-", 2, 3) == "D");
    CHECK(c.down);
    CHECK(run(c, "-----", 2, 3) == ".....");
    CHECK(c.down);
  }

  TEST_CASE("a success breaks a run of failures") {
    ProbeCounts c;
    CHECK(run(c, "--+--+--+", 2, 3) == ".........");
    CHECK_FALSE(c.down);
    CHECK(run(c, "---", 2, 3) == "..D");
  }

  TEST_CASE("rise successes in a row bring it back; a failure restarts the count") {
    ProbeCounts c;
    CHECK(run(c, "---", 2, 3) == "..D");
    CHECK(run(c, "+-+-+-", 2, 3) == "......");
    CHECK(c.down);
    CHECK(run(c, "++", 2, 3) == ".U");
    CHECK_FALSE(c.down);
    // and the way down starts from zero again
    CHECK(run(c, "--", 2, 3) == "..");
    CHECK(run(c, "-", 2, 3) == "D");
  }

  TEST_CASE("rise 1 and fall 1 flip on every change") {
    ProbeCounts c;
    CHECK(run(c, "+-+--++", 1, 1) == ".DUD.U.");
    CHECK(run(c, "-+-", 1, 1) == "DUD");
  }

  TEST_CASE("0 counts as 1") {
    ProbeCounts c;
    CHECK(run(c, "-+", 0, 0) == "DU");
  }

  TEST_CASE("counts follow new rise/fall (a reload keeps the run)") {
    ProbeCounts c;
    CHECK(run(c, "--", 2, 5) == "..");
    // fall lowered to 3 by a reload: the third failure in a row is enough
    CHECK(run(c, "-", 2, 3) == "D");
    CHECK(run(c, "++", 4, 3) == "..");
    CHECK(run(c, "+", 3, 3) == "U");
  }
}
