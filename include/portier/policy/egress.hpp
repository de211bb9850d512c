#pragma once
// Egress, the pure part: which region a request leaves through (decided in policy::decide from the
// facts), the grammar of parameters in the proxy user name, and the rendezvous hash that maps a
// sticky session to an exit so that several portier instances agree without sharing state.
// Which exits of a region are healthy is not known here: the session passes that in.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "portier/core/error.hpp"
#include "portier/core/hash.hpp"

namespace portier::policy {

inline constexpr std::string_view kDirectRegion = "direct";  // built in: no parent, no configuration
inline constexpr std::size_t kMaxUsernameBytes = 256;        // longer proxy user names are refused
inline constexpr std::size_t kMaxParamValueBytes = 64;       // region names and session ids

// ---- parameters in the proxy user name ---------------------------------------------------------
//
// Commercial regional proxies take options in the user name: "alice-region-fi-session-s1-sesstime-10"
// is user "alice" asking for region fi, sticky session s1 for 10 minutes. The password is alice's.
// Grammar: base (SEP key SEP value)*, read from the right: trailing (key, value) pairs whose key is
// one of the configured keys are parameters; the first pair from the right whose key is not a
// parameter key ends them, and everything before it is the base name (so "mary-jane-region-fi" is
// user "mary-jane"). A user name without any parameter key is all base.
struct UsernameGrammar {
  bool enabled = true;
  std::string separator = "-";  // non-empty
  std::string region_key = "region";
  std::string session_key = "session";
  std::string sesstime_key = "sesstime";
};

struct UsernameParams {
  std::string_view base;      // the user the password is checked for
  std::string_view region;    // empty: not given
  std::string_view session;   // empty: not given
  std::optional<unsigned> sesstime_minutes;
};

// Errors (errc::bad_request, Side::downstream) with a message for a 400 that names the problem and
// never echoes the password: user name over kMaxUsernameBytes, a key given twice, an empty value, a
// value over kMaxParamValueBytes or with characters outside [A-Za-z0-9_.], sesstime not a number in
// 1..65535, an empty base ("-region-fi"), an empty piece between separators ("alice--x", "alice-",
// "-alice": also in the base, so a stray separator never passes as part of a name). Values are
// never echoed. With grammar.enabled false (or an empty separator) the whole name is the base; the
// length limit holds either way.
Result<UsernameParams> parse_username(std::string_view username, const UsernameGrammar& grammar);

// ---- regions -------------------------------------------------------------------------------------

// Who may ask for something by user name parameter. Both empty = every authenticated user.
struct Audience {
  std::vector<std::string> users;
  std::vector<std::string> groups;
  bool admits(std::string_view user, const std::vector<std::string>* user_groups) const noexcept;
};

struct EgressPolicy {
  std::string default_region{kDirectRegion};
  // Every region the config defines ("direct" is always known, defined or not), with who may pick it
  // in the user name.
  std::unordered_map<std::string, Audience> regions;
  std::unordered_map<std::string, std::string> user_region;   // user -> default region
  std::vector<std::pair<std::string, std::string>> group_region;  // group -> default region, config order
  UsernameGrammar username;
  Audience username_audience;        // who may use parameters at all
  unsigned session_default_minutes = 10;
  unsigned session_max_minutes = 1440;

  bool knows(std::string_view region) const noexcept;
};

// ---- choosing an exit inside a region ------------------------------------------------------------

// Exits are chosen by weighted rendezvous hashing (core/hash.hpp) of user + session id.
using ExitCandidate = HashCandidate;
using portier::rendezvous_pick;
using portier::stable_hash;

}  // namespace portier::policy
