#include "portier/policy/decide.hpp"

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <doctest/doctest.h>

using namespace portier::policy;

namespace {

RequestFacts connect_facts(std::uint16_t port) {
  RequestFacts f;
  f.listener = "default";
  f.client = *portier::IpAddress::parse("192.0.2.10");
  f.method = "CONNECT";
  f.is_connect = true;
  f.host = "example.com";
  f.port = port;
  return f;
}

RequestFacts get_facts(std::uint16_t port) {
  RequestFacts f = connect_facts(port);
  f.method = "GET";
  f.is_connect = false;
  f.path = "/index.html";
  return f;
}

PolicySnapshot ports(std::vector<PortRange> ranges) {
  PolicySnapshot s;
  s.connect_ports = std::move(ranges);
  return s;
}

}  // namespace

TEST_SUITE("policy.decide") {

TEST_CASE("default snapshot tunnels CONNECT to 443 only") {
  PolicySnapshot snap;
  CHECK(std::holds_alternative<Tunnel>(decide(connect_facts(443), snap)));
  CHECK(std::get<Tunnel>(decide(connect_facts(443), snap)).route.egress == "direct");

  auto d = decide(connect_facts(22), snap);
  REQUIRE(std::holds_alternative<Deny>(d));
  const Deny& deny = std::get<Deny>(d);
  CHECK(deny.status == 403);
  CHECK(deny.rule == "connect_ports");
  CHECK(deny.reason.find("22") != std::string::npos);
}

TEST_CASE("CONNECT port decisions follow the configured ranges") {
  struct Row {
    std::vector<PortRange> ranges;
    std::uint16_t port;
    bool tunnel;
  };
  const std::vector<Row> table = {
      {{{443, 443}}, 443, true},
      {{{443, 443}}, 442, false},
      {{{443, 443}}, 444, false},
      {{{443, 443}, {8000, 8100}}, 8000, true},
      {{{443, 443}, {8000, 8100}}, 8050, true},
      {{{443, 443}, {8000, 8100}}, 8100, true},
      {{{443, 443}, {8000, 8100}}, 7999, false},
      {{{443, 443}, {8000, 8100}}, 8101, false},
      {{{1, 65535}}, 1, true},
      {{{1, 65535}}, 65535, true},
      {{{1, 65535}}, 22, true},
      {{}, 443, false},  // an empty list disables CONNECT
      {{{8443, 8443}}, 443, false},
  };
  for (const Row& r : table) {
    CAPTURE(r.port);
    CAPTURE(r.ranges.size());
    auto d = decide(connect_facts(r.port), ports(r.ranges));
    if (r.tunnel) {
      CHECK(std::holds_alternative<Tunnel>(d));
    } else {
      REQUIRE(std::holds_alternative<Deny>(d));
      CHECK(std::get<Deny>(d).status == 403);
      CHECK(std::get<Deny>(d).rule == "connect_ports");
    }
  }
}

TEST_CASE("requests other than CONNECT are forwarded whatever the port") {
  for (std::uint16_t port : {80, 443, 22, 8080}) {
    CAPTURE(port);
    CHECK(std::holds_alternative<Forward>(decide(get_facts(port), PolicySnapshot{})));
    CHECK(std::holds_alternative<Forward>(decide(get_facts(port), ports({}))));
  }
  RequestFacts post = get_facts(80);
  post.method = "POST";
  CHECK(std::holds_alternative<Forward>(decide(post, PolicySnapshot{})));
}

TEST_CASE("decision_name names each alternative for the access log") {
  CHECK(std::string(decision_name(Decision{Tunnel{}})) == "tunnel");
  CHECK(std::string(decision_name(Decision{Forward{}})) == "forward");
  CHECK(std::string(decision_name(Decision{Deny{}})) == "deny");
  CHECK(std::string(decision_name(Decision{Challenge{}})) == "challenge");
  CHECK(std::string(decision_name(Decision{Answer{}})) == "answer");
  CHECK(std::string(decision_name(decide(connect_facts(22), PolicySnapshot{}))) == "deny");
}

}  // TEST_SUITE
