#include "portier/policy/users.hpp"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <unistd.h>

#include <crypt.h>
#include <doctest/doctest.h>

using portier::IpAddress;
using portier::policy::CheckResult;
using portier::policy::CredentialCache;
using portier::policy::Credentials;
using portier::policy::FailureThrottle;
using portier::policy::parse_basic_credentials;
using portier::policy::ThrottleOptions;
using portier::policy::UsersFile;
using portier::policy::UsersLoadResult;
using portier::policy::verify;

namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

// Hashes are made at test time with libxcrypt, at the lowest costs so the suite stays fast.
std::string make_hash(const char* prefix, unsigned long count, const std::string& password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  const char* s = crypt_gensalt_rn(prefix, count, nullptr, 0, setting, sizeof setting);
  REQUIRE_MESSAGE(s != nullptr, prefix);
  auto data = std::make_unique<crypt_data>();
  const char* h = crypt_rn(password.c_str(), setting, data.get(), static_cast<int>(sizeof *data));
  REQUIRE_MESSAGE(h != nullptr, prefix);
  REQUIRE(h[0] != '*');
  return h;
}

UsersFile parse_ok(const std::string& text) {
  auto r = UsersFile::parse(text, "users.htpasswd");
  for (const auto& e : r.errors) MESSAGE(format_error(e));
  REQUIRE(r.errors.empty());
  REQUIRE(r.users.has_value());
  return std::move(*r.users);
}

// The single error of a one-error file.
portier::policy::UsersFileError single_error(const std::string& text) {
  auto r = UsersFile::parse(text, "users.htpasswd");
  REQUIRE_FALSE(r.users.has_value());
  REQUIRE(r.errors.size() == 1);
  return r.errors[0];
}

std::string basic(const std::string& base64) { return "Basic " + base64; }

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  REQUIRE_MESSAGE(a.has_value(), text);
  return *a;
}

const TimePoint t0 = TimePoint{} + 1000h;

}  // namespace

TEST_SUITE("policy.users") {

// ---- Basic header ------------------------------------------------------------------------------

TEST_CASE("Basic credentials decode into user and password") {
  auto c = parse_basic_credentials("Basic YWxpY2U6c2VjcmV0");  // alice:secret
  REQUIRE(c.has_value());
  CHECK(c->user == "alice");
  CHECK(c->password == "secret");

  SUBCASE("the scheme is case-insensitive and several spaces are allowed") {
    auto l = parse_basic_credentials("basic    YWxpY2U6c2VjcmV0");
    REQUIRE(l.has_value());
    CHECK(l->user == "alice");
    CHECK(parse_basic_credentials("BASIC YWxpY2U6c2VjcmV0").has_value());
    CHECK(parse_basic_credentials("  Basic YWxpY2U6c2VjcmV0 \t").has_value());
  }
  SUBCASE("the password runs from the first colon and may hold colons or be empty") {
    auto p = parse_basic_credentials(basic("YWxpY2U6YTpiOmM="));  // alice:a:b:c
    REQUIRE(p.has_value());
    CHECK(p->user == "alice");
    CHECK(p->password == "a:b:c");
    auto e = parse_basic_credentials(basic("YWxpY2U6"));  // alice:
    REQUIRE(e.has_value());
    CHECK(e->password.empty());
  }
  SUBCASE("padding of one and two characters") {
    auto one = parse_basic_credentials(basic("YWI6Y2Q="));  // ab:cd
    REQUIRE(one.has_value());
    CHECK(one->user == "ab");
    CHECK(one->password == "cd");
    auto two = parse_basic_credentials(basic("YWI6Yw=="));  // ab:c
    REQUIRE(two.has_value());
    CHECK(two->password == "c");
  }
  SUBCASE("UTF-8 bytes are kept") {
    auto u = parse_basic_credentials(basic("w6lsaWU6cMOkc3M="));  // élie:päss
    REQUIRE(u.has_value());
    CHECK(u->user == "\xc3\xa9lie");
    CHECK(u->password == "p\xc3\xa4ss");
  }
}

TEST_CASE("malformed Basic headers are refused") {
  CHECK_FALSE(parse_basic_credentials(""));
  CHECK_FALSE(parse_basic_credentials("Basic"));
  CHECK_FALSE(parse_basic_credentials("Basic "));
  CHECK_FALSE(parse_basic_credentials("BasicYWxpY2U6c2VjcmV0"));
  CHECK_FALSE(parse_basic_credentials("Basic\tYWxpY2U6c2VjcmV0"));
  CHECK_FALSE(parse_basic_credentials("Bearer YWxpY2U6c2VjcmV0"));
  CHECK_FALSE(parse_basic_credentials("Digest username=\"alice\""));
  CHECK_FALSE(parse_basic_credentials("Basic YWxpY2U6c2VjcmV0 extra"));

  SUBCASE("missing colon") { CHECK_FALSE(parse_basic_credentials(basic("YWxpY2U="))); }  // alice
  SUBCASE("empty user") { CHECK_FALSE(parse_basic_credentials(basic("OnNlY3JldA=="))); }  // :secret
  SUBCASE("bad base64") {
    CHECK_FALSE(parse_basic_credentials(basic("YWxpY2U6c2VjcmV0!")));
    CHECK_FALSE(parse_basic_credentials(basic("YWxp*2U6c2VjcmV0")));
    CHECK_FALSE(parse_basic_credentials(basic("YWxpY2U6c2VjcmV")));     // not a multiple of 4
    CHECK_FALSE(parse_basic_credentials(basic("YWI6Yw")));              // unpadded
    CHECK_FALSE(parse_basic_credentials(basic("YWI6Yw=")));             // short padding
    CHECK_FALSE(parse_basic_credentials(basic("YW=6Y2Q=")));            // '=' inside a quantum
    CHECK_FALSE(parse_basic_credentials(basic("YWI=Y2Q6")));            // '=' before the last quantum
    CHECK_FALSE(parse_basic_credentials(basic("YWI6Yw===")));           // three '='
    CHECK_FALSE(parse_basic_credentials(basic("YWI6Yx==")));            // non-zero pad bits
    CHECK_FALSE(parse_basic_credentials(basic("YWI6Y2R=")));            // non-zero pad bits
    CHECK_FALSE(parse_basic_credentials(basic("YWxp Y2U6c2VjcmV0")));   // space inside
    CHECK_FALSE(parse_basic_credentials(basic("YWxpY2U6c2VjcmV0-_==")));  // URL-safe alphabet
  }
  SUBCASE("control characters") {
    CHECK_FALSE(parse_basic_credentials(basic("YWwKaWNlOnB3")));      // "al\nice:pw"
    CHECK_FALSE(parse_basic_credentials(basic("YWxpY2U6cAB3")));      // "alice:p\0w"
    CHECK_FALSE(parse_basic_credentials(basic("YWxpY2U6cHd/")));      // "alice:pw\x7f"
  }
  SUBCASE("overlong") {
    // 1024 decoded bytes are fine, 1025 are not.
    auto encode = [](const std::string& s) {
      static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      std::string out;
      std::size_t i = 0;
      for (; i + 3 <= s.size(); i += 3) {
        unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
        out += a[v >> 18];
        out += a[(v >> 12) & 63];
        out += a[(v >> 6) & 63];
        out += a[v & 63];
      }
      if (s.size() - i == 1) {
        unsigned v = (unsigned char)s[i] << 16;
        out += a[v >> 18];
        out += a[(v >> 12) & 63];
        out += "==";
      } else if (s.size() - i == 2) {
        unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8;
        out += a[v >> 18];
        out += a[(v >> 12) & 63];
        out += a[(v >> 6) & 63];
        out += '=';
      }
      return out;
    };
    const std::string fits = "alice:" + std::string(1024 - 6, 'x');
    auto ok = parse_basic_credentials(basic(encode(fits)));
    REQUIRE(ok.has_value());
    CHECK(ok->password.size() == 1018);
    CHECK_FALSE(parse_basic_credentials(basic(encode(fits + "x"))));
    CHECK_FALSE(parse_basic_credentials(basic(encode(std::string(129, 'u') + ":pw"))));
    CHECK(parse_basic_credentials(basic(encode(std::string(128, 'u') + ":pw"))).has_value());
    CHECK_FALSE(parse_basic_credentials(basic(std::string(100000, 'A'))));
  }
}

// ---- verification ------------------------------------------------------------------------------

TEST_CASE("each accepted hash format verifies the right password and refuses a wrong one") {
  struct Format {
    const char* prefix;
    unsigned long cost;
  };
  for (auto f : {Format{"$2y$", 4}, Format{"$2b$", 4}, Format{"$2a$", 4}, Format{"$6$", 1000}, Format{"$5$", 1000},
                 Format{"$6$", 0}, Format{"$y$", 1}}) {
    CAPTURE(f.prefix);
    const auto hash = make_hash(f.prefix, f.cost, "correct horse");
    CHECK(verify(hash, "correct horse"));
    CHECK_FALSE(verify(hash, "correct horsE"));
    CHECK_FALSE(verify(hash, ""));
    CHECK_FALSE(verify(hash, std::string_view("correct horse\0", 14)));

    auto users = parse_ok("alice:" + hash + "\n");
    CHECK(users.check("alice", "correct horse") == CheckResult::ok);
    CHECK(users.check("alice", "wrong") == CheckResult::wrong_password);
    CHECK(users.check("bob", "correct horse") == CheckResult::unknown_user);
    CHECK(users.check("Alice", "correct horse") == CheckResult::unknown_user);
  }
}

TEST_CASE("verify refuses weak or malformed hashes even when they would match") {
  auto data = std::make_unique<crypt_data>();
  const char* md5 = crypt_rn("pw", "$1$saltsalt", data.get(), static_cast<int>(sizeof *data));
  REQUIRE(md5 != nullptr);
  CHECK_FALSE(verify(md5, "pw"));
  const char* des = crypt_rn("pw", "ab", data.get(), static_cast<int>(sizeof *data));
  if (des != nullptr && des[0] != '*') CHECK_FALSE(verify(des, "pw"));
  CHECK_FALSE(verify("", ""));
  CHECK_FALSE(verify("pw", "pw"));
  const auto good = make_hash("$2b$", 4, "pw");
  CHECK_FALSE(verify(good.substr(0, 59), "pw"));
}

TEST_CASE("an unknown user costs about as much time as a known one") {
  const auto hash = make_hash("$2b$", 8, "pw");
  auto users = parse_ok("alice:" + hash + "\n");
  auto time = [&](const char* user) {
    auto best = std::chrono::steady_clock::duration::max();
    for (int i = 0; i < 3; ++i) {
      const auto start = std::chrono::steady_clock::now();
      (void)users.check(user, "nope");
      best = std::min(best, std::chrono::steady_clock::now() - start);
    }
    return best;
  };
  const auto known = time("alice");
  const auto unknown = time("mallory");
  CAPTURE(std::chrono::duration_cast<std::chrono::microseconds>(known).count());
  CAPTURE(std::chrono::duration_cast<std::chrono::microseconds>(unknown).count());
  CHECK(unknown * 10 >= known * 3);  // without the stand-in hash it would be ~1000x faster
}

// ---- users file --------------------------------------------------------------------------------

TEST_CASE("a users file with comments, blank lines and mixed formats loads") {
  const auto a = make_hash("$2y$", 4, "apw");
  const auto b = make_hash("$6$", 1000, "bpw");
  const auto c = make_hash("$5$", 1000, "cpw");
  const std::string text = "\xEF\xBB\xBF# portier users\n\n  alice:" + a + "  \r\n\tbob:" + b +
                           "\n   # indented comment\ncarol:" + c;  // no final newline
  auto users = parse_ok(text);
  CHECK(users.size() == 3);
  CHECK(users.contains("alice"));
  CHECK(users.contains("bob"));
  CHECK(users.contains("carol"));
  CHECK_FALSE(users.contains("dave"));
  CHECK(users.check("alice", "apw") == CheckResult::ok);
  CHECK(users.check("bob", "bpw") == CheckResult::ok);
  CHECK(users.check("carol", "cpw") == CheckResult::ok);
  CHECK(users.check("carol", "apw") == CheckResult::wrong_password);

  SUBCASE("an empty file is valid and knows nobody") {
    auto empty = parse_ok("# nobody yet\n");
    CHECK(empty.size() == 0);
    CHECK(empty.check("alice", "apw") == CheckResult::unknown_user);
  }
  SUBCASE("each parse gets its own epoch") {
    auto again = parse_ok(text);
    CHECK(again.epoch() != users.epoch());
    CHECK(again.epoch() != 0);
  }
}

TEST_CASE("weaker hash formats are refused with a message naming them and the line") {
  struct Case {
    const char* hash;
    const char* words;
  };
  const Case cases[] = {
      {"$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "Apache MD5 ($apr1$)"},
      {"$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", "MD5-crypt ($1$)"},
      {"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "unsalted SHA-1 ({SHA})"},
      {"{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9gxyz==", "salted SHA-1 ({SSHA})"},
      {"rqXexS6ZhobKA", "traditional DES crypt"},
      {"_J9..CCCCXBrJUJV154M", "extended DES crypt"},
      {"$2x$05$abcdefghijklmnopqrstuuyvPXIbu7xe6/CED2DzX8z6Si09MlzlW", "$2x$"},
      {"secret", "plaintext"},
      {"correct horse battery staple", "plaintext"},
      {"$7$CU..../....abcdefgh$xxxx", "unsupported hash format \"$7$\""},
      {"$gy$j9T$salt$hash", "unsupported hash format \"$gy$\""},
      {"{SMD5}abcdef", "unsupported hash scheme \"{SMD5}\""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.hash);
    const auto e = single_error("# header\n\nalice:" + std::string(c.hash) + "\n");
    CHECK(e.line == 3);
    CHECK(e.file == "users.htpasswd");
    CHECK(e.reason.find(c.words) != std::string::npos);
    CHECK(e.reason.find("alice") != std::string::npos);
    // The message names the format but never repeats the hash.
    if (std::string(c.hash).size() > 6) CHECK(format_error(e).find(c.hash) == std::string::npos);
    CHECK(format_error(e).rfind("users.htpasswd:3: ", 0) == 0);
  }
}

TEST_CASE("malformed lines are reported, all of them, with file and line") {
  const auto good = make_hash("$2b$", 4, "pw");
  const std::string text = "alice:" + good +
                           "\n"                              // 1 ok
                           "no colon here\n"                  // 2
                           ":" + good + "\n"                  // 3 empty user
                           "bob:\n"                           // 4 empty hash
                           "carol:" + good + ":comment\n"     // 5 extra field
                           "d ave:" + good + "\n"             // 6 space in the name
                           + std::string(129, 'u') + ":" + good + "\n"  // 7 name too long
                           "erin:" + good.substr(0, 50) + "\n"          // 8 truncated bcrypt
                           "frank:$6$salt$tooshort\n"                   // 9 truncated sha512
                           "gina:$5$rounds=10$salt$" + std::string(43, 'a') + "\n"  // 10 rounds too low
                           "hank:$2b$99$" + std::string(53, 'a') + "\n"             // 11 cost out of range
                           "alice:" + good + "\n";                                   // 12 duplicate
  auto r = UsersFile::parse(text, "u.txt");
  REQUIRE_FALSE(r.users.has_value());
  if (r.errors.size() != 11) {
    for (const auto& e : r.errors) MESSAGE(format_error(e));
  }
  REQUIRE(r.errors.size() == 11);
  auto at = [&](std::size_t i, std::size_t line, const char* words) {
    CAPTURE(i);
    CHECK(r.errors[i].line == line);
    CHECK(r.errors[i].reason.find(words) != std::string::npos);
  };
  at(0, 2, "expected user:hash");
  at(1, 3, "empty user name");
  at(2, 4, "empty password hash");
  at(3, 5, "more than one ':'");
  at(4, 6, "space or a control character");
  at(5, 7, "longer than 128 bytes");
  at(6, 8, "malformed bcrypt hash");
  at(7, 9, "malformed SHA-512-crypt hash");
  at(8, 10, "rounds 10 out of range");
  at(9, 11, "bcrypt cost 99");
  at(10, 12, "duplicate user \"alice\" (first defined on line 1)");
  CHECK(format_error(r.errors[0]) == "u.txt:2: expected user:hash");
}

TEST_CASE("error reports are capped with a summary") {
  std::string text;
  for (int i = 0; i < 150; ++i) text += "junk\n";
  auto r = UsersFile::parse(text, "u");
  REQUIRE(r.errors.size() == UsersFile::kMaxReportedErrors + 1);
  CHECK(r.errors.back().line == 0);
  CHECK(format_error(r.errors.back()) == "u: 50 more errors not shown");
}

TEST_CASE("load reads a file and names it in errors") {
  char path[] = "/tmp/portier_users_test_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string text = "alice:" + make_hash("$2b$", 4, "pw") + "\nbob:$apr1$x$y\n";
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  auto r = UsersFile::load(path);
  REQUIRE(r.errors.size() == 1);
  CHECK(format_error(r.errors[0]).rfind(std::string(path) + ":2: ", 0) == 0);
  std::remove(path);

  auto missing = UsersFile::load("/nonexistent/portier/users");
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].line == 0);
  CHECK(format_error(missing.errors[0]).find("/nonexistent/portier/users: cannot open users file") == 0);
}

// ---- credential cache --------------------------------------------------------------------------

TEST_CASE("credential cache: hit, miss and expiry") {
  CredentialCache cache(8);
  const Credentials alice{"alice", "pw"};
  CHECK_FALSE(cache.lookup(alice, t0));
  cache.insert(alice, t0, 30s);
  CHECK(cache.lookup(alice, t0 + 29s));
  CHECK(cache.size() == 1);

  SUBCASE("another password, user or users-file epoch misses") {
    CHECK_FALSE(cache.lookup(Credentials{"alice", "pW"}, t0));
    CHECK_FALSE(cache.lookup(Credentials{"alicepw", ""}, t0));
    CHECK_FALSE(cache.lookup(Credentials{"alice", "pw"}, t0, 7));
    CHECK_FALSE(cache.lookup(Credentials{"Alice", "pw"}, t0));
  }
  SUBCASE("an entry expires at its TTL and is dropped") {
    CHECK_FALSE(cache.lookup(alice, t0 + 30s));
    CHECK(cache.size() == 0);
    CHECK_FALSE(cache.lookup(alice, t0 + 1s));
  }
  SUBCASE("inserting again refreshes the expiry") {
    cache.insert(alice, t0 + 20s, 30s);
    CHECK(cache.lookup(alice, t0 + 45s));
    CHECK(cache.size() == 1);
  }
  SUBCASE("clear forgets everything") {
    cache.clear();
    CHECK_FALSE(cache.lookup(alice, t0));
  }
  SUBCASE("a zero TTL caches nothing") {
    CredentialCache c2(8);
    c2.insert(alice, t0, 0s);
    CHECK(c2.size() == 0);
  }
  SUBCASE("two caches do not share keys") {
    CredentialCache other(8);
    CHECK_FALSE(other.lookup(alice, t0));
  }
}

TEST_CASE("credential cache evicts the least recently used entry when full") {
  CredentialCache cache(3);
  auto u = [](int i) { return Credentials{"user" + std::to_string(i), "pw"}; };
  cache.insert(u(1), t0, 1h);
  cache.insert(u(2), t0, 1h);
  cache.insert(u(3), t0, 1h);
  CHECK(cache.lookup(u(1), t0));  // 1 is now the most recent; 2 is the oldest
  cache.insert(u(4), t0, 1h);
  CHECK(cache.size() == 3);
  CHECK_FALSE(cache.lookup(u(2), t0));
  CHECK(cache.lookup(u(1), t0));
  CHECK(cache.lookup(u(3), t0));
  CHECK(cache.lookup(u(4), t0));
}

TEST_CASE("credential cache works with a users file's epoch") {
  const auto hash = make_hash("$2b$", 4, "pw");
  auto before = parse_ok("alice:" + hash + "\n");
  auto after = parse_ok("alice:" + make_hash("$2b$", 4, "new") + "\n");
  CredentialCache cache;
  const Credentials alice{"alice", "pw"};
  REQUIRE(before.check(alice.user, alice.password) == CheckResult::ok);
  cache.insert(alice, t0, 5min, before.epoch());
  CHECK(cache.lookup(alice, t0 + 1s, before.epoch()));
  CHECK_FALSE(cache.lookup(alice, t0 + 1s, after.epoch()));  // the password changed on reload
}

// ---- failure throttle --------------------------------------------------------------------------

TEST_CASE("throttle refuses a client after max_failures within the window, then lets it back") {
  FailureThrottle t(ThrottleOptions{3, 60s, 30s, 100, 64});
  const auto a = ip("192.0.2.1");
  const auto b = ip("192.0.2.2");
  CHECK(t.allow(a, t0));
  t.record_failure(a, t0);
  t.record_failure(a, t0 + 10s);
  CHECK(t.allow(a, t0 + 11s));
  t.record_failure(a, t0 + 20s);  // third within 60 s
  CHECK_FALSE(t.allow(a, t0 + 20s));
  CHECK_FALSE(t.allow(a, t0 + 49s));
  CHECK(t.allow(b, t0 + 21s));  // other clients are unaffected

  SUBCASE("the back-off ends and counting starts afresh") {
    CHECK(t.allow(a, t0 + 50s));
    t.record_failure(a, t0 + 51s);
    CHECK(t.allow(a, t0 + 52s));
  }
  SUBCASE("failures while refused do not extend the back-off") {
    t.record_failure(a, t0 + 40s);
    CHECK(t.allow(a, t0 + 50s));
  }
  SUBCASE("forget clears a client") {
    t.forget(a);
    CHECK(t.allow(a, t0 + 21s));
  }
}

TEST_CASE("throttle: failures spread wider than the window never block") {
  FailureThrottle t(ThrottleOptions{3, 60s, 30s, 100, 64});
  const auto a = ip("2001:db8::1");
  for (int i = 0; i < 10; ++i) {
    t.record_failure(a, t0 + std::chrono::seconds(i * 31));
    CHECK(t.allow(a, t0 + std::chrono::seconds(i * 31)));
  }
}

TEST_CASE("throttle: the defaults are 10 failures in 60 s, then 60 s of back-off") {
  FailureThrottle t;
  CHECK(t.options().max_failures == 10);
  CHECK(t.options().window == 60s);
  CHECK(t.options().backoff == 60s);
  const auto a = ip("198.51.100.7");
  for (int i = 0; i < 9; ++i) t.record_failure(a, t0 + std::chrono::seconds(i));
  CHECK(t.allow(a, t0 + 9s));
  t.record_failure(a, t0 + 9s);
  CHECK_FALSE(t.allow(a, t0 + 9s));
  CHECK_FALSE(t.allow(a, t0 + 68s));
  CHECK(t.allow(a, t0 + 69s));
}

TEST_CASE("throttle counts IPv6 clients per /64") {
  FailureThrottle t(ThrottleOptions{2, 60s, 30s, 100, 64});
  t.record_failure(ip("2001:db8:1:2::1"), t0);
  t.record_failure(ip("2001:db8:1:2:ffff::9"), t0);
  CHECK_FALSE(t.allow(ip("2001:db8:1:2::42"), t0));
  CHECK(t.allow(ip("2001:db8:1:3::1"), t0));
  // IPv4 addresses are each their own client.
  t.record_failure(ip("10.0.0.1"), t0);
  t.record_failure(ip("10.0.0.2"), t0);
  CHECK(t.allow(ip("10.0.0.1"), t0));
}

TEST_CASE("throttle map is bounded and evicts the least recently seen client") {
  FailureThrottle t(ThrottleOptions{2, 60s, 30s, 2, 64});
  const auto a = ip("192.0.2.1");
  const auto b = ip("192.0.2.2");
  const auto c = ip("192.0.2.3");
  t.record_failure(a, t0);
  t.record_failure(a, t0);  // a blocked
  t.record_failure(b, t0);
  CHECK_FALSE(t.allow(a, t0 + 1s));  // touches a: b is now the oldest
  t.record_failure(c, t0 + 2s);      // evicts b
  CHECK(t.size() == 2);
  CHECK_FALSE(t.allow(a, t0 + 2s));
  t.record_failure(b, t0 + 3s);  // b starts over at one failure (evicts c)
  CHECK(t.allow(b, t0 + 3s));
  t.record_failure(b, t0 + 3s);
  CHECK_FALSE(t.allow(b, t0 + 3s));
}

}  // TEST_SUITE
