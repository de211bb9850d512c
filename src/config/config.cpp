#include "portier/config/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

namespace portier::config {
namespace {

// ordered_json keeps members in document order, so errors come out in the order an admin reads them.
using Json = nlohmann::ordered_json;

constexpr std::int64_t kMaxTimeoutMs = 24LL * 60 * 60 * 1000;  // 24 h
constexpr std::size_t kMaxFileBytes = 16 * 1024 * 1024;
constexpr std::size_t kMaxNameLength = 64;
constexpr std::size_t kMaxViaLength = 256;

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
    bool ok = object(root, "", {
      {"workers", [&](const Json& v, const std::string& p) {
         if (auto n = integer(v, p, 0, 256)) cfg.workers = static_cast<unsigned>(*n);
       }},
      {"listeners", [&](const Json& v, const std::string& p) {
         saw_listeners = true;
         listeners(v, p, cfg.listeners);
       }},
      {"access_log", [&](const Json& v, const std::string& p) { access_log(v, p, cfg.access_log); }},
      {"forward", [&](const Json& v, const std::string& p) { forward(v, p, cfg.forward); }},
      {"ssrf", [&](const Json& v, const std::string& p) { ssrf(v, p, cfg.ssrf_allow); }},
      {"timeouts", [&](const Json& v, const std::string& p) { timeouts(v, p, cfg.timeouts); }},
      {"limits", [&](const Json& v, const std::string& p) { limits(v, p, cfg.limits); }},
      {"origin_pool", [&](const Json& v, const std::string& p) { origin_pool(v, p, cfg.origin_pool); }},
    });
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
           if (const std::string* s = string(mv, mp)) {
             if (*s != "forward") error(mp, "unsupported mode " + show(mv) + ": only \"forward\" is supported");
           }
         }},
      });
      if (!ok) continue;
      if (!saw_listen) error(lp, "missing required key \"listen\"");
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
      const std::string* s = string(v[i], ap);
      if (s == nullptr) continue;
      auto addr = parse_socket_address(*s);
      if (!addr) {
        error(ap, "expected \"ip:port\" or \"[ipv6]:port\" with an IP literal, got " + show(v[i]));
        continue;
      }
      check_address_conflicts(*addr, ap);
      seen_addresses_.emplace_back(*addr, ap);
      out.push_back(*addr);
    }
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
      std::string ep = child(p, i);
      const Json& e = v[i];
      if (e.is_number_integer()) {
        if (auto n = integer(e, ep, 1, 65535)) {
          auto port = static_cast<std::uint16_t>(*n);
          ranges.push_back({port, port});
        } else {
          ok = false;
        }
        continue;
      }
      if (e.is_string()) {
        if (auto r = parse_port_range(e.get_ref<const std::string&>())) {
          ranges.push_back(*r);
          continue;
        }
      }
      error(ep, "expected a port 1..65535 or a range \"a-b\" with 1 <= a <= b <= 65535, got " + show(e));
      ok = false;
    }
    if (ok) out = std::move(ranges);
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
      {"allow", [&](const Json& av, const std::string& ap) {
         if (!av.is_array()) {
           error(ap, "expected an array of CIDR ranges, got " + show(av));
           return;
         }
         std::vector<Cidr> ranges;
         for (std::size_t i = 0; i < av.size(); ++i) {
           std::string ep = child(ap, i);
           std::optional<Cidr> c;
           if (av[i].is_string()) c = Cidr::parse(av[i].get_ref<const std::string&>());
           if (!c) {
             error(ep, "expected a CIDR range like \"10.0.0.0/8\" or an IP address, got " + show(av[i]));
             continue;
           }
           ranges.push_back(*c);
         }
         out = std::move(ranges);
       }},
    });
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

  void limits(const Json& v, const std::string& p, http::Limits& out) {
    std::optional<std::string> url_pointer;
    bool header_ok = true;
    bool ok = object(v, p, {
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

  std::vector<ConfigError> errors_;
  std::set<std::string> duplicates_;
  std::vector<std::pair<SocketAddress, std::string>> seen_addresses_;
};

}  // namespace

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
  return parse_config(text);
}

std::shared_ptr<const Snapshot> compile(Config config) {
  auto snap = std::make_shared<Snapshot>();
  snap->policy.connect_ports = config.forward.connect_ports;
  snap->ssrf_allow = CidrSet(config.ssrf_allow);
  snap->config = std::move(config);
  return snap;
}

}  // namespace portier::config
