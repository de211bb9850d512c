#include <doctest/doctest.h>
#include <re2/re2.h>

#include <set>

#include "portier/policy/decide.hpp"

using namespace portier;
using namespace portier::policy;

namespace {

IpAddress ip(const char* s) { return *IpAddress::parse(s); }
Cidr cidr(const char* s) { return *Cidr::parse(s); }

RequestFacts get(std::string_view host, std::uint16_t port = 80, std::string_view url = "") {
  RequestFacts f;
  f.listener = "office";
  f.client = ip("10.0.0.5");
  f.method = "GET";
  f.host = host;
  f.port = port;
  f.path = "/";
  f.url = url.empty() ? std::string_view("http://example.com/") : url;
  f.minute_of_week = 2 * 1440 + 10 * 60;  // Wednesday 10:00
  return f;
}

RequestFacts connect(std::string_view host, std::uint16_t port = 443) {
  RequestFacts f = get(host, port);
  f.method = "CONNECT";
  f.is_connect = true;
  f.path = "";
  f.url = "";
  return f;
}

// A domain list standing in for the compiled ones: exact names and their subdomains.
class FakeDomains final : public MatchList {
 public:
  explicit FakeDomains(std::set<std::string> names, bool hosts = true) : names_(std::move(names)), hosts_(hosts) {}
  ListLookup match(std::string_view text) const override {
    std::string t(text);
    for (;;) {
      if (names_.count(t))
        return ListLookup::hit("lists/test.txt:" + std::to_string(std::distance(names_.begin(), names_.find(t)) + 1));
      auto dot = t.find('.');
      if (dot == std::string::npos) return ListLookup::miss();
      t = t.substr(dot + 1);
    }
  }
  bool matches_hosts() const noexcept override { return hosts_; }

 private:
  std::set<std::string> names_;
  bool hosts_;
};

// A regex list whose RE2 ran out of memory on every text.
class FailingList final : public MatchList {
 public:
  ListLookup match(std::string_view) const override { return ListLookup::failed("lists/big.txt: out of memory"); }
  bool matches_hosts() const noexcept override { return false; }
};

Rule rule(std::string id, Action a) {
  Rule r;
  r.id = std::move(id);
  r.action = a;
  return r;
}

std::shared_ptr<const re2::RE2> re(const char* p) { return std::make_shared<const re2::RE2>(p); }

Deny deny_of(const Decision& d) {
  REQUIRE(std::holds_alternative<Deny>(d));
  return std::get<Deny>(d);
}

}  // namespace

TEST_SUITE("policy.decide") {
  TEST_CASE("with no rules, GET is forwarded and CONNECT tunnelled") {
    PolicySnapshot s;
    CHECK(std::holds_alternative<Forward>(decide(get("example.com"), s)));
    CHECK(std::holds_alternative<Tunnel>(decide(connect("example.com"), s)));
  }

  TEST_CASE("the default rules allow CONNECT only to 443") {
    PolicySnapshot s;
    s.rules = default_rules();
    CHECK(std::holds_alternative<Tunnel>(decide(connect("example.com", 443), s)));
    Deny d = deny_of(decide(connect("example.com", 22), s));
    CHECK(d.rule == "connect_ports");
    CHECK(d.status == 403);
    CHECK(std::holds_alternative<Forward>(decide(get("example.com", 8080), s)));  // not a CONNECT
  }

  TEST_CASE("first matching rule wins") {
    PolicySnapshot s;
    Rule deny = rule("no-ads", Action::deny);
    deny.when.host = re(R"((^|\.)ads\.example$)");
    deny.reason = "advertising";
    deny.category = "ads";
    s.rules.push_back(deny);
    s.rules.push_back(rule("allow-all", Action::allow));
    Deny d = deny_of(decide(get("x.ads.example"), s));
    CHECK(d.rule == "no-ads");
    CHECK(d.reason == "advertising");
    CHECK(d.category == "ads");
    auto f = decide(get("news.example"), s);
    REQUIRE(std::holds_alternative<Forward>(f));
    CHECK(std::get<Forward>(f).rule == "allow-all");
  }

  TEST_CASE("each condition narrows a rule") {
    struct Case {
      const char* name;
      void (*set)(Condition&);
      RequestFacts (*facts)();
      bool matches;
    };
    static const std::vector<std::string> staff{"staff"};
    const Case cases[] = {
        {"listener matches", [](Condition& c) { c.listeners = {"office"}; }, [] { return get("a.example"); }, true},
        {"other listener", [](Condition& c) { c.listeners = {"lab"}; }, [] { return get("a.example"); }, false},
        {"method", [](Condition& c) { c.methods = {"POST"}; }, [] { return get("a.example"); }, false},
        {"method CONNECT", [](Condition& c) { c.methods = {"CONNECT"}; }, [] { return connect("a.example"); }, true},
        {"client in range", [](Condition& c) { c.clients = {cidr("10.0.0.0/8")}; }, [] { return get("a.example"); }, true},
        {"client outside", [](Condition& c) { c.clients = {cidr("192.168.0.0/16")}; }, [] { return get("a.example"); }, false},
        {"port in range", [](Condition& c) { c.ports = {PortRange{8000, 8100}}; }, [] { return get("a.example", 8080); }, true},
        {"port outside", [](Condition& c) { c.ports = {PortRange{8000, 8100}}; }, [] { return get("a.example", 80); }, false},
        {"user", [](Condition& c) { c.users = {"alice"}; },
         [] { auto f = get("a.example"); f.user = "alice"; return f; }, true},
        {"user absent", [](Condition& c) { c.users = {"alice"}; }, [] { return get("a.example"); }, false},
        {"group", [](Condition& c) { c.groups = {"staff"}; },
         [] { auto f = get("a.example"); f.user = "bob"; f.groups = &staff; return f; }, true},
        {"other group", [](Condition& c) { c.groups = {"admins"}; },
         [] { auto f = get("a.example"); f.user = "bob"; f.groups = &staff; return f; }, false},
        {"url regex", [](Condition& c) { c.url = re("/banner[0-9]+"); },
         [] { return get("a.example", 80, "http://a.example/img/banner42.gif"); }, true},
        {"url regex never matches CONNECT", [](Condition& c) { c.url = re("."); }, [] { return connect("a.example"); }, false},
        {"host regex", [](Condition& c) { c.host = re(R"(\.example$)"); }, [] { return get("a.example"); }, true},
        {"time window", [](Condition& c) { c.times = {TimeWindow{0x1f, 9 * 60, 17 * 60}}; }, [] { return get("a.example"); }, true},
        {"outside time window", [](Condition& c) { c.times = {TimeWindow{0x1f, 12 * 60, 13 * 60}}; },
         [] { return get("a.example"); }, false},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      PolicySnapshot s;
      Rule r = rule("r", Action::deny);
      c.set(r.when);
      s.rules.push_back(r);
      CHECK(std::holds_alternative<Deny>(decide(c.facts(), s)) == c.matches);
    }
  }

  TEST_CASE("unless exempts what it matches") {
    PolicySnapshot s;
    Rule r = rule("tls-only", Action::deny);
    r.when.methods = {"CONNECT"};
    Condition unless;
    unless.ports = {PortRange{443, 443}, PortRange{8443, 8445}};
    r.unless = unless;
    s.rules.push_back(r);
    CHECK(std::holds_alternative<Tunnel>(decide(connect("a.example", 8444), s)));
    CHECK(std::holds_alternative<Deny>(decide(connect("a.example", 25), s)));
  }

  TEST_CASE("a list match names its entry") {
    PolicySnapshot s;
    Rule r = rule("no-ads", Action::deny);
    r.when.lists = {std::make_shared<FakeDomains>(std::set<std::string>{"ads.example", "tracker.example"})};
    s.rules.push_back(r);
    Deny d = deny_of(decide(get("cdn.ads.example"), s));
    CHECK(d.entry == "lists/test.txt:1");
    CHECK(std::holds_alternative<Forward>(decide(get("badads.example"), s)));
  }

  TEST_CASE("regex lists see the URL of plain HTTP and the host of CONNECT") {
    PolicySnapshot s;
    Rule r = rule("trackers", Action::deny);
    r.when.lists = {std::make_shared<FakeDomains>(std::set<std::string>{"http://a.example/track"}, false)};
    s.rules.push_back(r);
    CHECK(std::holds_alternative<Deny>(decide(get("a.example", 80, "http://a.example/track"), s)));
    CHECK(std::holds_alternative<Forward>(decide(get("a.example", 80, "http://a.example/other"), s)));
  }

  TEST_CASE("a list that cannot answer fails closed: deny rules hold, allow rules do not") {
    PolicySnapshot deny_mode;
    Rule allow = rule("allowed-sites", Action::allow);
    allow.when.lists = {std::make_shared<FailingList>()};
    deny_mode.rules.push_back(allow);
    deny_mode.default_action = Action::deny;
    CHECK(deny_of(decide(get("a.example", 80, "http://a.example/"), deny_mode)).rule == "default");

    PolicySnapshot block;
    Rule no = rule("trackers", Action::deny);
    no.when.lists = {std::make_shared<FailingList>()};
    block.rules.push_back(no);
    Deny d = deny_of(decide(get("a.example", 80, "http://a.example/"), block));
    CHECK(d.rule == "trackers");
    CHECK(d.entry == "lists/big.txt: out of memory");
    // ... and an `unless` that cannot be evaluated does not exempt from a deny.
    PolicySnapshot exempt;
    Rule all = rule("all", Action::deny);
    all.when.methods = {"GET"};
    all.unless = Condition{};
    all.unless->lists = {std::make_shared<FailingList>()};
    exempt.rules.push_back(all);
    CHECK(deny_of(decide(get("a.example", 80, "http://a.example/"), exempt)).rule == "all");
  }

  TEST_CASE("egress rules route and name themselves") {
    PolicySnapshot s;
    Rule r = rule("fi-exit", Action::egress);
    r.egress = "fi";
    r.when.host = re(R"(\.fi$)");
    s.rules.push_back(r);
    auto d = decide(connect("yle.fi"), s);
    REQUIRE(std::holds_alternative<Tunnel>(d));
    CHECK(std::get<Tunnel>(d).route.region == "fi");
    CHECK(std::get<Tunnel>(d).route.chosen_by == "rule");
    CHECK(std::get<Tunnel>(d).rule == "fi-exit");
    auto other = decide(connect("example.com"), s);
    CHECK(std::get<Tunnel>(other).route.region == "direct");
    CHECK(std::get<Tunnel>(other).route.chosen_by == "default");
  }

  TEST_CASE("allow-list mode denies what no rule allows") {
    PolicySnapshot s;
    s.default_action = Action::deny;
    Rule r = rule("intranet", Action::allow);
    r.when.host = re(R"(\.corp\.example$)");
    s.rules.push_back(r);
    CHECK(std::holds_alternative<Forward>(decide(get("wiki.corp.example"), s)));
    Deny d = deny_of(decide(get("example.com"), s));
    CHECK(d.rule == "default");
  }

  TEST_CASE("authentication per listener") {
    PolicySnapshot s;
    ListenerPolicy lp;
    lp.name = "office";
    lp.auth = AuthMode::required;
    lp.trusted = {cidr("10.9.0.0/16")};
    s.listeners.push_back(lp);
    s.realm = "corp";

    SUBCASE("no credentials get a challenge with the realm") {
      auto d = decide(get("a.example"), s);
      REQUIRE(std::holds_alternative<Challenge>(d));
      CHECK(std::get<Challenge>(d).realm == "corp");
    }
    SUBCASE("wrong credentials get a challenge again") {
      auto f = get("a.example");
      f.credentials_present = true;
      CHECK(std::holds_alternative<Challenge>(decide(f, s)));
    }
    SUBCASE("a verified user passes") {
      auto f = get("a.example");
      f.credentials_present = true;
      f.user = "alice";
      CHECK(std::holds_alternative<Forward>(decide(f, s)));
    }
    SUBCASE("trusted networks need no credentials") {
      auto f = get("a.example");
      f.client = ip("10.9.1.2");
      CHECK(std::holds_alternative<Forward>(decide(f, s)));
    }
    SUBCASE("optional auth lets anonymous through but challenges wrong credentials") {
      s.listeners[0].auth = AuthMode::optional;
      CHECK(std::holds_alternative<Forward>(decide(get("a.example"), s)));
      auto f = get("a.example");
      f.credentials_present = true;
      CHECK(std::holds_alternative<Challenge>(decide(f, s)));
    }
  }

  TEST_CASE("unknown client networks are refused, with 403 or a silent close") {
    PolicySnapshot s;
    ListenerPolicy lp;
    lp.name = "office";
    lp.allow_clients = {cidr("192.168.0.0/16")};
    s.listeners.push_back(lp);
    Deny d = deny_of(decide(get("a.example"), s));
    CHECK(d.rule == "client_network");
    CHECK_FALSE(d.close);
    s.listeners[0].refuse = RefuseMode::close;
    CHECK(deny_of(decide(get("a.example"), s)).close);
    auto f = get("a.example");
    f.client = ip("192.168.3.4");
    CHECK(std::holds_alternative<Forward>(decide(f, s)));
  }

  TEST_CASE("SNI must name the CONNECT host") {
    PolicySnapshot s;
    auto f = connect("allowed.example");
    f.sni = "blocked.example";
    CHECK(deny_of(decide(f, s)).rule == "sni_mismatch");
    f.sni = "allowed.example";
    CHECK(std::holds_alternative<Tunnel>(decide(f, s)));
    SUBCASE("an IP authority has no name to compare") {
      auto g = connect("192.0.2.1");
      g.sni = "example.com";
      CHECK(std::holds_alternative<Tunnel>(decide(g, s)));
    }
    SUBCASE("the check can be turned off") {
      s.sni_must_match = false;
      f.sni = "blocked.example";
      CHECK(std::holds_alternative<Tunnel>(decide(f, s)));
    }
  }

  TEST_CASE("host rules see the SNI: a deny triggers on either name, an allow needs both") {
    PolicySnapshot s;
    s.sni_must_match = false;
    Rule d = rule("no-ads", Action::deny);
    d.when.host = re(R"(ads\.example$)");
    s.rules.push_back(d);
    auto f = connect("cdn.example");
    f.sni = "ads.example";
    CHECK(std::holds_alternative<Deny>(decide(f, s)));

    PolicySnapshot allow_list;
    allow_list.sni_must_match = false;
    allow_list.default_action = Action::deny;
    Rule a = rule("good", Action::allow);
    a.when.host = re(R"(^good\.example$)");
    allow_list.rules.push_back(a);
    auto g = connect("evil.example");
    g.sni = "good.example";
    CHECK(std::holds_alternative<Deny>(decide(g, allow_list)));
  }

  TEST_CASE("time windows: days, wrap past midnight") {
    TimeWindow office{0x1f, 9 * 60, 17 * 60};  // Mon-Fri
    CHECK(office.contains(0 * 1440 + 9 * 60));
    CHECK_FALSE(office.contains(0 * 1440 + 17 * 60));
    CHECK_FALSE(office.contains(5 * 1440 + 10 * 60));  // Saturday
    TimeWindow night{0x01, 22 * 60, 6 * 60};           // Monday night into Tuesday
    CHECK(night.contains(0 * 1440 + 23 * 60));
    CHECK(night.contains(1 * 1440 + 5 * 60));   // Tuesday 05:00 belongs to Monday's window
    CHECK_FALSE(night.contains(0 * 1440 + 5 * 60));  // Monday 05:00 belongs to Sunday's (off)
  }

  TEST_CASE("egress: the region comes from the user name, then the rule, the user, the group, the default") {
    static const std::vector<std::string> groups{"sales", "staff"};
    PolicySnapshot s;
    s.egress.default_region = "de";
    s.egress.regions["de"] = {};
    s.egress.regions["fi"] = {};
    s.egress.regions["se"] = {};
    s.egress.regions["us"] = {};
    s.egress.regions["uk"] = {};
    s.egress.user_region["alice"] = "se";
    s.egress.group_region = {{"staff", "us"}, {"sales", "uk"}};  // config order: staff first
    Rule r = rule("fi-sites", Action::egress);
    r.egress = "fi";
    r.when.host = re(R"(\.fi$)");
    s.rules.push_back(r);

    auto route_of = [&](const RequestFacts& f) {
      auto d = decide(f, s);
      REQUIRE(std::holds_alternative<Tunnel>(d));
      return std::get<Tunnel>(d).route;
    };
    auto alice = [](std::string_view host) {
      auto f = connect(host);
      f.user = "alice";
      f.groups = &groups;
      return f;
    };

    auto f = alice("yle.fi");
    f.asked_region = "us";
    CHECK(route_of(f).region == "us");
    CHECK(route_of(f).chosen_by == "username");

    CHECK(route_of(alice("yle.fi")).region == "fi");
    CHECK(route_of(alice("yle.fi")).chosen_by == "rule");
    CHECK(std::get<Tunnel>(decide(alice("yle.fi"), s)).rule == "fi-sites");

    CHECK(route_of(alice("example.com")).region == "se");
    CHECK(route_of(alice("example.com")).chosen_by == "user");

    auto bob = connect("example.com");
    bob.user = "bob";
    bob.groups = &groups;
    CHECK(route_of(bob).region == "us");  // staff comes first in the config, not in the user's list
    CHECK(route_of(bob).chosen_by == "group");

    auto carol = connect("example.com");
    carol.user = "carol";
    CHECK(route_of(carol).region == "de");
    CHECK(route_of(carol).chosen_by == "default");
    CHECK(route_of(connect("example.com")).chosen_by == "default");  // anonymous

    SUBCASE("an allow rule carries no region: the user's applies") {
      s.rules.insert(s.rules.begin(), rule("all", Action::allow));
      CHECK(route_of(alice("yle.fi")).region == "se");
      CHECK(std::get<Tunnel>(decide(alice("yle.fi"), s)).rule == "all");
    }
    SUBCASE("plain HTTP gets the same route") {
      auto g = get("yle.fi");
      g.user = "alice";
      g.asked_region = "uk";
      g.session_id = "s1";
      auto d = decide(g, s);
      REQUIRE(std::holds_alternative<Forward>(d));
      CHECK(std::get<Forward>(d).route.region == "uk");
      CHECK(std::get<Forward>(d).route.chosen_by == "username");
      CHECK(std::get<Forward>(d).route.session == "s1");
      CHECK(std::get<Forward>(d).route.session_minutes == 10);
    }
  }

  TEST_CASE("egress: what the user name may ask for") {
    static const std::vector<std::string> staff{"staff"};
    PolicySnapshot s;
    s.egress.regions["fi"] = {};
    s.egress.regions["vip"] = Audience{{"alice"}, {"board"}};
    auto ask = [](std::string_view user, std::string_view region) {
      auto f = connect("example.com");
      f.user = user;
      f.groups = &staff;
      f.asked_region = region;
      return f;
    };

    SUBCASE("unknown regions are a 400") {
      Deny d = deny_of(decide(ask("alice", "mars"), s));
      CHECK(d.status == 400);
      CHECK(d.rule == "egress_region");
      CHECK(d.reason == "unknown region \"mars\"");
    }
    SUBCASE("direct is always known") {
      auto d = decide(ask("alice", "direct"), s);
      REQUIRE(std::holds_alternative<Tunnel>(d));
      CHECK(std::get<Tunnel>(d).route.region == "direct");
      CHECK(std::get<Tunnel>(d).route.chosen_by == "username");
    }
    SUBCASE("a region's audience decides who may pick it") {
      CHECK(std::get<Tunnel>(decide(ask("alice", "vip"), s)).route.region == "vip");
      Deny d = deny_of(decide(ask("bob", "vip"), s));
      CHECK(d.status == 403);
      CHECK(d.rule == "egress_region");
      CHECK(d.reason == "user bob may not use region vip");
      CHECK(std::get<Tunnel>(decide(ask("bob", "fi"), s)).route.region == "fi");
    }
    SUBCASE("only the parameter audience may use parameters at all") {
      s.egress.username_audience.groups = {"staff"};
      auto outsider = ask("eve", "fi");
      outsider.groups = nullptr;
      Deny d = deny_of(decide(outsider, s));
      CHECK(d.status == 403);
      CHECK(d.rule == "egress_params");
      CHECK(d.reason == "user eve may not use user name parameters");
      // A session id alone is a parameter too.
      auto sess = connect("example.com");
      sess.user = "eve";
      sess.session_id = "s1";
      CHECK(deny_of(decide(sess, s)).rule == "egress_params");
      CHECK(std::holds_alternative<Tunnel>(decide(ask("bob", "fi"), s)));
    }
    SUBCASE("anonymous requests may not use parameters") {
      Deny d = deny_of(decide(ask("", "fi"), s));
      CHECK(d.status == 403);
      CHECK(d.rule == "egress_params");
    }
    SUBCASE("a deny rule still wins over a region asked for") {
      Rule no = rule("no-example", Action::deny);
      no.when.host = re(R"(^example\.com$)");
      s.rules.push_back(no);
      CHECK(deny_of(decide(ask("alice", "fi"), s)).rule == "no-example");
      CHECK(deny_of(decide(ask("alice", "mars"), s)).rule == "no-example");
    }
    SUBCASE("allow-list mode still denies what no rule allows") {
      s.default_action = Action::deny;
      CHECK(deny_of(decide(ask("alice", "fi"), s)).rule == "default");
    }
  }

  TEST_CASE("egress: sticky sessions") {
    PolicySnapshot s;
    s.egress.regions["fi"] = {};
    s.egress.session_default_minutes = 15;
    s.egress.session_max_minutes = 60;
    auto f = connect("example.com");
    f.user = "alice";
    f.asked_region = "fi";

    auto route = std::get<Tunnel>(decide(f, s)).route;
    CHECK(route.session.empty());
    CHECK(route.session_minutes == 0);

    f.session_id = "s1";
    route = std::get<Tunnel>(decide(f, s)).route;
    CHECK(route.session == "s1");
    CHECK(route.session_minutes == 15);

    f.sesstime = 60;
    CHECK(std::get<Tunnel>(decide(f, s)).route.session_minutes == 60);

    f.sesstime = 61;
    Deny d = deny_of(decide(f, s));
    CHECK(d.status == 400);
    CHECK(d.rule == "egress_session");
    CHECK(d.reason == "sesstime 61 exceeds the maximum 60 minutes");

    f.session_id = "";
    f.sesstime = 5;
    d = deny_of(decide(f, s));
    CHECK(d.status == 400);
    CHECK(d.rule == "egress_session");
    CHECK(d.reason == "sesstime needs a session");

    SUBCASE("a session without a region sticks inside the configured one") {
      auto g = connect("example.com");
      g.user = "alice";
      g.session_id = "s2";
      route = std::get<Tunnel>(decide(g, s)).route;
      CHECK(route.region == "direct");
      CHECK(route.chosen_by == "default");
      CHECK(route.session == "s2");
      CHECK(route.session_minutes == 15);
    }
  }

  TEST_CASE("egress: a user name that cannot be parsed is a 400, before any challenge") {
    PolicySnapshot s;
    ListenerPolicy lp;
    lp.name = "office";
    lp.auth = AuthMode::required;
    s.listeners.push_back(lp);
    auto f = connect("example.com");
    f.credentials_present = true;
    f.username_error = "proxy user name: key \"region\" given twice";
    Deny d = deny_of(decide(f, s));
    CHECK(d.status == 400);
    CHECK(d.rule == "username");
    CHECK(d.reason == "proxy user name: key \"region\" given twice");
    CHECK_FALSE(d.close);

    SUBCASE("but after the client network check") {
      s.listeners[0].allow_clients = {cidr("192.168.0.0/16")};
      CHECK(deny_of(decide(f, s)).rule == "client_network");
    }
  }

  TEST_CASE("decision names for logs") {
    CHECK(std::string(decision_name(Decision{Tunnel{}})) == "tunnel");
    CHECK(std::string(decision_name(Decision{Forward{}})) == "forward");
    CHECK(std::string(decision_name(Decision{Deny{}})) == "deny");
    CHECK(std::string(decision_name(Decision{Challenge{}})) == "challenge");
  }
}
