#include "portier/policy/users.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace portier::policy {

namespace {

// ---- small text helpers -----------------------------------------------------------------------

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_control(unsigned char c) noexcept { return c < 0x20 || c == 0x7f; }

bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Wipes a string's bytes before it is freed (best effort: copies made by std::string are not covered).
void wipe(std::string& s) noexcept {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

// ---- strict base64 ----------------------------------------------------------------------------

int base64_value(unsigned char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard alphabet, padded to a multiple of 4, at most two '=' and only at the very end, and the
// unused bits before the padding must be zero (one canonical encoding per byte string).
std::optional<std::string> decode_base64_strict(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (in.back() == '=') pad = in[in.size() - 2] == '=' ? 2 : 1;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const auto c = static_cast<unsigned char>(in[i + j]);
      if (c == '=') {
        if (!last || j < 4 - pad) {
          wipe(out);
          return std::nullopt;
        }
        v <<= 6;
        continue;
      }
      const int d = base64_value(c);
      if (d < 0) {
        wipe(out);
        return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    if (last && ((pad == 1 && (v & 0xffu) != 0) || (pad == 2 && (v & 0xffffu) != 0))) {
      wipe(out);
      return std::nullopt;  // non-zero pad bits
    }
    out.push_back(static_cast<char>(v >> 16));
    if (!last || pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xff));
    if (!last || pad < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

// ---- hash formats -----------------------------------------------------------------------------

bool is_crypt64(char c) noexcept {
  return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool all_crypt64(std::string_view s) noexcept { return std::all_of(s.begin(), s.end(), is_crypt64); }

bool all_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

constexpr std::string_view kRedo =
    "; hash the password again with bcrypt (htpasswd -B) or SHA-512-crypt (mkpasswd -m sha-512)";
constexpr std::string_view kSupported =
    "supported: bcrypt ($2y$, $2b$, $2a$), yescrypt ($y$), SHA-512-crypt ($6$), SHA-256-crypt ($5$)";

// What load() learns about one hash: either the reason it is refused, or its "cost class" (the
// algorithm and its cost parameters without the salt, e.g. "$2y$10$"), used to pick the stand-in
// hash for unknown users.
struct HashCheck {
  bool ok = false;
  std::string cost_class;
  std::string reason;
};

HashCheck refused(std::string reason) { return HashCheck{false, {}, std::move(reason)}; }
HashCheck accepted(std::string cost_class) { return HashCheck{true, std::move(cost_class), {}}; }

// $2y$NN$ + 22 salt + 31 hash characters.
HashCheck check_bcrypt(std::string_view h) {
  const std::string malformed = "malformed bcrypt hash (expected " + std::string(h.substr(0, 4)) +
                                "NN$ followed by 53 characters of [./0-9A-Za-z])";
  if (h.size() != 60 || h[6] != '$' || !all_digits(h.substr(4, 2)) || !all_crypt64(h.substr(7))) {
    return refused(malformed);
  }
  const int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return refused("bcrypt cost " + std::to_string(cost) + " is out of range (4..31)");
  return accepted(std::string(h.substr(0, 7)));
}

// $5$ or $6$, optional rounds=N$, salt of 1..16 characters, $, 43 (SHA-256) or 86 (SHA-512) characters.
HashCheck check_sha_crypt(std::string_view h) {
  const bool sha512 = h[1] == '6';
  const std::string name = sha512 ? "SHA-512-crypt" : "SHA-256-crypt";
  const std::size_t digest_chars = sha512 ? 86 : 43;
  const std::string malformed = "malformed " + name + " hash (expected " + std::string(h.substr(0, 3)) +
                                "[rounds=N$]salt$ followed by " + std::to_string(digest_chars) +
                                " characters of [./0-9A-Za-z])";
  std::string cost_class(h.substr(0, 3));
  std::string_view rest = h.substr(3);
  constexpr std::string_view kRounds = "rounds=";
  if (rest.substr(0, kRounds.size()) == kRounds) {
    const auto end = rest.find('$');
    if (end == std::string_view::npos) return refused(malformed);
    const auto digits = rest.substr(kRounds.size(), end - kRounds.size());
    if (!all_digits(digits) || digits.size() > 9) return refused(malformed);
    const unsigned long rounds = std::stoul(std::string(digits));
    // libxcrypt clamps rounds to this range and writes the clamped value into its output, so a hash
    // outside it could never match.
    if (rounds < 1000 || rounds > 999999999) {
      return refused(name + " rounds " + std::string(digits) + " out of range (1000..999999999)");
    }
    cost_class += rest.substr(0, end + 1);
    rest.remove_prefix(end + 1);
  }
  const auto dollar = rest.find('$');
  if (dollar == std::string_view::npos) return refused(malformed);
  const auto salt = rest.substr(0, dollar);
  const auto digest = rest.substr(dollar + 1);
  if (salt.empty() || salt.size() > 16 || !all_crypt64(salt) || digest.size() != digest_chars ||
      !all_crypt64(digest)) {
    return refused(malformed);
  }
  return accepted(std::move(cost_class));
}

// $y$params$salt$ + 43 characters.
HashCheck check_yescrypt(std::string_view h) {
  const std::string malformed = "malformed yescrypt hash (expected $y$params$salt$ followed by 43 characters)";
  std::string_view rest = h.substr(3);
  const auto p_end = rest.find('$');
  if (p_end == std::string_view::npos || p_end == 0) return refused(malformed);
  const auto params = rest.substr(0, p_end);
  rest.remove_prefix(p_end + 1);
  const auto s_end = rest.find('$');
  if (s_end == std::string_view::npos || s_end == 0) return refused(malformed);
  const auto salt = rest.substr(0, s_end);
  const auto digest = rest.substr(s_end + 1);
  if (!all_crypt64(params) || !all_crypt64(salt) || digest.size() != 43 || !all_crypt64(digest)) {
    return refused(malformed);
  }
  return accepted("$y$" + std::string(params) + "$");
}

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.substr(0, prefix.size()) == prefix;
}

// Names the scheme of a hash for a message without echoing the hash itself: "$7$", "{SMD5}".
std::string scheme_of(std::string_view h, char close) {
  const auto end = h.find(close, 1);
  if (end == std::string_view::npos || end > 16) return {};
  const auto s = h.substr(0, end + 1);
  if (!std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; })) return {};
  return std::string(s);
}

HashCheck check_hash(std::string_view h) {
  if (h.empty()) return refused("empty password hash");
  if (starts_with(h, "$2y$") || starts_with(h, "$2b$") || starts_with(h, "$2a$")) return check_bcrypt(h);
  if (starts_with(h, "$6$") || starts_with(h, "$5$")) return check_sha_crypt(h);
  if (starts_with(h, "$y$")) return check_yescrypt(h);

  if (starts_with(h, "$apr1$")) return refused("Apache MD5 ($apr1$) hashes are too weak" + std::string(kRedo));
  if (starts_with(h, "$1$")) return refused("MD5-crypt ($1$) hashes are too weak" + std::string(kRedo));
  if (starts_with(h, "$2x$")) {
    return refused("bcrypt $2x$ hashes come from the buggy pre-2011 crypt_blowfish and are refused" +
                   std::string(kRedo));
  }
  if (starts_with(h, "{SHA}")) return refused("unsalted SHA-1 ({SHA}) hashes are too weak" + std::string(kRedo));
  if (starts_with(h, "{SSHA}")) return refused("salted SHA-1 ({SSHA}) hashes are too weak" + std::string(kRedo));
  if (h.size() == 20 && h[0] == '_' && all_crypt64(h.substr(1))) {
    return refused("extended DES crypt (_) hashes are too weak" + std::string(kRedo));
  }
  if (h.size() == 13 && all_crypt64(h)) {
    return refused("traditional DES crypt hashes (13 characters) are too weak and keep only 8 password "
                   "characters; if this is a plaintext password, plaintext is not accepted either" +
                   std::string(kRedo));
  }
  if (h[0] == '$') {
    const auto scheme = scheme_of(h, '$');
    return refused("unsupported hash format" + (scheme.empty() ? std::string() : " \"" + scheme + "\"") + "; " +
                   std::string(kSupported));
  }
  if (h[0] == '{') {
    const auto scheme = scheme_of(h, '}');
    return refused("unsupported hash scheme" + (scheme.empty() ? std::string() : " \"" + scheme + "\"") + "; " +
                   std::string(kSupported));
  }
  return refused("not a password hash: plaintext passwords are not accepted" + std::string(kRedo));
}

// Printable ASCII except space and ':', or UTF-8 bytes.
std::optional<std::string> user_name_problem(std::string_view user) {
  if (user.empty()) return "empty user name";
  if (user.size() > kMaxUserBytes) return "user name longer than " + std::to_string(kMaxUserBytes) + " bytes";
  for (char ch : user) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return std::string("user name contains a space or a control character");
  }
  return std::nullopt;
}

std::atomic<std::uint64_t> next_epoch{1};

// ---- SHA-256 ----------------------------------------------------------------------------------

const EVP_MD* sha256() {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  // Fetch once: implicit fetching on every digest costs a lookup under a lock in OpenSSL 3.
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
#else
  return EVP_sha256();
#endif
}

}  // namespace

// ---- Basic credentials ------------------------------------------------------------------------

std::optional<Credentials> parse_basic_credentials(std::string_view header_value) {
  std::string_view v = trim_ows(header_value);
  constexpr std::string_view kScheme = "basic";
  if (v.size() <= kScheme.size() || !iequals_ascii(v.substr(0, kScheme.size()), kScheme)) return std::nullopt;
  v.remove_prefix(kScheme.size());
  if (v.front() != ' ') return std::nullopt;  // "Basicfoo" or "Basic\t..."
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  constexpr std::size_t kMaxEncoded = (kMaxCredentialBytes + 2) / 3 * 4;
  if (v.empty() || v.size() > kMaxEncoded) return std::nullopt;

  auto decoded = decode_base64_strict(v);
  if (!decoded) return std::nullopt;
  std::optional<Credentials> result;
  const auto colon = decoded->find(':');
  const bool clean = std::none_of(decoded->begin(), decoded->end(),
                                  [](char c) { return is_control(static_cast<unsigned char>(c)); });
  if (decoded->size() <= kMaxCredentialBytes && colon != std::string::npos && colon > 0 &&
      colon <= kMaxUserBytes && clean) {
    result.emplace();
    result->user = decoded->substr(0, colon);
    result->password = decoded->substr(colon + 1);
  }
  wipe(*decoded);
  return result;
}

// ---- verification -----------------------------------------------------------------------------

bool verify(const std::string& stored_hash, std::string_view password) {
  if (password.size() > kMaxCredentialBytes || password.find('\0') != std::string_view::npos) return false;
  if (stored_hash.size() >= CRYPT_OUTPUT_SIZE || !check_hash(stored_hash).ok) return false;

  std::string phrase(password);
  // ~32 KiB: on the heap, never on a (coroutine) stack; value-initialised, as crypt_rn requires.
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_rn(phrase.c_str(), stored_hash.c_str(), data.get(), static_cast<int>(sizeof *data));
  bool ok = false;
  if (out != nullptr && out[0] != '*') {
    const std::size_t n = std::strlen(out);
    ok = n == stored_hash.size() && CRYPTO_memcmp(out, stored_hash.data(), n) == 0;
  }
  OPENSSL_cleanse(data.get(), sizeof *data);
  wipe(phrase);
  return ok;
}

// ---- users file -------------------------------------------------------------------------------

std::string format_error(const UsersFileError& e) {
  if (e.line == 0) return e.file + ": " + e.reason;
  return e.file + ":" + std::to_string(e.line) + ": " + e.reason;
}

UsersLoadResult UsersFile::load(const std::string& path) {
  UsersLoadResult result;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    result.errors.push_back({path, 0, std::string("cannot open users file: ") + std::strerror(errno)});
    return result;
  }
  std::string text;
  char buf[65536];
  bool too_large = false;
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f);
    if (n > 0) {
      if (text.size() + n > kMaxFileBytes) {
        too_large = true;
        break;
      }
      text.append(buf, n);
    }
    if (n < sizeof buf) break;
  }
  const bool read_error = std::ferror(f) != 0;
  const int saved_errno = errno;
  std::fclose(f);
  if (too_large) {
    result.errors.push_back(
        {path, 0, "users file is larger than " + std::to_string(kMaxFileBytes / (1024 * 1024)) + " MiB"});
    return result;
  }
  if (read_error) {
    result.errors.push_back({path, 0, std::string("cannot read users file: ") + std::strerror(saved_errno)});
    return result;
  }
  return parse(text, path);
}

UsersLoadResult UsersFile::parse(std::string_view text, std::string_view file_name) {
  UsersLoadResult result;
  const std::string file(file_name);
  std::size_t dropped_errors = 0;
  auto error = [&](std::size_t line, std::string reason) {
    if (result.errors.size() < kMaxReportedErrors) {
      result.errors.push_back({file, line, std::move(reason)});
    } else {
      ++dropped_errors;
    }
  };

  UsersFile users;
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> first_line;
  struct CostClass {
    std::string name;
    std::string first_hash;
    std::size_t count = 0;
  };
  std::vector<CostClass> classes;  // in file order, so ties go to the first one

  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (starts_with(text, kBom)) text.remove_prefix(kBom.size());

  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = trim_ows(line);
    if (line.empty() || line.front() == '#') continue;

    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      error(line_no, "expected user:hash");
      continue;
    }
    const auto user = line.substr(0, colon);
    const auto hash = line.substr(colon + 1);
    bool bad = false;
    if (auto problem = user_name_problem(user)) {
      error(line_no, *problem);
      bad = true;
    }
    if (hash.find(':') != std::string_view::npos) {
      error(line_no, "more than one ':' (expected user:hash)");
      continue;
    }
    auto checked = check_hash(hash);
    if (!checked.ok) {
      error(line_no, (bad ? std::string() : "user \"" + std::string(user) + "\": ") + checked.reason);
      continue;
    }
    if (bad) continue;
    if (auto it = first_line.find(user); it != first_line.end()) {
      error(line_no, "duplicate user \"" + std::string(user) + "\" (first defined on line " +
                         std::to_string(it->second) + ")");
      continue;
    }
    first_line.emplace(std::string(user), line_no);
    users.users_.emplace(std::string(user), std::string(hash));

    auto cls = std::find_if(classes.begin(), classes.end(),
                            [&](const CostClass& c) { return c.name == checked.cost_class; });
    if (cls == classes.end()) {
      classes.push_back({std::move(checked.cost_class), std::string(hash), 1});
    } else {
      ++cls->count;
    }
  }

  if (dropped_errors > 0) {
    result.errors.push_back({file, 0, std::to_string(dropped_errors) + " more errors not shown"});
  }
  if (!result.errors.empty()) return result;

  const CostClass* best = nullptr;
  for (const auto& c : classes) {
    if (best == nullptr || c.count > best->count) best = &c;
  }
  if (best != nullptr) users.stand_in_hash_ = best->first_hash;
  users.epoch_ = next_epoch.fetch_add(1, std::memory_order_relaxed);
  result.users.emplace(std::move(users));
  return result;
}

CheckResult UsersFile::check(std::string_view user, std::string_view password) const {
  const auto it = users_.find(user);
  if (it == users_.end()) {
    // Same work as for a known user; the outcome is thrown away.
    if (!stand_in_hash_.empty()) (void)verify(stand_in_hash_, password);
    return CheckResult::unknown_user;
  }
  return verify(it->second, password) ? CheckResult::ok : CheckResult::wrong_password;
}

bool UsersFile::contains(std::string_view user) const { return users_.find(user) != users_.end(); }

// ---- credential cache -------------------------------------------------------------------------

std::size_t CredentialCache::KeyHash::operator()(const Key& k) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

CredentialCache::CredentialCache(std::size_t max_entries) : max_entries_(max_entries) {
  if (RAND_bytes(salt_.data(), static_cast<int>(salt_.size())) != 1) {
    throw std::runtime_error("credential cache: RAND_bytes failed");  // startup only
  }
}

std::optional<CredentialCache::Key> CredentialCache::key_for(const Credentials& creds,
                                                             std::uint64_t users_epoch) const {
  unsigned char epoch[8];
  for (int i = 0; i < 8; ++i) epoch[i] = static_cast<unsigned char>(users_epoch >> (8 * i));
  const unsigned char zero = 0;
  Key key{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, salt_.data(), salt_.size()) == 1 &&
                  EVP_DigestUpdate(ctx, epoch, sizeof epoch) == 1 &&
                  EVP_DigestUpdate(ctx, creds.user.data(), creds.user.size()) == 1 &&
                  EVP_DigestUpdate(ctx, &zero, 1) == 1 &&
                  EVP_DigestUpdate(ctx, creds.password.data(), creds.password.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, key.data(), &len) == 1 && len == key.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) return std::nullopt;
  return key;
}

bool CredentialCache::lookup(const Credentials& creds, TimePoint now, std::uint64_t users_epoch, TimePoint* expiry) {
  if (map_.empty()) return false;
  const auto key = key_for(creds, users_epoch);
  if (!key) return false;
  const auto it = map_.find(*key);
  if (it == map_.end()) return false;
  if (now >= it->second->expiry) {
    lru_.erase(it->second);
    map_.erase(it);
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  if (expiry != nullptr) *expiry = it->second->expiry;
  return true;
}

void CredentialCache::insert(const Credentials& creds, TimePoint now, Duration ttl, std::uint64_t users_epoch) {
  if (max_entries_ == 0 || ttl <= Duration::zero()) return;
  const auto key = key_for(creds, users_epoch);
  if (!key) return;
  if (const auto it = map_.find(*key); it != map_.end()) {
    it->second->expiry = now + ttl;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  while (map_.size() >= max_entries_) {
    map_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front(Entry{*key, creds.user, now + ttl});
  map_.emplace(*key, lru_.begin());
}

void CredentialCache::clear() noexcept {
  map_.clear();
  lru_.clear();
}

// ---- failure throttle -------------------------------------------------------------------------

std::size_t FailureThrottle::KeyHash::operator()(const Key& k) const noexcept {
  std::string_view bytes(reinterpret_cast<const char*>(k.data()), k.size());
  return std::hash<std::string_view>{}(bytes);
}

FailureThrottle::FailureThrottle(ThrottleOptions options) : options_(options) {
  options_.v6_prefix_bits = std::min(options_.v6_prefix_bits, 128u);
}

FailureThrottle::Key FailureThrottle::key_for(const IpAddress& client) const noexcept {
  Key key = client.bytes;
  if (client.v4) return key;  // mapped form; one address is one client
  const unsigned bits = options_.v6_prefix_bits;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned first_bit = i * 8;
    if (first_bit >= bits) {
      key[i] = 0;
    } else if (bits - first_bit < 8) {
      key[i] &= static_cast<std::uint8_t>(0xff << (8 - (bits - first_bit)));
    }
  }
  return key;
}

bool FailureThrottle::allow(const IpAddress& client, TimePoint now) {
  if (map_.empty()) return true;
  const auto it = map_.find(key_for(client));
  if (it == map_.end()) return true;
  Entry& e = *it->second;
  if (now < e.blocked_until) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return false;
  }
  if (e.blocked_until != TimePoint::min() || now - e.window_start >= options_.window) {
    // Back-off served, or the counting window is over: nothing left to remember.
    lru_.erase(it->second);
    map_.erase(it);
  }
  return true;
}

void FailureThrottle::record_failure(const IpAddress& client, TimePoint now) {
  if (options_.max_clients == 0 || options_.max_failures == 0) return;
  const Key key = key_for(client);
  auto it = map_.find(key);
  if (it == map_.end()) {
    while (map_.size() >= options_.max_clients) {
      map_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{key, now, 0, TimePoint::min()});
    it = map_.emplace(key, lru_.begin()).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  Entry& e = *it->second;
  if (now < e.blocked_until) return;  // already refused; not counted
  if (e.blocked_until != TimePoint::min() || now - e.window_start >= options_.window) {
    e.window_start = now;
    e.failures = 0;
    e.blocked_until = TimePoint::min();
  }
  if (++e.failures >= options_.max_failures) {
    e.blocked_until = now + options_.backoff;
    e.failures = 0;
  }
}

void FailureThrottle::forget(const IpAddress& client) {
  const auto it = map_.find(key_for(client));
  if (it == map_.end()) return;
  lru_.erase(it->second);
  map_.erase(it);
}

}  // namespace portier::policy
