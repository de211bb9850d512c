#pragma once
// Proxy users: the Basic credentials of a Proxy-Authorization header, an htpasswd users file verified
// with libxcrypt, a per-worker cache of successful verifications and a per-client throttle of
// failed attempts. No I/O except reading the users file at load time, and no clock: time comes in
// as a parameter.
//
// How a session is meant to put them together (each worker thread owns one cache and one throttle):
//
//   auto creds = parse_basic_credentials(header);           // nullopt -> 407 (never 500)
//   if (!creds) -> challenge
//   if (cache.lookup(*creds, now, users.epoch())) -> authenticated as creds->user
//   if (!throttle.allow(client_ip, now)) -> challenge, without hashing
//   if (users.check(creds->user, creds->password) == CheckResult::ok)
//     cache.insert(*creds, now, ttl, users.epoch()) -> authenticated
//   else throttle.record_failure(client_ip, now) -> challenge
//
// Neither the password nor the header ever goes into an error message or a log line from here.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "portier/core/ip.hpp"

namespace portier::policy {

// ---- Proxy-Authorization: Basic --------------------------------------------------------------

struct Credentials {
  std::string user;
  std::string password;
};

inline constexpr std::size_t kMaxCredentialBytes = 1024;  // decoded "user:password"
inline constexpr std::size_t kMaxUserBytes = 128;

// "Basic <base64>" with a case-insensitive scheme and one or more spaces before the token
// (surrounding spaces/tabs are ignored). The token is strict base64: standard alphabet, padded to
// a multiple of 4, '=' only at the end, zero pad bits. The decoded text must hold a ':' (the user
// is what comes before the first one, the password may contain more), a non-empty user of at most
// kMaxUserBytes, at most kMaxCredentialBytes in all and no control characters (bytes < 0x20 and
// 0x7f; UTF-8 is kept as bytes). Anything else is nullopt: the caller answers 407.
std::optional<Credentials> parse_basic_credentials(std::string_view header_value);

// ---- password hashes --------------------------------------------------------------------------

// Accepted hash formats (libxcrypt):
//   bcrypt        $2y$ (htpasswd -B), $2b$, and $2a$ (libxcrypt computes $2a$ with the post-2011
//                 countermeasure, so it is sound; it is what many libraries still emit)
//   yescrypt      $y$  (Debian's default for /etc/shadow; memory-hard, stronger than bcrypt)
//   SHA-512-crypt $6$, SHA-256-crypt $5$ (optionally with rounds=N$)
// Refused at load with a message naming the format: Apache MD5 ($apr1$), MD5-crypt ($1$), {SHA} and
// {SSHA} (SHA-1), traditional and extended DES crypt, bcrypt $2x$ (the buggy pre-2011 variant),
// plaintext, and any other scheme ($7$ scrypt, $gy$, $3$ NT hash, ...).

// Constant-time check of a password against a stored hash with crypt_rn (thread-safe: the 32 KiB
// struct crypt_data is allocated per call on the heap and wiped). False for a malformed hash, a
// password with a NUL byte or longer than kMaxCredentialBytes.
bool verify(const std::string& stored_hash, std::string_view password);

// ---- users file -------------------------------------------------------------------------------

enum class CheckResult { ok, unknown_user, wrong_password };

struct UsersFileError {
  std::string file;
  std::size_t line = 0;  // 1-based; 0 for the whole file (cannot read, too large, too many errors)
  std::string reason;    // never contains the hash or any password
};
// "users.htpasswd:3: MD5-crypt ($1$) hashes are too weak; ..." ("users.htpasswd: ..." for line 0)
std::string format_error(const UsersFileError& e);

struct UsersLoadResult;  // below UsersFile

// An htpasswd file: "user:hash" lines; blank lines and lines starting with '#' are skipped;
// surrounding spaces/tabs and a trailing '\r' are ignored. User names are 1..kMaxUserBytes bytes of
// printable ASCII other than space and ':' or UTF-8 (bytes >= 0x80); a user may appear once.
// An empty file is valid (nobody can log in). Immutable after load, so check() may be called from
// any thread.
class UsersFile {
 public:
  static constexpr std::size_t kMaxFileBytes = 16 * 1024 * 1024;
  static constexpr std::size_t kMaxReportedErrors = 100;

  static UsersLoadResult load(const std::string& path);
  // file_name is only used in error messages.
  static UsersLoadResult parse(std::string_view text, std::string_view file_name);

  // Verifies with the stored hash. An unknown user costs the same as a known one: the password is
  // run against a stand-in hash (a copy of the hash whose algorithm and cost are the most common in
  // the file) and the result discarded, so response times do not tell which users exist.
  CheckResult check(std::string_view user, std::string_view password) const;

  bool contains(std::string_view user) const;
  std::size_t size() const noexcept { return users_.size(); }
  // Unique per parsed file in this process. Credential caches mix it into their keys, so a reload
  // (a removed user, a changed password) never lets an older verification through.
  std::uint64_t epoch() const noexcept { return epoch_; }

 private:
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  UsersFile() = default;

  std::unordered_map<std::string, std::string, NameHash, std::equal_to<>> users_;  // user -> hash
  std::string stand_in_hash_;
  std::uint64_t epoch_ = 0;
};

struct UsersLoadResult {
  std::optional<UsersFile> users;       // set only when errors is empty
  std::vector<UsersFileError> errors;  // in file order, at most kMaxReportedErrors plus a summary
};

// ---- credential cache -------------------------------------------------------------------------

// Remembers successful verifications for a TTL, so the hash cost is paid once per user and TTL,
// not per request. Keys are SHA-256(random per-cache salt, users-file epoch, user, '\0', password):
// the password is never stored, and a key is useless outside this process. Only successes are
// inserted. Bounded: when full, the least recently used entry goes.
// Not thread-safe by design: each worker thread owns one (a connection lives on one thread).
class CredentialCache {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  static constexpr std::size_t kDefaultMaxEntries = 10000;

  explicit CredentialCache(std::size_t max_entries = kDefaultMaxEntries);  // throws only if RAND_bytes fails

  // True when these exact credentials were inserted under the same epoch and have not expired.
  // An expired entry is dropped.
  // `expiry`, when given, receives the entry's expiry on a hit.
  bool lookup(const Credentials& creds, TimePoint now, std::uint64_t users_epoch = 0, TimePoint* expiry = nullptr);
  // Caches a successful verification until now + ttl (replacing an older entry for the same key).
  void insert(const Credentials& creds, TimePoint now, Duration ttl, std::uint64_t users_epoch = 0);

  void clear() noexcept;
  std::size_t size() const noexcept { return map_.size(); }
  std::size_t max_entries() const noexcept { return max_entries_; }

 private:
  using Key = std::array<unsigned char, 32>;
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;  // the key is already uniform: take 8 bytes
  };
  struct Entry {
    Key key;
    std::string user;  // for debugging and future per-user invalidation; never the password
    TimePoint expiry;
  };

  std::optional<Key> key_for(const Credentials& creds, std::uint64_t users_epoch) const;  // nullopt if OpenSSL fails

  std::size_t max_entries_;
  std::array<unsigned char, 32> salt_{};
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map_;
};

// ---- failure throttle -------------------------------------------------------------------------

struct ThrottleOptions {
  unsigned max_failures = 10;                 // failures within `window` that trigger a back-off
  std::chrono::seconds window{60};            // counting window, starts at the first failure
  std::chrono::seconds backoff{60};           // how long the client is refused afterwards
  std::size_t max_clients = 10000;            // tracked clients; the least recently seen goes first
  unsigned v6_prefix_bits = 64;               // IPv6 clients are counted per prefix (one /64 = one client)
};

// Counts failed authentication attempts per client address. After `max_failures` failures within
// `window`, allow() is false for `backoff` (no password hashing at all for that client meanwhile);
// then counting starts afresh. Failures while refused are not counted (the caller does not verify).
// Not thread-safe by design: one per worker thread.
class FailureThrottle {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit FailureThrottle(ThrottleOptions options = {});

  bool allow(const IpAddress& client, TimePoint now);
  void record_failure(const IpAddress& client, TimePoint now);
  // Forget a client's failures (e.g. after a successful login). Optional.
  void forget(const IpAddress& client);

  std::size_t size() const noexcept { return map_.size(); }
  const ThrottleOptions& options() const noexcept { return options_; }

 private:
  using Key = std::array<std::uint8_t, 16>;
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct Entry {
    Key key;
    TimePoint window_start;
    unsigned failures = 0;
    TimePoint blocked_until = TimePoint::min();  // refused while now < blocked_until
  };

  Key key_for(const IpAddress& client) const noexcept;

  ThrottleOptions options_;
  std::list<Entry> lru_;  // front = most recently seen
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map_;
};

}  // namespace portier::policy
