#include "portier/config/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>
#include <re2/re2.h>

namespace portier::config {
namespace {

// ordered_json keeps members in document order, so errors come out in the order an admin reads them.
using Json = nlohmann::ordered_json;

constexpr std::int64_t kMaxTimeoutMs = 24LL * 60 * 60 * 1000;  // 24 h
constexpr std::size_t kMaxFileBytes = 16 * 1024 * 1024;
constexpr std::size_t kMaxNameLength = 64;
constexpr std::size_t kMaxViaLength = 256;
constexpr std::size_t kMaxHops = 8;  // parent proxies in one chain
constexpr std::size_t kMaxTextLength = 256;    // reason, category, realm, egress
constexpr std::size_t kMaxPatternLength = 4096;  // host and url patterns
constexpr std::size_t kMaxMethodLength = 32;

constexpr const char* kDayNames[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
// Ids decide() uses for its own denials: a rule may not take them, so a log line names one thing.
constexpr const char* kReservedRuleIds[] = {"connect_ports",  "client_network", "sni_mismatch",  "default",
                                            "username",       "egress_params",  "egress_region", "egress_session",
                                            "egress_down"};

std::string escape_pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string child(const std::string& pointer, std::string_view key) {
  return pointer + "/" + escape_pointer_token(key);
}

std::string child(const std::string& pointer, std::size_t index) {
  return pointer + "/" + std::to_string(index);
}

// A value as it appears in the document, quoted and escaped, cut short when long.
std::string show(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string quote(std::string_view s) { return show(Json(std::string(s))); }

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool same_address(const SocketAddress& a, const SocketAddress& b) { return a.ip == b.ip && a.port == b.port; }

bool is_wildcard(const IpAddress& ip) {
  static const IpAddress kAny4 = *IpAddress::parse("0.0.0.0");
  static const IpAddress kAny6 = *IpAddress::parse("::");
  return ip == kAny4 || ip == kAny6;
}

// Records pointers of keys that occur twice in one object while nlohmann parses (it keeps the
// last value silently), so the validator can report them where they are.
class DuplicateKeyTracker {
 public:
  bool on_event(nlohmann::detail::parse_event_t event, const Json& parsed) {
    using E = nlohmann::detail::parse_event_t;
    switch (event) {
      case E::object_start:
        element_begins();
        stack_.push_back(Frame{false, 0, {}, {}});
        break;
      case E::array_start:
        element_begins();
        stack_.push_back(Frame{true, static_cast<std::size_t>(-1), {}, {}});
        break;
      case E::object_end:
      case E::array_end:
        if (!stack_.empty()) stack_.pop_back();
        break;
      case E::key:
        if (!stack_.empty() && parsed.is_string()) {
          Frame& top = stack_.back();
          top.key = parsed.get<std::string>();
          if (!top.keys.insert(top.key).second) duplicates_.insert(path());
        }
        break;
      case E::value:
        element_begins();
        break;
    }
    return true;
  }

  std::set<std::string> take() { return std::move(duplicates_); }

 private:
  struct Frame {
    bool is_array;
    std::size_t index;
    std::string key;
    std::set<std::string> keys;
  };

  void element_begins() {
    if (!stack_.empty() && stack_.back().is_array) ++stack_.back().index;
  }

  std::string path() const {
    std::string p;
    for (const Frame& f : stack_) p = f.is_array ? child(p, f.index) : child(p, f.key);
    return p;
  }

  std::vector<Frame> stack_;
  std::set<std::string> duplicates_;
};

struct Field {
  const char* key;
  std::function<void(const Json&, const std::string&)> check;
};

// Walks the document once, in order, filling Config and collecting every error on the way.
class Validator {
 public:
  explicit Validator(std::set<std::string> duplicate_keys) : duplicates_(std::move(duplicate_keys)) {}

  LoadResult run(const Json& root) {
    Config cfg;
    bool saw_listeners = false;
    scan_declarations(root);
    bool ok = object(root, "", {
      {"workers", [&](const Json& v, const std::string& p) {
         if (auto n = integer(v, p, 0, 256)) cfg.workers = static_cast<unsigned>(*n);
       }},
      {"listeners", [&](const Json& v, const std::string& p) {
         saw_listeners = true;
         listeners(v, p, cfg.listeners);
       }},
      {"access_log", [&](const Json& v, const std::string& p) { access_log(v, p, cfg.access_log); }},
      {"error_log", [&](const Json& v, const std::string& p) {
         object(v, p, {
           {"level", [&](const Json& lv, const std::string& lp) {
              static constexpr const char* kLevels[] = {"debug", "info", "warning", "error"};
              if (auto i = one_of(lv, lp, {"debug", "info", "warning", "error"})) cfg.error_log.level = kLevels[*i];
            }},
         });
       }},
      {"forward", [&](const Json& v, const std::string& p) { forward(v, p, cfg.forward); }},
      {"ssrf", [&](const Json& v, const std::string& p) { ssrf(v, p, cfg.ssrf_allow); }},
      {"timeouts", [&](const Json& v, const std::string& p) { timeouts(v, p, cfg.timeouts); }},
      {"limits", [&](const Json& v, const std::string& p) { limits(v, p, cfg.limits, cfg.traffic); }},
      {"origin_pool", [&](const Json& v, const std::string& p) { origin_pool(v, p, cfg.origin_pool); }},
      {"auth", [&](const Json& v, const std::string& p) { auth(v, p, cfg.auth); }},
      {"lists", [&](const Json& v, const std::string& p) { lists(v, p, cfg.lists); }},
      {"rules", [&](const Json& v, const std::string& p) { rules(v, p, cfg.policy.rules); }},
      {"default_action", [&](const Json& v, const std::string& p) {
         if (auto i = one_of(v, p, {"allow", "deny"})) {
           cfg.policy.default_action = *i == 0 ? policy::Action::allow : policy::Action::deny;
         }
       }},
      {"block_page", [&](const Json& v, const std::string& p) {
         object(v, p, {
           {"template", [&](const Json& tv, const std::string& tp) { file_path(tv, tp, cfg.policy.block_page); }},
         });
       }},
      {"sni", [&](const Json& v, const std::string& p) {
         object(v, p, {
           {"require_match", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, cfg.policy.sni_must_match); }},
           {"wait_ms", [&](const Json& wv, const std::string& wp) {
              if (auto n = integer(wv, wp, 0, 10000)) cfg.policy.sni_wait = std::chrono::milliseconds(*n);
            }},
         });
       }},
      {"time", [&](const Json& v, const std::string& p) { time(v, p, cfg.policy); }},
      {"egress", [&](const Json& v, const std::string& p) { egress(v, p, cfg.egress); }},
      {"reverse", [&](const Json& v, const std::string& p) { reverse(v, p, cfg.reverse); }},
      {"admin", [&](const Json& v, const std::string& p) { admin(v, p, cfg.admin); }},
      {"pac", [&](const Json& v, const std::string& p) { pac(v, p, cfg.pac); }},
    });
    check_route_listeners(cfg);
    check_pac_listeners(cfg);
    if (ok && !saw_listeners) error("", "missing required key \"listeners\"");

    LoadResult r;
    r.errors = std::move(errors_);
    if (r.errors.empty()) r.config = std::move(cfg);
    return r;
  }

 private:
  void error(const std::string& pointer, std::string message) {
    errors_.push_back(ConfigError{pointer, std::move(message)});
  }

  // Checks that v is an object whose keys are all known, and runs each field's check in document order.
  bool object(const Json& v, const std::string& p, std::initializer_list<Field> fields) {
    if (!v.is_object()) {
      error(p, "expected an object, got " + show(v));
      return false;
    }
    for (const auto& [key, value] : v.items()) {
      std::string cp = child(p, key);
      if (duplicates_.erase(cp) != 0) error(cp, "duplicate key " + quote(key) + ": only the last value would be used");
      const Field* f = std::find_if(fields.begin(), fields.end(), [&](const Field& x) { return key == x.key; });
      if (f != fields.end()) {
        f->check(value, cp);
        continue;
      }
      std::string msg = "unknown key " + quote(key);
      const char* best = nullptr;
      std::size_t best_distance = 3;
      for (const Field& x : fields) {
        std::size_t d = edit_distance(key, x.key);
        if (d < best_distance) {
          best = x.key;
          best_distance = d;
        }
      }
      if (best != nullptr) msg += ", did you mean " + quote(best) + "?";
      error(cp, std::move(msg));
    }
    return true;
  }

  std::optional<std::int64_t> integer(const Json& v, const std::string& p, std::int64_t lo, std::int64_t hi) {
    if (!v.is_number_integer()) {
      error(p, "expected an integer, got " + show(v));
      return std::nullopt;
    }
    // lo and hi are never negative here; an unsigned value may exceed int64's range.
    bool in_range = v.is_number_unsigned()
                        ? v.get<std::uint64_t>() >= static_cast<std::uint64_t>(lo) &&
                              v.get<std::uint64_t>() <= static_cast<std::uint64_t>(hi)
                        : v.get<std::int64_t>() >= lo && v.get<std::int64_t>() <= hi;
    if (!in_range) {
      error(p, "expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + show(v));
      return std::nullopt;
    }
    return v.get<std::int64_t>();
  }

  void milliseconds(const Json& v, const std::string& p, std::chrono::milliseconds& out) {
    if (auto n = integer(v, p, 1, kMaxTimeoutMs)) out = std::chrono::milliseconds(*n);
  }

  void boolean(const Json& v, const std::string& p, bool& out) {
    if (!v.is_boolean()) {
      error(p, "expected true or false, got " + show(v));
      return;
    }
    out = v.get<bool>();
  }

  const std::string* string(const Json& v, const std::string& p) {
    if (!v.is_string()) {
      error(p, "expected a string, got " + show(v));
      return nullptr;
    }
    return v.get_ptr<const std::string*>();
  }

  void listeners(const Json& v, const std::string& p, std::vector<Listener>& out) {
    if (!v.is_array()) {
      error(p, "expected an array of listeners, got " + show(v));
      return;
    }
    if (v.empty()) {
      error(p, "expected at least one listener, got []");
      return;
    }
    std::vector<std::pair<std::string, std::string>> names;  // name, pointer of its listener
    for (std::size_t i = 0; i < v.size(); ++i) {
      Listener l;
      l.name = "listener-" + std::to_string(i);
      std::string lp = child(p, i);
      bool named = false;
      bool saw_listen = false;
      std::optional<std::string> saw_redirect;  // its pointer
      bool ok = object(v[i], lp, {
        {"name", [&](const Json& nv, const std::string& np) {
           named = true;  // a bad name is reported once, not again as a clash of the default name
           if (const std::string* s = string(nv, np)) {
             if (valid_name(*s)) {
               l.name = *s;
               check_name(*s, np, lp, names);
             } else {
               error(np, "expected a name of 1 to 64 letters, digits, \".\", \"_\" or \"-\", got " + show(nv));
             }
           }
         }},
        {"listen", [&](const Json& av, const std::string& ap) {
           saw_listen = true;
           listen(av, ap, l.listen);
         }},
        {"mode", [&](const Json& mv, const std::string& mp) {
           if (auto m = one_of(mv, mp, {"forward", "reverse", "redirect"})) l.mode = static_cast<ListenerMode>(*m);
         }},
        {"redirect", [&](const Json& rv, const std::string& rp) {
           saw_redirect = rp;
           object(rv, rp, {
             {"https_port", [&](const Json& nv, const std::string& np) {
                if (auto n = integer(nv, np, 1, 65535)) l.redirect.https_port = static_cast<std::uint16_t>(*n);
              }},
             {"status", [&](const Json& nv, const std::string& np) {
                if (auto n = integer(nv, np, 301, 308); n && (*n == 301 || *n == 302 || *n == 307 || *n == 308)) {
                  l.redirect.status = static_cast<int>(*n);
                } else if (n) {
                  error(np, "expected 301, 302, 307 or 308, got " + show(nv));
                }
              }},
           });
         }},
        {"auth", [&](const Json& av, const std::string& ap) {
           auto m = one_of(av, ap, {"off", "optional", "required"});
           if (!m) return;
           l.auth = *m == 0 ? policy::AuthMode::off : *m == 1 ? policy::AuthMode::optional : policy::AuthMode::required;
           if (*m != 0 && !has_users_file_) {
             error(ap, "auth " + show(av) + " needs \"users_file\" in /auth: there are no users to check credentials against");
           }
         }},
        {"trusted", [&](const Json& tv, const std::string& tp) { cidr_array(tv, tp, true, l.trusted); }},
        {"allow_clients", [&](const Json& cv, const std::string& cp) { cidr_array(cv, cp, false, l.allow_clients); }},
        {"refuse", [&](const Json& rv, const std::string& rp) {
           if (auto m = one_of(rv, rp, {"403", "close"})) {
             l.refuse = *m == 0 ? policy::RefuseMode::forbid : policy::RefuseMode::close;
           }
         }},
        {"tls", [&](const Json& tv, const std::string& tp) { listener_tls(tv, tp, l); }},
      });
      if (!ok) continue;
      if (!saw_listen) error(lp, "missing required key \"listen\"");
      if (saw_redirect && l.mode != ListenerMode::redirect)
        error(*saw_redirect, "only a listener with \"mode\": \"redirect\" redirects");
      if (l.mode != ListenerMode::forward && l.auth != policy::AuthMode::off)
        error(child(lp, "auth"), "proxy authentication applies to forward listeners only");
      if (!named) check_name(l.name, lp, lp, names);
      out.push_back(std::move(l));
    }
  }

  void check_name(const std::string& name, const std::string& pointer, const std::string& listener_pointer,
                  std::vector<std::pair<std::string, std::string>>& names) {
    auto same = std::find_if(names.begin(), names.end(), [&](const auto& n) { return n.first == name; });
    if (same != names.end()) {
      error(pointer, "duplicate listener name " + quote(name) + " (also " + same->second + ")");
    } else {
      names.emplace_back(name, listener_pointer);
    }
  }

  static bool valid_name(const std::string& s) {
    if (s.empty() || s.size() > kMaxNameLength) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
             c == '-';
    });
  }

  // "tls": clients speak TLS to the listener. Either one certificate, {"cert_file": "proxy.crt",
  // "key_file": "proxy.key"}, or {"certificates": [{"cert_file": ..., "key_file": ...}, ...]} where
  // the first is the default and the others are chosen by SNI; optional "ciphers" (TLS 1.2) and
  // "ciphersuites" (TLS 1.3) in OpenSSL's syntax, checked by OpenSSL at compile time.
  void listener_tls(const Json& v, const std::string& p, Listener& l) {
    ListenerTls tls;
    tls.pointer = p;
    Certificate single;
    single.pointer = p;
    bool saw_cert = false, saw_key = false, saw_list = false;
    bool ok = object(v, p, {
      {"cert_file", [&](const Json& fv, const std::string& fp) {
         saw_cert = true;
         file_path(fv, fp, single.cert_file);
       }},
      {"key_file", [&](const Json& fv, const std::string& fp) {
         saw_key = true;
         file_path(fv, fp, single.key_file);
       }},
      {"certificates", [&](const Json& cv, const std::string& cp) {
         saw_list = true;
         certificate_list(cv, cp, tls.certificates);
       }},
      {"ciphers", [&](const Json& cv, const std::string& cp) { cipher_list(cv, cp, tls.ciphers); }},
      {"ciphersuites", [&](const Json& cv, const std::string& cp) { cipher_list(cv, cp, tls.ciphersuites); }},
    });
    if (!ok) return;
    if (saw_list) {
      if (saw_cert || saw_key) {
        error(p, "expected either \"certificates\" or \"cert_file\" and \"key_file\", not both");
      }
    } else if (!saw_cert && !saw_key) {
      error(p, "missing required key \"certificates\" (or \"cert_file\" and \"key_file\")");
    } else {
      if (!saw_cert) error(p, "missing required key \"cert_file\"");
      if (!saw_key) error(p, "missing required key \"key_file\"");
      tls.certificates.push_back(std::move(single));
    }
    l.tls = std::move(tls);
  }

  // "certificates": [{"cert_file": "a.crt", "key_file": "a.key"}, ...], at least one.
  void certificate_list(const Json& v, const std::string& p, std::vector<Certificate>& out) {
    if (!v.is_array()) {
      error(p, "expected an array of {\"cert_file\", \"key_file\"} objects, got " + show(v));
      return;
    }
    if (v.empty()) {
      error(p, "expected at least one certificate, got []");
      return;
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      Certificate c;
      c.pointer = child(p, i);
      bool saw_cert = false, saw_key = false;
      bool ok = object(v[i], c.pointer, {
        {"cert_file", [&](const Json& fv, const std::string& fp) { saw_cert = true; file_path(fv, fp, c.cert_file); }},
        {"key_file", [&](const Json& fv, const std::string& fp) { saw_key = true; file_path(fv, fp, c.key_file); }},
      });
      if (!ok) continue;
      if (!saw_cert) error(c.pointer, "missing required key \"cert_file\"");
      if (!saw_key) error(c.pointer, "missing required key \"key_file\"");
      out.push_back(std::move(c));
    }
  }

  // An OpenSSL cipher list ("ECDHE+AESGCM:ECDHE+CHACHA20", "TLS_AES_256_GCM_SHA384"); whether
  // OpenSSL knows any of it is checked when the config is compiled.
  void cipher_list(const Json& v, const std::string& p, std::string& out) {
    const std::string* s = string(v, p);
    if (s == nullptr) return;
    if (s->empty() || s->size() > kMaxPatternLength || !printable(*s)) {
      error(p, "expected an OpenSSL cipher list such as \"ECDHE+AESGCM:ECDHE+CHACHA20\", got " + show(v));
      return;
    }
    out = *s;
  }

  void listen(const Json& v, const std::string& p, std::vector<SocketAddress>& out) {
    if (!v.is_array()) {
      error(p, "expected an array of \"ip:port\" strings, got " + show(v));
      return;
    }
    if (v.empty()) {
      error(p, "expected at least one \"ip:port\" address, got []");
      return;
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::string ap = child(p, i);
      if (auto addr = listen_address(v[i], ap)) out.push_back(*addr);
    }
  }

  // One address a socket listens on, checked against every other address in the file.
  std::optional<SocketAddress> listen_address(const Json& v, const std::string& p) {
    const std::string* s = string(v, p);
    if (s == nullptr) return std::nullopt;
    auto addr = parse_socket_address(*s);
    if (!addr) {
      error(p, "expected \"ip:port\" or \"[ipv6]:port\" with an IP literal, got " + show(v));
      return std::nullopt;
    }
    check_address_conflicts(*addr, p);
    seen_addresses_.emplace_back(*addr, p);
    return addr;
  }

  // "host" or "host:port" as a Host header value (a name or an IP literal, no scheme or path).
  static bool host_and_port(const std::string& s) {
    return !s.empty() && http::parse_authority(s.find(':') == std::string::npos ? s + ":1" : s).has_value();
  }

  // Two sockets on one address (or one on a wildcard and one on a specific address of the same
  // family and port) cannot both be bound; port 0 picks a fresh port each time, so it never clashes.
  void check_address_conflicts(const SocketAddress& a, const std::string& p) {
    if (a.port == 0) return;
    for (const auto& [b, bp] : seen_addresses_) {
      if (b.port != a.port || b.ip.v4 != a.ip.v4) continue;
      if (same_address(a, b)) {
        error(p, "duplicate listen address " + quote(a.to_string()) + " (also " + bp + ")");
        return;
      }
      if (is_wildcard(a.ip) || is_wildcard(b.ip)) {
        error(p, "listen address " + quote(a.to_string()) + " overlaps " + quote(b.to_string()) + " (" + bp + ")");
        return;
      }
    }
  }

  void access_log(const Json& v, const std::string& p, AccessLog& out) {
    object(v, p, {
      {"path", [&](const Json& pv, const std::string& pp) {
         if (const std::string* s = string(pv, pp)) {
           if (s->empty() || s->find('\0') != std::string::npos) {
             error(pp, "expected \"-\" (stdout), \"off\" or a file path, got " + show(pv));
           } else {
             out.path = *s;
           }
         }
       }},
      {"log_query", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, out.log_query); }},
    });
  }

  void forward(const Json& v, const std::string& p, Forward& out) {
    object(v, p, {
      {"via", [&](const Json& vv, const std::string& vp) {
         if (vv.is_boolean() && !vv.get<bool>()) {
           out.via.clear();
         } else if (!vv.is_string()) {
           error(vp, "expected a string or false, got " + show(vv));
         } else if (!valid_via(vv.get_ref<const std::string&>())) {
           error(vp, "expected printable text of at most " + std::to_string(kMaxViaLength) +
                         " characters (it becomes a header value), got " + show(vv));
         } else {
           out.via = vv.get<std::string>();
         }
       }},
      {"x_forwarded_for", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, out.x_forwarded_for); }},
      {"connect_ports", [&](const Json& cv, const std::string& cp) { connect_ports(cv, cp, out.connect_ports); }},
    });
  }

  static bool valid_via(const std::string& s) {
    if (s.size() > kMaxViaLength) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return u >= 0x20 && u != 0x7f;  // no CR, LF or other controls: no header injection
    });
  }

  void connect_ports(const Json& v, const std::string& p, std::vector<policy::PortRange>& out) {
    if (!v.is_array()) {
      error(p, "expected an array of ports (443) or port ranges (\"8000-8100\"), got " + show(v));
      return;
    }
    std::vector<policy::PortRange> ranges;
    bool ok = true;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (auto r = port_entry(v[i], child(p, i))) {
        ranges.push_back(*r);
      } else {
        ok = false;
      }
    }
    if (ok) out = std::move(ranges);
  }

  // 443 or "8000-8100".
  std::optional<policy::PortRange> port_entry(const Json& e, const std::string& ep) {
    if (e.is_number_integer()) {
      auto n = integer(e, ep, 1, 65535);
      if (!n) return std::nullopt;
      auto port = static_cast<std::uint16_t>(*n);
      return policy::PortRange{port, port};
    }
    if (e.is_string()) {
      if (auto r = parse_port_range(e.get_ref<const std::string&>())) return r;
    }
    error(ep, "expected a port 1..65535 or a range \"a-b\" with 1 <= a <= b <= 65535, got " + show(e));
    return std::nullopt;
  }

  static std::optional<std::uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v < 1 || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
  }

  // "8443" or "8000-8100".
  static std::optional<policy::PortRange> parse_port_range(std::string_view s) {
    auto dash = s.find('-');
    auto first = parse_port(s.substr(0, dash));
    if (!first) return std::nullopt;
    if (dash == std::string_view::npos) return policy::PortRange{*first, *first};
    auto last = parse_port(s.substr(dash + 1));
    if (!last || *last < *first) return std::nullopt;
    return policy::PortRange{*first, *last};
  }

  void ssrf(const Json& v, const std::string& p, std::vector<Cidr>& out) {
    object(v, p, {
      {"allow", [&](const Json& av, const std::string& ap) { cidr_array(av, ap, true, out); }},
    });
  }

  void cidr_array(const Json& v, const std::string& p, bool allow_empty, std::vector<Cidr>& out) {
    if (!v.is_array()) {
      error(p, "expected an array of CIDR ranges, got " + show(v));
      return;
    }
    if (v.empty() && !allow_empty) {
      error(p, "expected at least one CIDR range (leave the key out to admit every client), got []");
      return;
    }
    std::vector<Cidr> ranges;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (auto c = cidr(v[i], child(p, i))) ranges.push_back(*c);
    }
    out = std::move(ranges);
  }

  std::optional<Cidr> cidr(const Json& v, const std::string& p) {
    std::optional<Cidr> c;
    if (v.is_string()) c = Cidr::parse(v.get_ref<const std::string&>());
    if (!c) error(p, "expected a CIDR range like \"10.0.0.0/8\" or an IP address, got " + show(v));
    return c;
  }

  void timeouts(const Json& v, const std::string& p, Timeouts& out) {
    auto ms = [this](std::chrono::milliseconds& field) {
      return [this, &field](const Json& tv, const std::string& tp) { milliseconds(tv, tp, field); };
    };
    object(v, p, {
      {"header_ms", ms(out.header)},
      {"keepalive_ms", ms(out.keepalive)},
      {"connect_ms", ms(out.connect)},
      {"response_ms", ms(out.response)},
      {"tunnel_idle_ms", ms(out.tunnel_idle)},
      {"shutdown_grace_ms", ms(out.shutdown_grace)},
    });
  }

  void limits(const Json& v, const std::string& p, http::Limits& out, TrafficLimits& traffic) {
    std::optional<std::string> url_pointer;
    bool header_ok = true;
    bool ok = object(v, p, {
      {"max_connections", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 0, 10'000'000)) traffic.max_connections = static_cast<std::size_t>(*n);
       }},
      {"max_connections_per_client", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 0, 10'000'000)) traffic.max_connections_per_client = static_cast<std::size_t>(*n);
       }},
      {"per_user", [&](const Json& nv, const std::string& np) { per_user_limits(nv, np, traffic); }},
      {"log_interval_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, traffic.log_interval); }},
      {"max_header_bytes", [&](const Json& nv, const std::string& np) {
         auto n = integer(nv, np, 1024, 1024 * 1024);
         if (n) out.max_header_bytes = static_cast<std::size_t>(*n);
         header_ok = n.has_value();
       }},
      {"max_url_bytes", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1, 1024 * 1024)) {
           out.max_url_bytes = static_cast<std::size_t>(*n);
           url_pointer = np;
         }
       }},
      {"max_headers", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1, 10000)) out.max_headers = static_cast<std::size_t>(*n);
       }},
    });
    if (!ok || !header_ok || out.max_url_bytes <= out.max_header_bytes) return;
    if (url_pointer) {
      error(*url_pointer, "expected at most max_header_bytes (" + std::to_string(out.max_header_bytes) + "), got " +
                              std::to_string(out.max_url_bytes));
    } else {
      out.max_url_bytes = out.max_header_bytes;  // the default must not exceed a smaller head limit
    }
  }

  // "per_user": {"requests_per_second": 10, "burst": 20, "bytes_per_second": 1048576,
  //              "burst_bytes": 1048576, "exempt_groups": ["admins"]}
  void per_user_limits(const Json& v, const std::string& p, TrafficLimits& out) {
    std::optional<std::string> burst_pointer, burst_bytes_pointer;
    object(v, p, {
      {"requests_per_second", [&](const Json& nv, const std::string& np) {
         if (!nv.is_number() || nv.get<double>() < 0 || nv.get<double>() > 1e6) {
           error(np, "expected a number of requests per second in 0..1000000 (0.5 = one every 2 s), got " + show(nv));
           return;
         }
         out.requests_per_second = nv.get<double>();
       }},
      {"burst", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1, 1'000'000)) {
           out.request_burst = static_cast<double>(*n);
           burst_pointer = np;
         }
       }},
      {"bytes_per_second", [&](const Json& nv, const std::string& np) {
         // Below 1 KiB/s a single TLS record would pause a transfer for many seconds.
         if (nv.is_number_integer() && nv.get<std::int64_t>() == 0) {
           out.bytes_per_second = 0;
         } else if (auto n = integer(nv, np, 1024, std::int64_t{1} << 40)) {
           out.bytes_per_second = static_cast<std::uint64_t>(*n);
         }
       }},
      {"burst_bytes", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1024, std::int64_t{1} << 40)) {
           out.burst_bytes = static_cast<std::uint64_t>(*n);
           burst_bytes_pointer = np;
         }
       }},
      {"exempt_groups", [&](const Json& nv, const std::string& np) {
         strings(nv, np, out.exempt_groups, [&](const Json& e, const std::string& ep) { return group_ref(e, ep); });
       }},
    });
    if (burst_pointer && out.requests_per_second == 0) error(*burst_pointer, "burst needs requests_per_second");
    if (burst_bytes_pointer && out.bytes_per_second == 0) error(*burst_bytes_pointer, "burst_bytes needs bytes_per_second");
    if (out.request_burst == 0) out.request_burst = std::max(1.0, out.requests_per_second);
    if (out.burst_bytes == 0) out.burst_bytes = out.bytes_per_second;
  }

  void origin_pool(const Json& v, const std::string& p, OriginPool& out) {
    object(v, p, {
      {"max_idle_per_host", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 0, 4096)) out.max_idle_per_host = static_cast<std::size_t>(*n);
       }},
      {"max_idle_total", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 0, 1000000)) out.max_idle_total = static_cast<std::size_t>(*n);
       }},
      {"idle_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.idle); }},
    });
  }

  void admin(const Json& v, const std::string& p, Admin& out) {
    out.enabled = true;
    out.listen = *parse_socket_address("127.0.0.1:9090");
    bool saw_listen = false;
    object(v, p, {
      {"listen", [&](const Json& lv, const std::string& lp) {
         saw_listen = true;
         if (auto addr = listen_address(lv, lp)) out.listen = *addr;
       }},
      {"token", [&](const Json& tv, const std::string& tp) {
         const std::string* s = string(tv, tp);
         if (s == nullptr) return;
         if (s->size() < 16 || s->size() > 256 || !printable(*s) || s->find(' ') != std::string::npos) {
           error(tp, "expected a token of 16 to 256 printable characters without spaces");  // never echo a secret
           return;
         }
         out.token = *s;
       }},
    });
    if (!saw_listen) {  // the default address must not clash with a listener either
      check_address_conflicts(out.listen, p);
      seen_addresses_.emplace_back(out.listen, p);
    }
  }

  // ---- pac: the proxy auto-config script ---------------------------------------------------
  void pac(const Json& v, const std::string& p, Pac& out) {
    object(v, p, {
      {"path", [&](const Json& pv, const std::string& pp) {
         const std::string* s = string(pv, pp);
         if (s == nullptr) return;
         const bool ok = s->size() >= 2 && s->size() <= kMaxTextLength && s->front() == '/' &&
                         std::all_of(s->begin(), s->end(), [](char c) {
                           return c > 0x20 && c < 0x7f && c != '?' && c != '#' && c != '%';
                         });
         if (!ok) {
           error(pp, "expected a path such as \"/proxy.pac\" or \"/wpad.dat\" (no query, no escapes), got " + show(pv));
         } else if (*s == "/healthz" || *s == "/readyz" || *s == "/metrics" || *s == "/config" || *s == "/reload") {
           error(pp, quote(*s) + " is an admin endpoint's path");
         } else {
           out.path = *s;
         }
       }},
      {"listeners", [&](const Json& lv, const std::string& lp) {
         if (lv.is_boolean()) {
           out.all_listeners = lv.get<bool>();
           return;
         }
         if (!lv.is_array()) {
           error(lp, "expected true, false or an array of forward listener names, got " + show(lv));
           return;
         }
         for (std::size_t i = 0; i < lv.size(); ++i) {
           if (const std::string* s = string(lv[i], child(lp, i))) out.listeners.push_back(*s);
         }
         pac_listeners_pointer_ = lp;
       }},
      {"proxy", [&](const Json& xv, const std::string& xp) {
         if (xv.is_string()) {
           if (auto x = pac_proxy(xv, xp)) out.proxies.push_back(*x);
           return;
         }
         if (!xv.is_array() || xv.empty() || xv.size() > 16) {
           error(xp, "expected \"host:port\" or an array of 1 to 16 of them (tried in order), got " + show(xv));
           return;
         }
         for (std::size_t i = 0; i < xv.size(); ++i) {
           if (auto x = pac_proxy(xv[i], child(xp, i))) out.proxies.push_back(*x);
         }
       }},
      {"direct", [&](const Json& dv, const std::string& dp) { pac_direct(dv, dp, out.rules); }},
      {"direct_plain_hosts", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, out.rules.plain_hosts); }},
      {"direct_private", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, out.rules.private_networks); }},
      {"fallback_direct", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, out.rules.fallback_direct); }},
    });
  }

  // "proxy.corp.example:3128" or "http://..." (PROXY), "https://proxy.corp.example:3129" (HTTPS).
  std::optional<policy::PacProxy> pac_proxy(const Json& v, const std::string& p) {
    const std::string* s = string(v, p);
    if (s == nullptr) return std::nullopt;
    std::string_view t = *s;
    policy::PacProxy out;
    if (t.starts_with("https://")) {
      out.https = true;
      t.remove_prefix(8);
    } else if (t.starts_with("http://")) {
      t.remove_prefix(7);
    }
    if (t.find('@') != std::string_view::npos) {
      error(p, "a PAC cannot carry proxy credentials (browsers ask the user for them); give \"host:port\"");
      return std::nullopt;
    }
    auto a = http::parse_authority(t);
    if (!a) {
      error(p, "expected \"host:port\", \"http://host:port\" or \"https://host:port\" (the address browsers use), got " +
                   show(v));
      return std::nullopt;
    }
    out.address = a->to_string();
    return out;
  }

  // "corp.example" (and subdomains), "*.corp.example" (subdomains), "intranet", "10.0.0.0/8", "10.1.2.3".
  void pac_direct(const Json& v, const std::string& p, policy::PacRules& out) {
    constexpr std::size_t kMaxEntries = 10000;
    if (!v.is_array() || v.size() > kMaxEntries) {
      error(p, "expected an array of at most " + std::to_string(kMaxEntries) +
                   " domains (\"corp.example\", \"*.corp.example\") and IPv4 ranges (\"10.0.0.0/8\"), got " + show(v));
      return;
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string ep = child(p, i);
      const std::string* s = string(v[i], ep);
      if (s == nullptr) continue;
      if (s->find('/') != std::string::npos || IpAddress::parse(*s)) {
        auto c = Cidr::parse(*s);
        if (!c) {
          error(ep, "expected an IPv4 range like \"10.0.0.0/8\" or an IPv4 address, got " + show(v[i]));
        } else if (!c->base.v4) {
          error(ep, "a PAC can check only IPv4 ranges (isInNet), got " + show(v[i]));
        } else {
          out.networks.push_back(*c);
        }
        continue;
      }
      std::string_view name = *s;
      const bool wildcard = name.starts_with("*.");
      if (wildcard) name.remove_prefix(2);
      if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
      std::string host;
      if (name.find(':') == std::string_view::npos) {
        if (auto a = http::parse_authority(std::string(name) + ":1")) host = a->host;
      }
      if (host.empty() || host.back() == '.') {
        error(ep, "expected a domain (\"corp.example\"), a wildcard (\"*.corp.example\"), a host name (\"intranet\") "
                  "or an IPv4 range (\"10.0.0.0/8\"), got " + show(v[i]));
        continue;
      }
      (wildcard ? out.subdomains : out.domains).push_back(std::move(host));
    }
  }

  // "pac.listeners" may name only forward listeners.
  void check_pac_listeners(const Config& cfg) {
    for (std::size_t i = 0; i < cfg.pac.listeners.size(); ++i) {
      const std::string& name = cfg.pac.listeners[i];
      const std::string np = child(pac_listeners_pointer_, i);
      auto l = std::find_if(cfg.listeners.begin(), cfg.listeners.end(), [&](const Listener& x) { return x.name == name; });
      if (l == cfg.listeners.end()) {
        if (!declared(declared_listeners_, name))
          error(np, "unknown listener " + quote(name) + "; the listeners are " + join_quoted(declared_listeners_));
      } else if (l->mode != ListenerMode::forward) {
        error(np, "listener " + quote(name) + " is not a forward listener: only browsers' proxies serve the PAC");
      }
    }
  }

  // ---- reverse: routes and pools --------------------------------------------------------------
  void reverse(const Json& v, const std::string& p, Reverse& out) {
    object(v, p, {
      {"trusted_proxies", [&](const Json& tv, const std::string& tp) { cidr_array(tv, tp, true, out.trusted_proxies); }},
      {"routes", [&](const Json& rv, const std::string& rp) {
         if (!rv.is_array()) {
           error(rp, "expected an array of routes, got " + show(rv));
           return;
         }
         for (std::size_t i = 0; i < rv.size(); ++i) {
           RouteConfig r;
           r.pointer = child(rp, i);
           r.name = r.pointer;
           if (route(rv[i], r.pointer, r)) out.routes.push_back(std::move(r));
         }
       }},
      {"pools", [&](const Json& pv, const std::string& pp) {
         named_members(pv, pp, "pools", [&](const std::string& name, const Json& value, const std::string& np) {
           PoolConfig pool;
           pool.name = name;
           pool.pointer = np;
           if (this->pool(value, np, pool)) out.pools.push_back(std::move(pool));
         });
       }},
    });
  }

  bool route(const Json& v, const std::string& p, RouteConfig& r) {
    const std::size_t before = errors_.size();
    bool saw_pool = false;
    bool ok = object(v, p, {
      {"name", [&](const Json& nv, const std::string& np) {
         if (const std::string* s = string(nv, np)) {
           if (valid_name(*s)) r.name = *s;
           else error(np, "expected a name of 1 to 64 letters, digits, \".\", \"_\" or \"-\", got " + show(nv));
         }
       }},
      {"host", [&](const Json& hv, const std::string& hp) {
         const std::string* s = string(hv, hp);
         if (s == nullptr) return;
         std::string_view name(*s);
         if (name.starts_with("*.")) name.remove_prefix(2);
         if (!name.empty() && http::parse_authority(std::string(name) + ":1")) {
           r.host = *s;
         } else {
           error(hp, "expected a host name (\"app.example\") or a wildcard (\"*.example.com\"), got " + show(hv));
         }
       }},
      {"path", [&](const Json& pv, const std::string& pp) {
         const std::string* s = string(pv, pp);
         if (s == nullptr) return;
         if (s->empty() || s->front() != '/' || s->find_first_of("?# \t\r\n") != std::string::npos) {
           error(pp, "expected a path prefix starting with \"/\", got " + show(pv));
         } else {
           r.path = *s;
         }
       }},
      {"path_regex", [&](const Json& rv, const std::string& rp) { pattern(rv, rp, r.path_regex); }},
      {"pool", [&](const Json& pv, const std::string& pp) {
         saw_pool = true;
         const std::string* s = string(pv, pp);
         if (s == nullptr) return;
         if (declared(declared_pools_, *s)) {
           r.pool = *s;
         } else {
           error(pp, "unknown pool " + quote(*s) + (declared_pools_.empty() ? "; declare it in /reverse/pools"
                                                                            : "; the pools are " + join_quoted(declared_pools_)));
         }
       }},
      {"listeners", [&](const Json& lv, const std::string& lp) {
         strings(lv, lp, r.listeners, [&](const Json& e, const std::string&) { return e.get<std::string>(); });
         route_listener_pointers_.push_back({lp, r.listeners, lv.is_string()});
       }},
      {"host_header", [&](const Json& hv, const std::string& hp) {
         const std::string* s = string(hv, hp);
         if (s == nullptr) return;
         if (*s == "preserve") {
           r.host_header = HostHeader::preserve;
         } else if (*s == "backend") {
           r.host_header = HostHeader::backend;
         } else if (host_and_port(*s)) {
           r.host_header = HostHeader::fixed;
           r.host_value = *s;
         } else {
           error(hp, "expected \"preserve\", \"backend\" or a host[:port] to send, got " + show(hv));
         }
       }},
      {"strip_prefix", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, r.strip_prefix); }},
      {"connect_timeout_ms", [&](const Json& nv, const std::string& np) {
         std::chrono::milliseconds ms{};
         milliseconds(nv, np, ms);
         if (ms.count() > 0) r.connect_timeout = ms;
       }},
      {"response_timeout_ms", [&](const Json& nv, const std::string& np) {
         std::chrono::milliseconds ms{};
         milliseconds(nv, np, ms);
         if (ms.count() > 0) r.response_timeout = ms;
       }},
    });
    if (ok && !saw_pool) error(p, "missing required key \"pool\"");
    return ok && errors_.size() == before;
  }

  bool pool(const Json& v, const std::string& p, PoolConfig& out) {
    const std::size_t before = errors_.size();
    bool saw_backends = false;
    std::optional<std::string> balance_pointer;
    bool ok = object(v, p, {
      {"balance", [&](const Json& bv, const std::string& bp) {
         balance_pointer = bp;
         if (auto m = one_of(bv, bp, {"round_robin", "least_conn", "weighted", "hash_client", "hash_header"}))
           out.balance = static_cast<PoolBalance>(*m);
       }},
      {"hash_header", [&](const Json& hv, const std::string& hp) {
         const std::string* s = string(hv, hp);
         if (s == nullptr) return;
         if (s->empty() || s->size() > 64 || !std::all_of(s->begin(), s->end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
             })) {
           error(hp, "expected a header name, got " + show(hv));
         } else {
           out.hash_header = *s;
         }
       }},
      {"backends", [&](const Json& bv, const std::string& bp) {
         saw_backends = true;
         if (!bv.is_array() || bv.empty()) {
           error(bp, "expected a non-empty array of backends (\"host:port\" or {\"address\": ...}), got " + show(bv));
           return;
         }
         for (std::size_t i = 0; i < bv.size(); ++i) {
           BackendConfig b;
           if (backend(bv[i], child(bp, i), b)) out.backends.push_back(std::move(b));
         }
         for (std::size_t i = 0; i < out.backends.size(); ++i) {
           for (std::size_t j = 0; j < i; ++j) {
             if (out.backends[i].address == out.backends[j].address)
               error(out.backends[i].pointer, "duplicate backend " + quote(out.backends[i].address) + " (also " +
                                                  out.backends[j].pointer + ")");
           }
         }
       }},
      {"health", [&](const Json& hv, const std::string& hp) { health_check(hv, hp, out.health); }},
      {"passive", [&](const Json& pv, const std::string& pp) {
         object(pv, pp, {
           {"fail_after", [&](const Json& nv, const std::string& np) {
              if (auto n = integer(nv, np, 1, 1000)) out.fail_after = static_cast<unsigned>(*n);
            }},
           {"down_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.down_for); }},
         });
       }},
    });
    if (!ok) return false;
    if (!saw_backends) error(p, "missing required key \"backends\"");
    if (out.balance == PoolBalance::hash_header && out.hash_header.empty())
      error(balance_pointer.value_or(p), "balance \"hash_header\" needs \"hash_header\": the header to hash");
    if (out.balance != PoolBalance::hash_header && !out.hash_header.empty())
      error(child(p, "hash_header"), "only balance \"hash_header\" hashes a header");
    if (saw_backends && !out.backends.empty() &&
        std::all_of(out.backends.begin(), out.backends.end(), [](const BackendConfig& b) { return b.weight == 0; }))
      error(child(p, "backends"), "every backend has weight 0: none would ever be chosen");
    return errors_.size() == before;
  }

  bool backend(const Json& v, const std::string& p, BackendConfig& b) {
    const std::size_t before = errors_.size();
    b.pointer = p;
    const Json* address = &v;
    std::string address_pointer = p;
    if (v.is_object()) {
      if (!v.contains("address")) {
        error(p, "missing required key \"address\"");
        return false;
      }
      address = &v["address"];
      address_pointer = child(p, "address");
    }
    const std::string* s = string(*address, address_pointer);
    if (s == nullptr) return false;
    auto authority = http::parse_authority(*s);
    if (!authority) {
      error(address_pointer, "expected a backend \"host:port\", got " + show(*address));
      return false;
    }
    b.url.scheme = http::ProxyScheme::http;
    b.url.authority = std::move(*authority);
    b.address = b.url.authority.to_string();
    b.url.tls.pointer = p;
    if (v.is_object()) {
      object(v, p, {
        {"address", [](const Json&, const std::string&) {}},
        {"weight", [&](const Json& nv, const std::string& np) {
           if (auto n = integer(nv, np, 0, 1000)) b.weight = static_cast<unsigned>(*n);
         }},
        {"tls", [&](const Json& tv, const std::string& tp) {
           b.url.tls.pointer = tp;
           if (tv.is_boolean()) {
             if (tv.get<bool>()) b.url.scheme = http::ProxyScheme::https;
             return;
           }
           b.url.scheme = http::ProxyScheme::https;
           object(tv, tp, {
             {"ca_file", [&](const Json& fv, const std::string& fp) { file_path(fv, fp, b.url.tls.ca_file); }},
             {"verify", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, b.url.tls.verify); }},
             {"server_name", [&](const Json& nv, const std::string& np) {
                const std::string* n = string(nv, np);
                if (n == nullptr) return;
                if (n->empty() || n->size() > 253 || n->find_first_of(" /\\\r\n\t:") != std::string::npos) {
                  error(np, "expected a host name, got " + show(nv));
                } else {
                  b.url.tls.server_name = *n;
                }
              }},
           });
         }},
      });
    }
    return errors_.size() == before;
  }

  void health_check(const Json& v, const std::string& p, HealthCheckConfig& out) {
    out.enabled = true;
    bool saw_path = false;
    bool ok = object(v, p, {
      {"path", [&](const Json& pv, const std::string& pp) {
         saw_path = true;
         const std::string* s = string(pv, pp);
         if (s == nullptr) return;
         if (s->empty() || s->front() != '/' || s->find_first_of(" \t\r\n") != std::string::npos) {
           error(pp, "expected a path starting with \"/\", got " + show(pv));
         } else {
           out.path = *s;
         }
       }},
      {"host", [&](const Json& hv, const std::string& hp) {
         const std::string* s = string(hv, hp);
         if (s == nullptr) return;
         if (host_and_port(*s)) {
           out.host = *s;
         } else {
           error(hp, "expected a host[:port] for the Host header, got " + show(hv));
         }
       }},
      {"interval_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.interval); }},
      {"timeout_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.timeout); }},
      {"expect", [&](const Json& ev, const std::string& ep) {
         const std::string* s = string(ev, ep);
         if (s == nullptr) return;
         int lo = 0, hi = 0;
         char dash = 0;
         int consumed = 0;
         bool parsed = std::sscanf(s->c_str(), "%3d%c%3d%n", &lo, &dash, &hi, &consumed) == 3 && dash == '-' &&
                       static_cast<std::size_t>(consumed) == s->size();
         if (!parsed && std::sscanf(s->c_str(), "%3d%n", &lo, &consumed) == 1 &&
             static_cast<std::size_t>(consumed) == s->size()) {
           hi = lo;
           parsed = true;
         }
         if (!parsed || lo < 100 || hi > 599 || lo > hi) {
           error(ep, "expected a status or a range of statuses such as \"200-399\", got " + show(ev));
           return;
         }
         out.expect_low = lo;
         out.expect_high = hi;
       }},
      {"rise", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1, 100)) out.rise = static_cast<unsigned>(*n);
       }},
      {"fall", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1, 100)) out.fall = static_cast<unsigned>(*n);
       }},
    });
    if (ok && !saw_path) error(p, "missing required key \"path\"");
  }

  // Routes may name listeners declared anywhere; each must be a reverse listener.
  void check_route_listeners(const Config& cfg) {
    for (const auto& [pointer, names, single] : route_listener_pointers_) {
      for (std::size_t i = 0; i < names.size(); ++i) {
        auto l = std::find_if(cfg.listeners.begin(), cfg.listeners.end(),
                              [&](const Listener& x) { return x.name == names[i]; });
        std::string np = single ? pointer : child(pointer, i);
        if (l == cfg.listeners.end()) {
          if (!declared(declared_listeners_, names[i]))
            error(np, "unknown listener " + quote(names[i]) + "; the listeners are " + join_quoted(declared_listeners_));
        } else if (l->mode != ListenerMode::reverse) {
          error(np, "listener " + quote(names[i]) + " is not a reverse listener (\"mode\": \"reverse\")");
        }
      }
    }
  }

  // ---- names declared anywhere in the document ------------------------------------------------
  // Rules may come before the lists, groups and listeners they name, so the names are collected
  // first. Anything written as a name counts, even if its declaration has errors of its own: those
  // are reported there, not again at every reference.
  void scan_declarations(const Json& root) {
    if (!root.is_object()) return;
    if (auto it = root.find("listeners"); it != root.end() && it->is_array()) {
      for (std::size_t i = 0; i < it->size(); ++i) {
        const Json& l = (*it)[i];
        if (!l.is_object()) continue;
        auto name = l.find("name");
        if (name == l.end()) {
          declared_listeners_.push_back("listener-" + std::to_string(i));
        } else if (name->is_string()) {
          declared_listeners_.push_back(name->get<std::string>());
        }
      }
    }
    if (auto it = root.find("auth"); it != root.end() && it->is_object()) {
      has_users_file_ = it->contains("users_file");
      if (auto g = it->find("groups"); g != it->end() && g->is_object()) {
        for (const auto& [key, value] : g->items()) declared_groups_.push_back(key);
      }
    }
    if (auto it = root.find("lists"); it != root.end() && it->is_object()) {
      for (const auto& [key, value] : it->items()) declared_lists_.push_back(key);
    }
    if (auto it = root.find("reverse"); it != root.end() && it->is_object()) {
      if (auto pools = it->find("pools"); pools != it->end() && pools->is_object()) {
        for (const auto& [key, value] : pools->items()) declared_pools_.push_back(key);
      }
    }
    declared_regions_.emplace_back(policy::kDirectRegion);
    if (auto it = root.find("egress"); it != root.end() && it->is_object()) {
      if (auto r = it->find("regions"); r != it->end() && r->is_object()) {
        for (const auto& [key, value] : r->items()) declared_regions_.push_back(key);
      }
    }
  }

  // A reference to a region: "direct" or one defined in /egress/regions.
  std::optional<std::string> region_ref(const Json& v, const std::string& p) {
    const std::string* s = string(v, p);
    if (s == nullptr) return std::nullopt;
    if (declared(declared_regions_, *s)) return *s;
    error(p, "unknown region " + quote(*s) + "; the regions are " + join_quoted(declared_regions_));
    return std::nullopt;
  }

  static std::string join_quoted(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (i > 0) out += ", ";
      out += quote(names[i]);
    }
    return out;
  }

  static bool declared(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  }

  // ---- small value checks ---------------------------------------------------------------------
  // The index of v among options, or an error listing them.
  std::optional<std::size_t> one_of(const Json& v, const std::string& p, std::initializer_list<const char*> options) {
    if (v.is_string()) {
      std::size_t i = 0;
      for (const char* o : options) {
        if (v.get_ref<const std::string&>() == o) return i;
        ++i;
      }
    }
    std::string expected;
    std::size_t i = 0;
    for (const char* o : options) {
      if (i > 0) expected += i + 1 == options.size() ? " or " : ", ";
      expected += quote(o);
      ++i;
    }
    error(p, "expected " + expected + ", got " + show(v));
    return std::nullopt;
  }

  void file_path(const Json& v, const std::string& p, std::string& out) {
    const std::string* s = string(v, p);
    if (s == nullptr) return;
    if (s->empty() || s->find('\0') != std::string::npos) {
      error(p, "expected a file path, got " + show(v));
      return;
    }
    out = *s;
  }

  static bool printable(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return u >= 0x20 && u != 0x7f;  // UTF-8 passes as bytes
    });
  }

  // reason, category: shown on the block page and logged.
  void text(const Json& v, const std::string& p, std::string& out) {
    const std::string* s = string(v, p);
    if (s == nullptr) return;
    if (s->size() > kMaxTextLength || !printable(*s)) {
      error(p, "expected printable text of at most " + std::to_string(kMaxTextLength) + " characters, got " + show(v));
      return;
    }
    out = *s;
  }

  // The user names an htpasswd file can hold (policy/users.hpp): printable ASCII other than space
  // and ':', or UTF-8.
  static bool valid_user(const std::string& s) {
    if (s.empty() || s.size() > policy::kMaxUserBytes) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return u > 0x20 && u != 0x7f && c != ':';
    });
  }

  std::optional<std::string> user_name(const Json& v, const std::string& p) {
    if (v.is_string() && valid_user(v.get_ref<const std::string&>())) return v.get<std::string>();
    error(p, "expected a user name of 1 to " + std::to_string(policy::kMaxUserBytes) +
                 " bytes without spaces, \":\" or control characters, got " + show(v));
    return std::nullopt;
  }

  // ---- auth -----------------------------------------------------------------------------------
  void auth(const Json& v, const std::string& p, Auth& out) {
    object(v, p, {
      {"realm", [&](const Json& rv, const std::string& rp) {
         const std::string* s = string(rv, rp);
         if (s == nullptr) return;
         // It is sent as realm="..." in Proxy-Authenticate: no quotes, backslashes or controls.
         if (s->empty() || s->size() > kMaxTextLength || !printable(*s) || s->find_first_of("\"\\") != std::string::npos) {
           error(rp, "expected 1 to " + std::to_string(kMaxTextLength) +
                         " printable characters without '\"' or '\\', got " + show(rv));
           return;
         }
         out.realm = *s;
       }},
      {"users_file", [&](const Json& fv, const std::string& fp) { file_path(fv, fp, out.users_file); }},
      {"groups", [&](const Json& gv, const std::string& gp) { groups(gv, gp, out.groups); }},
      {"cache_ttl_ms", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 0, kMaxTimeoutMs)) out.cache_ttl = std::chrono::milliseconds(*n);
       }},
      {"max_failures", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1, 1000000)) out.max_failures = static_cast<unsigned>(*n);
       }},
      {"failure_window_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.failure_window); }},
      {"block_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.block); }},
    });
  }

  // An object whose keys are names the admin picks ("groups", "lists"): each key must be a name,
  // and a duplicate key is reported like in any other object.
  bool named_members(const Json& v, const std::string& p, const char* what,
                     const std::function<void(const std::string&, const Json&, const std::string&)>& each) {
    if (!v.is_object()) {
      error(p, std::string("expected an object of named ") + what + ", got " + show(v));
      return false;
    }
    for (const auto& [key, value] : v.items()) {
      std::string cp = child(p, key);
      if (duplicates_.erase(cp) != 0) error(cp, "duplicate key " + quote(key) + ": only the last value would be used");
      if (!valid_name(key)) {
        error(cp, "expected a name of 1 to 64 letters, digits, \".\", \"_\" or \"-\", got " + quote(key));
        continue;
      }
      each(key, value, cp);
    }
    return true;
  }

  void groups(const Json& v, const std::string& p, std::vector<std::pair<std::string, std::vector<std::string>>>& out) {
    named_members(v, p, "groups", [&](const std::string& name, const Json& members, const std::string& gp) {
      if (!members.is_array()) {
        error(gp, "expected an array of user names, got " + show(members));
        return;
      }
      std::vector<std::string> users;
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (auto u = user_name(members[i], child(gp, i))) users.push_back(std::move(*u));
      }
      out.emplace_back(name, std::move(users));
    });
  }

  // ---- lists ----------------------------------------------------------------------------------
  void lists(const Json& v, const std::string& p, std::vector<ListConfig>& out) {
    named_members(v, p, "lists", [&](const std::string& name, const Json& lv, const std::string& lp) {
      ListConfig l;
      l.name = name;
      l.pointer = lp;
      bool saw_file = false;
      std::optional<std::string> mem_pointer;
      bool kind_ok = true;
      bool ok = object(lv, lp, {
        {"file", [&](const Json& fv, const std::string& fp) {
           saw_file = true;
           file_path(fv, fp, l.file);
         }},
        {"match", [&](const Json& mv, const std::string& mp) {
           auto m = one_of(mv, mp, {"domain", "regex"});
           kind_ok = m.has_value();
           if (m) l.kind = *m == 0 ? ListKind::domain : ListKind::regex;
         }},
        {"max_mem_mb", [&](const Json& nv, const std::string& np) {
           mem_pointer = np;
           if (auto n = integer(nv, np, 1, 4096)) l.max_mem_mb = static_cast<std::size_t>(*n);
         }},
      });
      if (!ok) return;
      if (!saw_file) error(lp, "missing required key \"file\"");
      if (mem_pointer && kind_ok && l.kind == ListKind::domain) {
        error(*mem_pointer, "max_mem_mb applies to \"match\": \"regex\" lists only");
      }
      out.push_back(std::move(l));
    });
  }

  // ---- egress ---------------------------------------------------------------------------------
  void egress(const Json& v, const std::string& p, Egress& out) {
    std::vector<std::pair<std::string, std::string>> exit_names;  // name, pointer: unique across regions
    object(v, p, {
      {"default", [&](const Json& dv, const std::string& dp) {
         if (auto r = region_ref(dv, dp)) out.default_region = *r;
       }},
      {"regions", [&](const Json& rv, const std::string& rp) {
         named_members(rv, rp, "regions", [&](const std::string& name, const Json& value, const std::string& np) {
           if (name == policy::kDirectRegion) {
             error(np, "\"direct\" is built in (no parent proxy); give this region another name");
             return;
           }
           RegionConfig region;
           region.name = name;
           region.pointer = np;
           if (this->region(value, np, region, exit_names)) out.regions.push_back(std::move(region));
         });
       }},
      {"users", [&](const Json& uv, const std::string& up) {
         default_regions(uv, up, out.user_region, [&](const std::string& key, const std::string& kp) {
           if (!valid_user(key)) error(kp, "expected a user name, got " + quote(key));
         });
       }},
      {"groups", [&](const Json& gv, const std::string& gp) {
         default_regions(gv, gp, out.group_region, [&](const std::string& key, const std::string& kp) {
           if (!declared(declared_groups_, key)) error(kp, "unknown group " + quote(key) + "; declare it in /auth/groups");
         });
       }},
      {"username", [&](const Json& uv, const std::string& up) { username(uv, up, out); }},
      {"sessions", [&](const Json& sv, const std::string& sp) {
         std::optional<std::string> default_pointer;
         object(sv, sp, {
           {"default_minutes", [&](const Json& nv, const std::string& np) {
              default_pointer = np;
              if (auto n = integer(nv, np, 1, 65535)) out.session_default_minutes = static_cast<unsigned>(*n);
            }},
           {"max_minutes", [&](const Json& nv, const std::string& np) {
              if (auto n = integer(nv, np, 1, 65535)) out.session_max_minutes = static_cast<unsigned>(*n);
            }},
           {"max_entries", [&](const Json& nv, const std::string& np) {
              if (auto n = integer(nv, np, 1, 10000000)) out.max_sessions = static_cast<std::size_t>(*n);
            }},
         });
         if (default_pointer && out.session_default_minutes > out.session_max_minutes) {
           error(*default_pointer, "default_minutes is above max_minutes (" + std::to_string(out.session_max_minutes) + ")");
         }
       }},
      {"health", [&](const Json& hv, const std::string& hp) {
         object(hv, hp, {
           {"fail_after", [&](const Json& nv, const std::string& np) {
              if (auto n = integer(nv, np, 1, 1000)) out.fail_after = static_cast<unsigned>(*n);
            }},
           {"down_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.down_for); }},
         });
       }},
    });
    // Fallback chains may name regions defined later in the file: checked once all are read.
    for (const auto& region : out.regions) {
      for (std::size_t i = 0; i < region.fallback.size(); ++i) {
        if (region.fallback[i] == region.name) error(child(child(region.pointer, "fallback"), i), "a region cannot fall back to itself");
      }
    }
  }

  bool region(const Json& v, const std::string& p, RegionConfig& out,
              std::vector<std::pair<std::string, std::string>>& exit_names) {
    bool saw_exits = false;
    bool ok = object(v, p, {
      {"exits", [&](const Json& ev, const std::string& ep) {
         saw_exits = true;
         if (!ev.is_array() || ev.empty()) {
           error(ep, "expected a non-empty array of exits (\"direct\", a proxy URL, an array of URLs for a chain, or an object), got " + show(ev));
           return;
         }
         for (std::size_t i = 0; i < ev.size(); ++i) {
           ExitConfig e;
           e.name = out.name + "-" + std::to_string(i + 1);
           e.pointer = child(ep, i);
           if (!exit(ev[i], e.pointer, e)) continue;
           auto same = std::find_if(exit_names.begin(), exit_names.end(), [&](const auto& n) { return n.first == e.name; });
           if (same != exit_names.end()) {
             error(e.pointer, "duplicate exit name " + quote(e.name) + " (also " + same->second + ")");
             continue;
           }
           exit_names.emplace_back(e.name, e.pointer);
           out.exits.push_back(std::move(e));
         }
       }},
      {"balance", [&](const Json& bv, const std::string& bp) {
         if (auto m = one_of(bv, bp, {"round_robin", "least_conn", "weighted_random"})) {
           out.balance = *m == 0 ? Balance::round_robin : *m == 1 ? Balance::least_conn : Balance::weighted_random;
         }
       }},
      {"on_exit_down", [&](const Json& mv, const std::string& mp) {
         if (auto m = one_of(mv, mp, {"failover", "strict"})) out.on_exit_down = *m == 0 ? OnExitDown::failover : OnExitDown::strict;
       }},
      {"fallback", [&](const Json& fv, const std::string& fp) {
         strings(fv, fp, out.fallback, [&](const Json& e, const std::string& ep) { return region_ref(e, ep); });
       }},
      {"users", [&](const Json& uv, const std::string& up) {
         strings(uv, up, out.audience.users, [&](const Json& e, const std::string& ep) { return user_name(e, ep); });
       }},
      {"groups", [&](const Json& gv, const std::string& gp) {
         strings(gv, gp, out.audience.groups, [&](const Json& e, const std::string& ep) { return group_ref(e, ep); });
       }},
      {"probe", [&](const Json& pv, const std::string& pp) { probe(pv, pp, out.probe); }},
    });
    if (ok && !saw_exits) error(p, "missing required key \"exits\"");
    return ok && saw_exits;
  }

  // An exit: "direct", "http://parent:3128", ["http://hop1:3128", "socks5://hop2:1080"], or
  // {"name": ..., "via": url | [urls], "bind": "ip", "weight": n, "http_forward": "absolute" | "connect"}.
  bool exit(const Json& v, const std::string& p, ExitConfig& out) {
    if (v.is_string() || v.is_array()) return via(v, p, out);
    bool ok = object(v, p, {
      {"name", [&](const Json& nv, const std::string& np) {
         const std::string* s = string(nv, np);
         if (s != nullptr && valid_name(*s)) {
           out.name = *s;
         } else if (s != nullptr) {
           error(np, "expected a name of 1 to 64 letters, digits, \".\", \"_\" or \"-\", got " + show(nv));
         }
       }},
      {"via", [&](const Json& hv, const std::string& hp) { via(hv, hp, out); }},
      {"bind", [&](const Json& bv, const std::string& bp) {
         const std::string* s = string(bv, bp);
         if (s == nullptr) return;
         if (auto ip = IpAddress::parse(*s)) {
           out.bind = *ip;
         } else {
           error(bp, "expected the IP address to connect from, got " + show(bv));
         }
       }},
      {"weight", [&](const Json& wv, const std::string& wp) {
         if (auto n = integer(wv, wp, 0, 1000)) out.weight = static_cast<unsigned>(*n);
       }},
      {"http_forward", [&](const Json& fv, const std::string& fp) {
         if (auto m = one_of(fv, fp, {"absolute", "connect"})) out.connect_all = *m == 1;
       }},
    });
    return ok;
  }

  // "via": one hop or an array of hops; a hop is a proxy URL, or for https:// parents an object
  // {"url": "https://...", "ca_file": "ca.pem", "verify": false, "server_name": "proxy.example"}.
  bool via(const Json& v, const std::string& p, ExitConfig& out) {
    if (v.is_string() && v.get_ref<const std::string&>() == "direct") return true;
    const std::size_t before = errors_.size();
    if (v.is_array()) {
      if (v.empty()) error(p, "expected at least one hop");
      for (std::size_t i = 0; i < v.size(); ++i) hop(v[i], child(p, i), out);
    } else {
      hop(v, p, out);
    }
    if (out.hops.size() > kMaxHops) error(p, "a chain has at most " + std::to_string(kMaxHops) + " hops");
    return errors_.size() == before;
  }

  void hop(const Json& v, const std::string& p, ExitConfig& out) {
    const Json* url_value = &v;
    std::string url_pointer = p;
    if (v.is_object()) {
      if (!v.contains("url")) {
        error(p, "missing required key \"url\"");
        return;
      }
      url_value = &v["url"];
      url_pointer = child(p, "url");
    }
    if (!url_value->is_string()) {
      error(url_pointer, "expected a proxy URL (http://, https:// or socks5://host:port), got " + show(*url_value));
      return;
    }
    auto url = http::parse_proxy_url(url_value->get_ref<const std::string&>());
    if (!url) {
      // The message never repeats the value: it may hold a password.
      error(url_pointer, "bad proxy URL: " + url.error().context);
      return;
    }
    if (v.is_object()) {
      const bool https = url->scheme == http::ProxyScheme::https;
      bool ok = object(v, p, {
        {"url", [](const Json&, const std::string&) {}},
        {"ca_file", [&](const Json& fv, const std::string& fp) {
           if (!https) error(fp, "only https:// parents have a certificate to verify");
           file_path(fv, fp, url->tls.ca_file);
         }},
        {"verify", [&](const Json& bv, const std::string& bp) {
           if (!https) error(bp, "only https:// parents have a certificate to verify");
           boolean(bv, bp, url->tls.verify);
         }},
        {"server_name", [&](const Json& nv, const std::string& np) {
           if (!https) error(np, "only https:// parents take a server name");
           if (const std::string* s = string(nv, np)) {
             if (s->empty() || s->size() > 253 || s->find_first_of(" /\\\r\n\t") != std::string::npos) {
               error(np, "expected a host name, got " + show(nv));
             } else {
               url->tls.server_name = *s;
             }
           }
         }},
      });
      if (!ok) return;
    }
    url->tls.pointer = p;
    out.hops.push_back(std::move(*url));
  }

  void probe(const Json& v, const std::string& p, ProbeConfig& out) {
    out.enabled = true;
    object(v, p, {
      {"interval_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.interval); }},
      {"timeout_ms", [&](const Json& nv, const std::string& np) { milliseconds(nv, np, out.timeout); }},
      {"rise", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1, 100)) out.rise = static_cast<unsigned>(*n);
       }},
      {"fall", [&](const Json& nv, const std::string& np) {
         if (auto n = integer(nv, np, 1, 100)) out.fall = static_cast<unsigned>(*n);
       }},
      {"target", [&](const Json& tv, const std::string& tp) {
         const std::string* s = string(tv, tp);
         if (s == nullptr) return;
         if (auto a = http::parse_authority(*s)) {
           out.target = std::move(*a);
         } else {
           error(tp, "expected host:port to CONNECT to through the exit, got " + show(tv));
         }
       }},
    });
  }

  std::optional<std::string> group_ref(const Json& e, const std::string& ep) {
    const std::string& s = e.get_ref<const std::string&>();
    if (declared(declared_groups_, s)) return s;
    error(ep, "unknown group " + quote(s) + "; declare it in /auth/groups");
    return std::nullopt;
  }

  // {"alice": "fi"} or {"staff": "de"}: a default region per user or group.
  void default_regions(const Json& v, const std::string& p, std::vector<std::pair<std::string, std::string>>& out,
                       const std::function<void(const std::string&, const std::string&)>& check_key) {
    if (!v.is_object()) {
      error(p, "expected an object of name -> region, got " + show(v));
      return;
    }
    for (const auto& [key, value] : v.items()) {
      std::string kp = child(p, key);
      if (duplicates_.erase(kp) != 0) error(kp, "duplicate key " + quote(key) + ": only the last value would be used");
      check_key(key, kp);
      if (auto r = region_ref(value, kp)) out.emplace_back(key, *r);
    }
  }

  void username(const Json& v, const std::string& p, Egress& out) {
    auto key_name = [&](const Json& kv, const std::string& kp, std::string& field) {
      const std::string* s = string(kv, kp);
      if (s == nullptr) return;
      bool ok = !s->empty() && s->size() <= 32 && std::all_of(s->begin(), s->end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      });
      if (ok) {
        field = *s;
      } else {
        error(kp, "expected a key of 1 to 32 letters, digits or \"_\", got " + show(kv));
      }
    };
    object(v, p, {
      {"enabled", [&](const Json& bv, const std::string& bp) { boolean(bv, bp, out.username.enabled); }},
      {"separator", [&](const Json& sv, const std::string& sp) {
         const std::string* s = string(sv, sp);
         if (s == nullptr) return;
         if (s->empty() || s->size() > 4 || !printable(*s) || s->find(':') != std::string::npos) {
           error(sp, "expected 1 to 4 printable characters other than \":\", got " + show(sv));
           return;
         }
         out.username.separator = *s;
       }},
      {"keys", [&](const Json& kv, const std::string& kp) {
         object(kv, kp, {
           {"region", [&](const Json& x, const std::string& xp) { key_name(x, xp, out.username.region_key); }},
           {"session", [&](const Json& x, const std::string& xp) { key_name(x, xp, out.username.session_key); }},
           {"sesstime", [&](const Json& x, const std::string& xp) { key_name(x, xp, out.username.sesstime_key); }},
         });
         const auto& u = out.username;
         if (u.region_key == u.session_key || u.region_key == u.sesstime_key || u.session_key == u.sesstime_key) {
           error(kp, "the three keys must differ");
         }
       }},
      {"users", [&](const Json& uv, const std::string& up) {
         strings(uv, up, out.username_audience.users, [&](const Json& e, const std::string& ep) { return user_name(e, ep); });
       }},
      {"groups", [&](const Json& gv, const std::string& gp) {
         strings(gv, gp, out.username_audience.groups, [&](const Json& e, const std::string& ep) { return group_ref(e, ep); });
       }},
    });
  }

  // ---- rules ----------------------------------------------------------------------------------
  void rules(const Json& v, const std::string& p, std::optional<std::vector<RuleConfig>>& out) {
    if (!v.is_array()) {
      error(p, "expected an array of rules, got " + show(v));
      return;
    }
    std::vector<RuleConfig> result;
    std::vector<std::pair<std::string, std::string>> ids;  // id, pointer of its rule
    for (std::size_t i = 0; i < v.size(); ++i) {
      RuleConfig r;
      r.pointer = child(p, i);
      bool saw_id = false;
      bool saw_when = false;
      bool saw_action = false;
      bool action_ok = false;
      std::optional<std::string> egress_pointer;
      bool ok = object(v[i], r.pointer, {
        {"id", [&](const Json& iv, const std::string& ip) {
           saw_id = true;
           rule_id(iv, ip, r, ids);
         }},
        {"when", [&](const Json& cv, const std::string& cp) {
           saw_when = true;
           r.when = condition(cv, cp);
         }},
        {"unless", [&](const Json& cv, const std::string& cp) { r.unless = condition(cv, cp); }},
        {"action", [&](const Json& av, const std::string& ap) {
           saw_action = true;
           auto a = one_of(av, ap, {"allow", "deny", "egress"});
           action_ok = a.has_value();
           if (a) r.action = *a == 0 ? policy::Action::allow : *a == 1 ? policy::Action::deny : policy::Action::egress;
         }},
        {"egress", [&](const Json& ev, const std::string& ep) {
           egress_pointer = ep;
           const std::string* s = string(ev, ep);
           if (s == nullptr) return;
           if (s->empty() || s->size() > kMaxNameLength || !printable(*s)) {
             error(ep, "expected a region name of 1 to " + std::to_string(kMaxNameLength) +
                           " printable characters, got " + show(ev));
             return;
           }
           if (auto region = region_ref(ev, ep)) r.egress = *region;
         }},
        {"reason", [&](const Json& tv, const std::string& tp) { text(tv, tp, r.reason); }},
        {"category", [&](const Json& tv, const std::string& tp) { text(tv, tp, r.category); }},
      });
      if (!ok) continue;
      if (!saw_id) error(r.pointer, "missing required key \"id\"");
      if (!saw_when) error(r.pointer, "missing required key \"when\" ({} matches every request)");
      if (!saw_action) {
        error(r.pointer, "missing required key \"action\"");
      } else if (action_ok && r.action == policy::Action::egress && !egress_pointer) {
        error(r.pointer, "action \"egress\" needs \"egress\": the name of the region to leave through");
      } else if (action_ok && r.action != policy::Action::egress && egress_pointer) {
        error(*egress_pointer, "\"egress\" is only used with action \"egress\"");
      }
      result.push_back(std::move(r));
    }
    out = std::move(result);
  }

  void rule_id(const Json& v, const std::string& p, RuleConfig& r,
               std::vector<std::pair<std::string, std::string>>& ids) {
    const std::string* s = string(v, p);
    if (s == nullptr) return;
    if (!valid_name(*s)) {
      error(p, "expected an id of 1 to 64 letters, digits, \".\", \"_\" or \"-\", got " + show(v));
      return;
    }
    for (const char* reserved : kReservedRuleIds) {
      if (*s == reserved) {
        error(p, "rule id " + quote(*s) + " is reserved for a built-in check");
        return;
      }
    }
    auto same = std::find_if(ids.begin(), ids.end(), [&](const auto& x) { return x.first == *s; });
    if (same != ids.end()) {
      error(p, "duplicate rule id " + quote(*s) + " (also " + same->second + ")");
      return;
    }
    ids.emplace_back(*s, r.pointer);
    r.id = *s;
  }

  ConditionConfig condition(const Json& v, const std::string& p) {
    ConditionConfig c;
    object(v, p, {
      {"listener", [&](const Json& nv, const std::string& np) {
         strings(nv, np, c.listeners, [&](const Json& e, const std::string& ep) -> std::optional<std::string> {
           const std::string& s = e.get_ref<const std::string&>();
           if (declared(declared_listeners_, s)) return s;
           error(ep, "unknown listener " + quote(s) + "; the listeners are " + join_quoted(declared_listeners_));
           return std::nullopt;
         });
       }},
      {"user", [&](const Json& nv, const std::string& np) {
         strings(nv, np, c.users, [&](const Json& e, const std::string& ep) { return user_name(e, ep); });
       }},
      {"group", [&](const Json& nv, const std::string& np) {
         strings(nv, np, c.groups, [&](const Json& e, const std::string& ep) -> std::optional<std::string> {
           const std::string& s = e.get_ref<const std::string&>();
           if (declared(declared_groups_, s)) return s;
           if (declared_groups_.empty()) {
             error(ep, "unknown group " + quote(s) + ": no groups are declared in /auth/groups");
           } else {
             error(ep, "unknown group " + quote(s) + "; the groups in /auth/groups are " + join_quoted(declared_groups_));
           }
           return std::nullopt;
         });
       }},
      {"method", [&](const Json& nv, const std::string& np) {
         strings(nv, np, c.methods, [&](const Json& e, const std::string& ep) -> std::optional<std::string> {
           std::string s = e.get<std::string>();
           bool letters = !s.empty() && s.size() <= kMaxMethodLength && std::all_of(s.begin(), s.end(), [](char ch) {
             return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
           });
           if (!letters) {
             error(ep, "expected an HTTP method of letters only, like \"CONNECT\" or \"GET\", got " + show(e));
             return std::nullopt;
           }
           for (char& ch : s) {
             if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
           }
           return s;
         });
       }},
      {"list", [&](const Json& nv, const std::string& np) {
         strings(nv, np, c.lists, [&](const Json& e, const std::string& ep) -> std::optional<std::string> {
           const std::string& s = e.get_ref<const std::string&>();
           if (declared(declared_lists_, s)) return s;
           if (declared_lists_.empty()) {
             error(ep, "unknown list " + quote(s) + ": no lists are declared in /lists");
           } else {
             error(ep, "unknown list " + quote(s) + "; the lists in /lists are " + join_quoted(declared_lists_));
           }
           return std::nullopt;
         });
       }},
      {"client", [&](const Json& cv, const std::string& cp) {
         if (cv.is_string()) {
           if (auto r = cidr(cv, cp)) c.clients.push_back(*r);
         } else if (cv.is_array() && !cv.empty()) {
           cidr_array(cv, cp, false, c.clients);
         } else {
           error(cp, "expected a CIDR range or a non-empty array of them, got " + show(cv));
         }
       }},
      {"host", [&](const Json& pv, const std::string& pp) { pattern(pv, pp, c.host); }},
      {"url", [&](const Json& pv, const std::string& pp) { pattern(pv, pp, c.url); }},
      {"port", [&](const Json& pv, const std::string& pp) {
         if (pv.is_array()) {
           if (pv.empty()) {
             error(pp, "expected a port, a range \"a-b\" or a non-empty array of them, got []");
             return;
           }
           for (std::size_t i = 0; i < pv.size(); ++i) {
             if (auto r = port_entry(pv[i], child(pp, i))) c.ports.push_back(*r);
           }
         } else if (auto r = port_entry(pv, pp)) {
           c.ports.push_back(*r);
         }
       }},
      {"time", [&](const Json& tv, const std::string& tp) {
         if (tv.is_object()) {
           if (auto w = time_window(tv, tp)) c.times.push_back(*w);
         } else if (tv.is_array() && !tv.empty()) {
           for (std::size_t i = 0; i < tv.size(); ++i) {
             if (auto w = time_window(tv[i], child(tp, i))) c.times.push_back(*w);
           }
         } else {
           error(tp, "expected a time window {\"days\", \"from\", \"to\"} or a non-empty array of them, got " + show(tv));
         }
       }},
    });
    return c;
  }

  // A string or a non-empty array of strings; `element` checks each one (it sees only strings).
  void strings(const Json& v, const std::string& p, std::vector<std::string>& out,
               const std::function<std::optional<std::string>(const Json&, const std::string&)>& element) {
    auto one = [&](const Json& e, const std::string& ep) {
      if (!e.is_string()) {
        error(ep, "expected a string, got " + show(e));
        return;
      }
      if (auto s = element(e, ep)) out.push_back(std::move(*s));
    };
    if (v.is_string()) {
      one(v, p);
    } else if (v.is_array() && !v.empty()) {
      for (std::size_t i = 0; i < v.size(); ++i) one(v[i], child(p, i));
    } else {
      error(p, "expected a string or a non-empty array of strings, got " + show(v));
    }
  }

  void pattern(const Json& v, const std::string& p, std::string& out) {
    const std::string* s = string(v, p);
    if (s == nullptr) return;
    if (s->empty() || s->size() > kMaxPatternLength) {
      error(p, "expected an RE2 pattern of 1 to " + std::to_string(kMaxPatternLength) +
                   " characters (leave the key out to match anything), got " + show(v));
      return;
    }
    RE2::Options options;
    options.set_log_errors(false);
    RE2 re(*s, options);
    if (!re.ok()) {
      error(p, "RE2 rejected " + quote(*s) + ": " + re.error());
      return;
    }
    out = *s;
  }

  // ---- time -----------------------------------------------------------------------------------
  static std::optional<int> day_index(std::string_view s) {
    for (int d = 0; d < 7; ++d) {
      if (s == kDayNames[d]) return d;
    }
    return std::nullopt;
  }

  // "HH:MM" as minutes of the day; "24:00" (1440) only where allowed.
  static std::optional<int> clock_minutes(std::string_view s, bool allow_end_of_day) {
    if (s.size() != 5 || s[2] != ':') return std::nullopt;
    auto digit = [&](std::size_t i) { return s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : -1; };
    int h1 = digit(0), h2 = digit(1), m1 = digit(3), m2 = digit(4);
    if (h1 < 0 || h2 < 0 || m1 < 0 || m2 < 0) return std::nullopt;
    int h = h1 * 10 + h2;
    int m = m1 * 10 + m2;
    if (m > 59) return std::nullopt;
    if (h == 24 && m == 0 && allow_end_of_day) return 1440;
    if (h > 23) return std::nullopt;
    return h * 60 + m;
  }

  std::optional<int> clock(const Json& v, const std::string& p, bool allow_end_of_day) {
    if (v.is_string()) {
      if (auto m = clock_minutes(v.get_ref<const std::string&>(), allow_end_of_day)) return m;
    }
    error(p, std::string("expected a time \"HH:MM\" from \"00:00\" to ") + (allow_end_of_day ? "\"24:00\"" : "\"23:59\"") +
                 ", got " + show(v));
    return std::nullopt;
  }

  std::optional<policy::TimeWindow> time_window(const Json& v, const std::string& p) {
    policy::TimeWindow w;
    bool ok = true;
    std::optional<std::string> to_pointer;
    bool walked = object(v, p, {
      {"days", [&](const Json& dv, const std::string& dp) {
         if (!dv.is_array() || dv.empty()) {
           error(dp, "expected a non-empty array of days (\"mon\" .. \"sun\"), got " + show(dv));
           ok = false;
           return;
         }
         std::uint8_t days = 0;
         for (std::size_t i = 0; i < dv.size(); ++i) {
           std::optional<int> d;
           if (dv[i].is_string()) d = day_index(dv[i].get_ref<const std::string&>());
           if (!d) {
             error(child(dp, i), "expected a day \"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\" or \"sun\", got " +
                                     show(dv[i]));
             ok = false;
             continue;
           }
           days = static_cast<std::uint8_t>(days | 1u << *d);
         }
         w.days = days;
       }},
      {"from", [&](const Json& fv, const std::string& fp) {
         auto m = clock(fv, fp, false);
         if (m) w.from = *m;
         ok = ok && m.has_value();
       }},
      {"to", [&](const Json& tv, const std::string& tp) {
         auto m = clock(tv, tp, true);
         if (m) w.to = *m;
         to_pointer = tp;
         ok = ok && m.has_value();
       }},
    });
    if (!walked || !ok) return std::nullopt;
    if (w.from == w.to) {
      // "to" < "from" wraps past midnight, so equal ends could mean nothing or everything: say which.
      error(to_pointer.value_or(p), "the window from " + clock_text(w.from) + " to " + clock_text(w.to) +
                                        " is empty; use \"00:00\" to \"24:00\" for whole days");
      return std::nullopt;
    }
    return w;
  }

  static std::string clock_text(int minutes) {
    const int h = minutes / 60 % 100;
    const int m = minutes % 60;
    return {'"', static_cast<char>('0' + h / 10), static_cast<char>('0' + h % 10), ':',
            static_cast<char>('0' + m / 10), static_cast<char>('0' + m % 10), '"'};
  }

  void time(const Json& v, const std::string& p, Policy& out) {
    object(v, p, {
      {"zone", [&](const Json& zv, const std::string& zp) {
         if (auto z = one_of(zv, zp, {"local", "UTC"})) out.time_utc = *z == 1;
       }},
      {"override", [&](const Json& ov, const std::string& op) {
         if (ov.is_string()) {
           if (auto m = parse_minute_of_week(ov.get_ref<const std::string&>())) {
             out.time_override = *m;
             return;
           }
         }
         error(op, "expected a day and a time like \"mon 09:30\", got " + show(ov));
       }},
    });
  }

  // "mon 09:30" -> minutes since Monday 00:00.
  static std::optional<policy::MinuteOfWeek> parse_minute_of_week(std::string_view s) {
    if (s.size() != 9 || s[3] != ' ') return std::nullopt;
    auto d = day_index(s.substr(0, 3));
    auto m = clock_minutes(s.substr(4), false);
    if (!d || !m) return std::nullopt;
    return *d * 1440 + *m;
  }

  std::vector<ConfigError> errors_;
  std::set<std::string> duplicates_;
  std::vector<std::string> declared_listeners_, declared_groups_, declared_lists_, declared_regions_;
  bool has_users_file_ = false;
  std::vector<std::pair<SocketAddress, std::string>> seen_addresses_;
  std::vector<std::string> declared_pools_;
  struct ListenerRefs {
    std::string pointer;
    std::vector<std::string> names;
    bool single;  // written as one string, not an array
  };
  std::vector<ListenerRefs> route_listener_pointers_;
  std::string pac_listeners_pointer_;
};

}  // namespace

const PoolConfig* Reverse::pool(std::string_view name) const noexcept {
  for (const auto& p : pools)
    if (p.name == name) return &p;
  return nullptr;
}

bool Pac::served_on(const Listener& l) const noexcept {
  return l.mode == ListenerMode::forward &&
         (all_listeners || std::find(listeners.begin(), listeners.end(), l.name) != listeners.end());
}

const RegionConfig* Egress::region(std::string_view name) const noexcept {
  for (const auto& r : regions)
    if (r.name == name) return &r;
  return nullptr;
}

std::string format_error(const ConfigError& e) {
  return "config error: " + (e.pointer.empty() ? std::string("/") : e.pointer) + ": " + e.message;
}

LoadResult parse_config(std::string_view json_text) {
  DuplicateKeyTracker tracker;
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end(),
                       [&](int, nlohmann::detail::parse_event_t event, Json& parsed) {
                         return tracker.on_event(event, parsed);
                       });
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." without the tag.
    if (auto close = what.find("] "); !what.empty() && what.front() == '[' && close != std::string::npos) {
      what.erase(0, close + 2);
    }
    // "last read: '...'" echoes input bytes: keep the message printable ASCII.
    std::string clean;
    for (char c : what) {
      auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7f) {
        clean += c;
      } else {
        static constexpr char kHex[] = "0123456789abcdef";
        clean += {'\\', 'x', kHex[u >> 4], kHex[u & 0xf]};
      }
    }
    LoadResult r;
    r.errors.push_back(ConfigError{"", clean + " (byte " + std::to_string(e.byte) + ")"});
    return r;
  }
  return Validator(tracker.take()).run(root);
}

LoadResult load_config_file(const std::string& path) {
  LoadResult r;
  auto fail = [&](int err) {
    r.errors.push_back(ConfigError{"", "cannot read config file " + quote(path) + ": " + std::strerror(err)});
    return r;
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return fail(errno);
  std::string text;
  char buf[8192];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxFileBytes) {
      std::fclose(f);
      r.errors.push_back(ConfigError{"", "config file " + quote(path) + " is larger than " +
                                             std::to_string(kMaxFileBytes) + " bytes"});
      return r;
    }
  }
  int err = std::ferror(f) != 0 ? errno : 0;
  std::fclose(f);
  if (err != 0) return fail(err);
  r = parse_config(text);
  // Relative paths in the file (users file, lists, block page) are relative to the file itself.
  if (r.config) {
    r.config->base_dir = std::filesystem::path(path).parent_path().string();
    r.config->source = std::move(text);
  }
  return r;
}

}  // namespace portier::config
