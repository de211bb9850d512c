// Config -> Snapshot: loads what the config names (users file, lists, block page template),
// compiles the rules into policy::Rule and reports every error with the pointer of the config value
// it belongs to. File errors keep their own "file:line" in the message.
#include "portier/config/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>

#include <re2/re2.h>

#include "portier/config/tls.hpp"
#include "portier/policy/block_page.hpp"
#include "portier/policy/lists.hpp"

namespace portier::config {
namespace {

constexpr std::size_t kMaxBlockPageBytes = 1024 * 1024;

// Relative paths are relative to the config file's directory; "" means the current directory.
std::string resolve(const std::string& base_dir, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return p.lexically_normal().string();
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string join_ports(const std::vector<policy::PortRange>& ports) {
  std::string out;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ports[i].first);
    if (ports[i].last != ports[i].first) out += "-" + std::to_string(ports[i].last);
  }
  return out;
}

// The whole file, or why not ("No such file or directory", "larger than 1048576 bytes").
std::optional<std::string> read_file(const std::string& path, std::size_t max_bytes, std::string& why) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    why = std::strerror(EISDIR);
    return std::nullopt;
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    why = std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  char buf[8192];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > max_bytes) {
      std::fclose(f);
      why = "larger than " + std::to_string(max_bytes) + " bytes";
      return std::nullopt;
    }
  }
  int err = std::ferror(f) != 0 ? errno : 0;
  std::fclose(f);
  if (err != 0) {
    why = std::strerror(err);
    return std::nullopt;
  }
  return text;
}

// The adapter decide() sees: a loaded list, answering with the entry's "file:line".
class ListAdapter final : public policy::MatchList {
 public:
  explicit ListAdapter(std::shared_ptr<const policy::NamedList> list) : list_(std::move(list)) {}

  policy::ListLookup match(std::string_view text) const override {
    auto hit = list_->match(text);
    // A regex list fails only when RE2's DFA exceeds the list's memory budget on this text.
    if (!hit) return policy::ListLookup::failed(list_->file() + ": " + hit.error().context);
    if (!hit->has_value()) return policy::ListLookup::miss();
    return policy::ListLookup::hit((*hit)->describe());
  }

  bool matches_hosts() const noexcept override { return list_->kind() == policy::ListKind::domain; }

 private:
  std::shared_ptr<const policy::NamedList> list_;
};

// What decide needs of the egress config: region names and audiences, defaults, the user name grammar.
policy::EgressPolicy egress_policy(const Egress& e) {
  policy::EgressPolicy p;
  p.default_region = e.default_region;
  for (const auto& r : e.regions) p.regions.emplace(r.name, r.audience);
  for (const auto& [user, region] : e.user_region) p.user_region.emplace(user, region);
  p.group_region = e.group_region;
  p.username = e.username;
  p.username_audience = e.username_audience;
  p.session_default_minutes = e.session_default_minutes;
  p.session_max_minutes = e.session_max_minutes;
  return p;
}

class Compiler {
 public:
  explicit Compiler(Config config) : config_(std::move(config)) {}

  CompileResult run() {
    auto snap = std::make_shared<Snapshot>();
    load_users(*snap);
    check_groups(*snap);
    load_lists();
    listeners(snap->policy);
    rules(snap->policy);
    load_block_page(*snap);
    tls_contexts(*snap);

    CompileResult out;
    if (!errors_.empty()) {
      out.errors = std::move(errors_);
      return out;
    }
    snap->policy.default_action = config_.policy.default_action;
    snap->policy.realm = config_.auth.realm;
    snap->policy.sni_must_match = config_.policy.sni_must_match;
    for (const auto& r : snap->policy.rules) {
      if (!r.when.times.empty() || (r.unless && !r.unless->times.empty())) snap->policy.uses_time = true;
    }
    snap->policy.egress = egress_policy(config_.egress);
    snap->ssrf_allow = CidrSet(config_.ssrf_allow);
    snap->reverse_trusted = CidrSet(config_.reverse.trusted_proxies);
    pac(*snap);
    snap->config = std::move(config_);
    out.snapshot = std::move(snap);
    return out;
  }

 private:
  void error(std::string pointer, std::string message) {
    errors_.push_back(ConfigError{std::move(pointer), std::move(message)});
  }

  std::string path_of(const std::string& p) const { return resolve(config_.base_dir, p); }

  // Certificates and CA files, loaded now so that a bad file refuses the config (and reload keeps
  // the old one) instead of failing handshakes later.
  void tls_contexts(Snapshot& snap) {
    for (const auto& l : config_.listeners) {
      if (!l.tls) continue;
      ListenerTls tls = *l.tls;
      for (auto& c : tls.certificates) {
        c.cert_file = path_of(c.cert_file);
        c.key_file = path_of(c.key_file);
      }
      // One context per certificate; the default one chooses the others by SNI and owns them.
      if (auto ctx = tls_listener_context(tls, errors_)) snap.listener_tls.emplace(l.name, std::move(ctx));
    }
    // One client context per distinct (ca_file, verify): loading the system store costs milliseconds.
    std::map<std::pair<std::string, bool>, std::shared_ptr<ssl_ctx_st>> clients;
    auto client_context = [&](http::ProxyUrl& hop) {
      if (hop.scheme != http::ProxyScheme::https) return;
      const std::string ca = hop.tls.ca_file.empty() ? std::string() : path_of(hop.tls.ca_file);
      auto& ctx = clients[{ca, hop.tls.verify}];
      if (!ctx) {
        std::string why;
        ctx = tls_client_context(ca, hop.tls.verify, why);
        if (!ctx) {
          error(hop.tls.pointer, why);
          return;
        }
      }
      hop.tls.context = ctx;
    };
    for (auto& region : config_.egress.regions) {
      for (auto& exit : region.exits) {
        for (auto& hop : exit.hops) client_context(hop);
      }
    }
    // TLS to backends: the same kind of client context as to an https parent.
    for (auto& pool : config_.reverse.pools) {
      for (auto& backend : pool.backends) client_context(backend.url);
    }
  }

  void load_users(Snapshot& snap) {
    if (config_.auth.users_file.empty()) return;
    auto loaded = policy::UsersFile::load(path_of(config_.auth.users_file));
    for (const auto& e : loaded.errors) error("/auth/users_file", policy::format_error(e));
    if (loaded.errors.empty() && loaded.users) {
      snap.users = std::make_shared<const policy::UsersFile>(std::move(*loaded.users));
    }
    users_ = snap.users.get();
    users_failed_ = users_ == nullptr;
  }

  // Whether `user` names someone in the users file; reports at `pointer` when not. A users file that
  // failed to load was reported already, so its users are not checked again.
  bool known_user(const std::string& user, const std::string& pointer) {
    if (users_failed_) return true;
    if (users_ == nullptr) {
      error(pointer, "unknown user " + quote(user) + ": there is no users file (/auth/users_file)");
      return false;
    }
    if (users_->contains(user)) return true;
    error(pointer, "unknown user " + quote(user) + ": not in the users file " + path_of(config_.auth.users_file));
    return false;
  }

  void check_groups(Snapshot& snap) {
    for (const auto& [group, members] : config_.auth.groups) {
      for (std::size_t i = 0; i < members.size(); ++i) {
        const std::string& user = members[i];
        known_user(user, "/auth/groups/" + group + "/" + std::to_string(i));
        auto& groups = snap.user_groups[user];
        if (std::find(groups.begin(), groups.end(), group) == groups.end()) groups.push_back(group);
      }
    }
  }

  void load_lists() {
    for (const ListConfig& l : config_.lists) {
      policy::ListSpec spec;
      spec.name = l.name;
      spec.path = path_of(l.file);
      spec.kind = l.kind == ListKind::domain ? policy::ListKind::domain : policy::ListKind::regex;
      spec.max_mem = l.max_mem_mb << 20;
      auto loaded = policy::load_list(spec);
      const std::string pointer = (l.pointer.empty() ? "/lists/" + l.name : l.pointer) + "/file";
      for (const auto& e : loaded.errors) error(pointer, e.describe());
      if (loaded.list) lists_.emplace(l.name, std::make_shared<const ListAdapter>(loaded.list));
      declared_lists_.insert(l.name);
    }
  }

  void listeners(policy::PolicySnapshot& out) {
    for (std::size_t i = 0; i < config_.listeners.size(); ++i) {
      const Listener& l = config_.listeners[i];
      if (l.auth != policy::AuthMode::off && config_.auth.users_file.empty()) {
        error("/listeners/" + std::to_string(i) + "/auth",
              "auth needs \"users_file\" in /auth: there are no users to check credentials against");
      }
      out.listeners.push_back(policy::ListenerPolicy{l.name, l.auth, l.trusted, l.allow_clients, l.refuse});
    }
  }

  void rules(policy::PolicySnapshot& out) {
    // forward.connect_ports, as a rule evaluated before every configured one.
    policy::Rule ports;
    ports.id = "connect_ports";
    ports.when.methods = {"CONNECT"};
    ports.action = policy::Action::deny;
    const auto& allowed = config_.forward.connect_ports;
    if (allowed.empty()) {
      ports.reason = "CONNECT is not allowed by this proxy";
    } else {
      policy::Condition unless;
      unless.ports = allowed;
      ports.unless = std::move(unless);
      const bool one_port = allowed.size() == 1 && allowed[0].first == allowed[0].last;
      ports.reason = std::string("CONNECT is only allowed to ") + (one_port ? "port " : "ports ") + join_ports(allowed);
    }
    out.rules.push_back(std::move(ports));

    if (!config_.policy.rules) return;
    for (const RuleConfig& rc : *config_.policy.rules) {
      policy::Rule r;
      r.id = rc.id;
      r.when = condition(rc.when, rc.pointer + "/when");
      if (rc.unless) r.unless = condition(*rc.unless, rc.pointer + "/unless");
      r.action = rc.action;
      r.reason = rc.reason;
      r.category = rc.category;
      r.egress = rc.egress;
      out.rules.push_back(std::move(r));
    }
  }

  policy::Condition condition(const ConditionConfig& c, const std::string& pointer) {
    policy::Condition out;
    out.listeners = c.listeners;
    for (const std::string& u : c.users) known_user(u, pointer + "/user");
    out.users = c.users;
    out.groups = c.groups;
    out.clients = c.clients;
    out.methods = c.methods;
    // Hosts arrive lowercased and are case-insensitive; URLs are matched as they are.
    if (!c.host.empty()) out.host = pattern(c.host, pointer + "/host", false);
    if (!c.url.empty()) out.url = pattern(c.url, pointer + "/url", true);
    for (const std::string& name : c.lists) {
      auto it = lists_.find(name);
      if (it != lists_.end()) {
        out.lists.push_back(it->second);
      } else if (declared_lists_.count(name) == 0) {
        error(pointer + "/list", "unknown list " + quote(name));  // the validator reports these first
      }
    }
    out.ports = c.ports;
    out.times = c.times;
    return out;
  }

  std::shared_ptr<const re2::RE2> pattern(const std::string& text, const std::string& pointer, bool case_sensitive) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_case_sensitive(case_sensitive);
    auto re = std::make_shared<const re2::RE2>(text, options);
    if (!re->ok()) {
      error(pointer, "RE2 rejected " + quote(text) + ": " + re->error());
      return nullptr;
    }
    return re;
  }

  // The PAC script, once per snapshot: ranges opened in ssrf.allow go through the proxy even when
  // private (the proxy reaches them; that is why they were opened).
  void pac(Snapshot& snap) const {
    policy::PacRules rules = config_.pac.rules;
    for (const Cidr& c : config_.ssrf_allow)
      if (c.base.v4) rules.proxied_networks.push_back(c);
    snap.pac = policy::render_pac(rules);
    if (!config_.pac.proxies.empty()) snap.pac_text = snap.pac.text(config_.pac.proxies);
  }

  void load_block_page(Snapshot& snap) {
    if (config_.policy.block_page.empty()) {
      snap.block_page = std::string(policy::default_block_page());
      return;
    }
    const std::string path = path_of(config_.policy.block_page);
    std::string why;
    auto text = read_file(path, kMaxBlockPageBytes, why);
    if (!text) {
      error("/block_page/template", "cannot read block page template " + quote(path) + ": " + why);
      return;
    }
    snap.block_page = std::move(*text);
  }

  Config config_;
  std::vector<ConfigError> errors_;
  const policy::UsersFile* users_ = nullptr;
  bool users_failed_ = false;
  std::map<std::string, std::shared_ptr<const policy::MatchList>> lists_;
  std::set<std::string> declared_lists_;
};

}  // namespace

CompileResult compile(Config config) { return Compiler(std::move(config)).run(); }

CompileResult load_and_compile(const std::string& path) {
  auto loaded = load_config_file(path);
  if (!loaded.config) {
    CompileResult out;
    out.errors = std::move(loaded.errors);
    return out;
  }
  return compile(std::move(*loaded.config));
}

}  // namespace portier::config
