// Microbenchmark of list loading and matching (not a test; prints a table and never fails the build).
//
//   ./build/lists_bench [domains=1000000] [regexes=10000] [lookups=200000]
//
// Generates, with fixed-seed PRNGs, a domain list (hosts-file, plain and adblock lines mixed) and a
// regex list of ad/tracker-style patterns, writes them to a temporary directory and loads them
// through load_list (read, parse, validate, compile). Lookups go through NamedList::match, as the
// policy does: hosts are 1/3 listed, 1/3 subdomains of listed, 1/3 unlisted; URLs are random, one in
// ten built to match a random pattern. Reported per list:
//   compile_s   load_list wall time
//   rss_MB      VmRSS added by the load; rss_trim the same after malloc_trim (freed load buffers
//               don't count); rss_match again after the lookups (RE2 builds DFA states lazily)
//   p50/p99/max latency of single matches, each timed with steady_clock (the clock's own cost is
//               printed and included); batch_us = mean over an untimed-per-call loop
// and p50/p99 split by matches and non-matches. A warm-up pass over the same lookups runs first.
// LISTS_BENCH_KEEP=1 keeps the lists and the hosts and URLs looked up in the temporary directory.
// Targets: compile <= 10 s, p99 <= 5 us, resident memory for the lists <= 300 MB.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "portier/policy/lists.hpp"

using namespace portier::policy;
using Clock = std::chrono::steady_clock;

namespace {

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

constexpr const char* kSyllables[] = {"ad", "tra", "ck", "ban", "ner", "pix", "el", "me", "tri", "cs", "lo",
                                      "go", "cdn", "st", "at", "ic", "ser", "ve", "click", "co", "un",
                                      "ter", "on", "li", "ne", "data", "sy", "nc", "ta", "g", "ma", "rk",
                                      "et", "pro", "mo", "web", "hub", "ly", "fy", "zo"};
constexpr const char* kTlds[] = {"com", "net", "org", "io", "de", "ru", "info", "xyz", "top", "co.uk",
                                 "fr", "nl", "biz", "online", "site", "cn", "jp", "br", "it", "pl"};

std::string word(Rng& r, int min_syl = 2, int max_syl = 4) {
  std::string w;
  int n = min_syl + static_cast<int>(r.below(static_cast<std::size_t>(max_syl - min_syl + 1)));
  for (int i = 0; i < n; ++i) w += kSyllables[r.below(std::size(kSyllables))];
  if (r.below(2) == 0) w += std::to_string(r.below(1000));
  return w;
}

std::string domain(Rng& r) {
  std::string d;
  std::size_t labels = 1 + (r.below(10) < 3 ? 1 : 0) + (r.below(10) == 0 ? 1 : 0);
  for (std::size_t i = 0; i < labels; ++i) d += word(r, 2, 5) + ".";  // 2-5 syllables: few duplicates
  return d + kTlds[r.below(std::size(kTlds))];
}

std::size_t rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoul(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::size_t hwm_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoul(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

double clock_overhead_ns() {
  constexpr int kN = 100000;
  auto t0 = Clock::now();
  for (int i = 0; i < kN; ++i) {
    auto a = Clock::now();
    asm volatile("" : : "r"(&a) : "memory");
  }
  auto t1 = Clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / kN;
}

struct Row {
  std::string what;
  std::size_t entries = 0;
  double compile_s = 0;
  double rss_mb = 0;
  double rss_trim_mb = 0;
  double rss_matched_mb = 0;  // after the lookups: lazily built DFA states count too
  std::size_t before_kib = 0;
  double p50_us = 0, p99_us = 0, max_us = 0, mean_batch_us = 0;
  double hit_p50_us = 0, hit_p99_us = 0, miss_p50_us = 0, miss_p99_us = 0;
  std::size_t hits = 0, lookups = 0;
};

template <class F>
void time_lookups(Row& row, const std::vector<std::string>& subjects, F&& match) {
  std::vector<double> ns(subjects.size());
  std::vector<double> hit_ns, miss_ns;
  std::size_t hits = 0;
  // warm-up pass (lazy DFA states, caches), untimed per call
  for (const auto& s : subjects) hits += match(s) ? 1 : 0;
  hits = 0;
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    auto t0 = Clock::now();
    bool h = match(subjects[i]);
    auto t1 = Clock::now();
    hits += h ? 1 : 0;
    ns[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
    (h ? hit_ns : miss_ns).push_back(ns[i]);
  }
  auto t0 = Clock::now();
  std::size_t batch_hits = 0;
  for (const auto& s : subjects) batch_hits += match(s) ? 1 : 0;
  auto t1 = Clock::now();
  row.mean_batch_us = std::chrono::duration<double, std::micro>(t1 - t0).count() / subjects.size();
  std::sort(ns.begin(), ns.end());
  auto pct = [](std::vector<double>& v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(static_cast<double>(v.size() - 1) * q)] / 1000;
  };
  row.hit_p50_us = pct(hit_ns, 0.5);
  row.hit_p99_us = pct(hit_ns, 0.99);
  row.miss_p50_us = pct(miss_ns, 0.5);
  row.miss_p99_us = pct(miss_ns, 0.99);
  row.p50_us = ns[ns.size() / 2] / 1000;
  row.p99_us = ns[ns.size() * 99 / 100] / 1000;
  row.max_us = ns.back() / 1000;
  row.hits = hits;
  row.lookups = subjects.size();
  (void)batch_hits;
}

std::shared_ptr<const NamedList> load(Row& row, const ListSpec& spec) {
  malloc_trim(0);
  std::size_t before = rss_kib();
  row.before_kib = before;
  auto t0 = Clock::now();
  auto loaded = load_list(spec);
  auto t1 = Clock::now();
  if (!loaded.ok()) {
    for (std::size_t i = 0; i < loaded.errors.size() && i < 10; ++i) {
      std::fprintf(stderr, "%s\n", loaded.errors[i].describe().c_str());
    }
    std::exit(1);
  }
  row.compile_s = std::chrono::duration<double>(t1 - t0).count();
  row.rss_mb = (static_cast<double>(rss_kib()) - static_cast<double>(before)) / 1024;
  malloc_trim(0);
  row.rss_trim_mb = (static_cast<double>(rss_kib()) - static_cast<double>(before)) / 1024;
  row.entries = loaded.list->size();
  return loaded.list;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n_domains = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
  std::size_t n_regexes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10000;
  std::size_t n_lookups = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 200000;

  char tmpl[] = "/tmp/portier-lists-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  std::string dir = tmpl;
  std::string domain_path = dir + "/domains.txt";
  std::string regex_path = dir + "/regexes.txt";

  // ---- generate the domain list and the hosts to look up ----
  std::vector<std::string> hosts;
  {
    Rng r{42};
    std::vector<std::string> sample;  // every 8th listed domain, to build lookups from
    std::string text = "# generated blocklist\n";
    text.reserve(n_domains * 28);
    std::unordered_set<std::string> distinct;  // every line a new domain (freed before the load is measured)
    distinct.reserve(n_domains);
    for (std::size_t i = 0; i < n_domains; ++i) {
      std::string d = domain(r);
      while (!distinct.insert(d).second) d = domain(r);
      switch (r.below(10)) {
        case 0: case 1: case 2: case 3: case 4: text += "0.0.0.0 " + d + "\n"; break;
        case 5: case 6: text += "||" + d + "^\n"; break;
        default: text += d + "\n"; break;
      }
      if (i % 8 == 0) sample.push_back(std::move(d));
    }
    std::ofstream(domain_path, std::ios::binary) << text;
    Rng q{7};
    for (std::size_t i = 0; i < n_lookups; ++i) {
      switch (i % 3) {
        case 0: hosts.push_back(sample[q.below(sample.size())]); break;                       // listed
        case 1: hosts.push_back(word(q, 1, 2) + "." + sample[q.below(sample.size())]); break;  // subdomain
        default: hosts.push_back("www." + word(q, 3, 5) + "-" + word(q, 3, 5) + ".example"); break;  // unlisted
      }
    }
  }

  // ---- generate the regex list and the URLs to match ----
  std::vector<std::string> urls;
  {
    Rng r{1234};
    std::string text = "# generated tracker patterns\n";
    std::vector<std::string> matching;  // per pattern, a URL it matches
    for (std::size_t i = 0; i < n_regexes; ++i) {
      std::string w = word(r);
      std::string tld = kTlds[r.below(std::size(kTlds))];
      switch (r.below(8)) {
        case 0:
          text += "^ads?[0-9]*\\." + w + "\\.\n";
          matching.push_back("ads12." + w + ".com/x.html");
          break;
        case 1:
          text += "/banner[0-9]+/" + w + "\n";
          matching.push_back("https://cdn.example.net/banner42/" + w + "/x.png");
          break;
        case 2:
          text += "track(er|ing)\\." + w + "\\.(com|net)\n";
          matching.push_back("https://tracking." + w + ".net/p");
          break;
        case 3:
          text += "\\." + w + "\\.(com|net|org)/ads/\n";
          matching.push_back("https://www." + w + ".org/ads/1.gif");
          break;
        case 4:
          text += w + "[_-]?(pixel|beacon)\\.gif\n";
          matching.push_back("https://img.example.com/" + w + "-beacon.gif?x=1");
          break;
        case 5:
          text += "^https?://([a-z0-9-]+\\.)*" + w + "\\." + tld + "/\n";
          matching.push_back("https://a.b." + w + "." + tld + "/index.html");
          break;
        case 6:
          if (r.below(8) == 0) {  // only common literals ("http", ".com/"): these go to an RE2::Set
            std::size_t n = 8 + r.below(8);
            text += "^https?://[a-z]{" + std::to_string(n) + "}[0-9]{2,4}\\.(com|net)/\n";
            matching.push_back("http://" + std::string(n, 'q') + "123.net/x");
          } else {
            text += "[?&]" + w + "_(id|uid|ref)=\n";
            matching.push_back("https://shop.example/p?a=1&" + w + "_uid=5");
          }
          break;
        default:
          text += "/" + w + "/(ad|pop)[a-z]*\\.js\n";
          matching.push_back("https://example.com/" + w + "/popunder.js");
          break;
      }
    }
    std::ofstream(regex_path, std::ios::binary) << text;
    // One URL in ten is built to match a random pattern (a blocked request); the rest are random.
    Rng q{99};
    for (std::size_t i = 0; i < n_lookups; ++i) {
      if (i % 10 == 0 && !matching.empty()) {
        urls.push_back(matching[q.below(matching.size())]);
        continue;
      }
      std::string host = (q.below(4) == 0 ? "ads" + std::to_string(q.below(10)) + "." : "www.") + word(q) + "." +
                         kTlds[q.below(std::size(kTlds))];
      std::string path = "/";  // appended piece by piece: g++ 12 warns falsely (-Wrestrict) on "/" + string
      path += word(q, 1, 3);
      path += '/';
      path += word(q, 1, 3);
      path += q.below(3) == 0 ? ".js" : ".html";
      if (q.below(5) == 0) {
        path += '?';
        path += word(q, 1, 2);
        path += "_id=";
        path += std::to_string(q.below(100000));
      }
      urls.push_back("https://" + host + path);
    }
  }

  double clock_ns = clock_overhead_ns();
  std::vector<Row> rows;

  {
    Row row;
    row.what = "domain list";
    ListSpec spec;
    spec.name = "bench-domains";
    spec.path = domain_path;
    spec.kind = ListKind::domain;
    auto list = load(row, spec);
    const DomainSet* set = list->domains();
    time_lookups(row, hosts, [&](const std::string& h) {
      auto m = list->match(h);
      return m && m->has_value();
    });
    std::printf("domain list: %zu distinct domains, %.1f MB in the set (arena+entries+table)\n", set->size(),
                static_cast<double>(set->memory_bytes()) / (1 << 20));
    row.rss_matched_mb = (static_cast<double>(rss_kib()) - static_cast<double>(row.before_kib)) / 1024;
    rows.push_back(row);
  }
  {
    Row row;
    row.what = "regex list";
    ListSpec spec;
    spec.name = "bench-regexes";
    spec.path = regex_path;
    spec.kind = ListKind::regex;
    auto list = load(row, spec);
    const RegexSet* set = list->regexes();
    std::size_t failures = 0;
    time_lookups(row, urls, [&](const std::string& u) {
      auto m = list->match(u);
      if (!m) {
        ++failures;
        return false;
      }
      return m->has_value();
    });
    std::printf("regex list: %zu patterns, %zu prefiltered by literals (%zu of them verified by a TinyProgram), "
                "%zu in %zu RE2::Set(s); budget counted %.1f of %zu MiB; %zu match failures\n",
                set->size(), set->prefiltered(), set->compact_verified(), set->size() - set->prefiltered(), set->shards(),
                static_cast<double>(set->compiled_bytes()) / (1 << 20), spec.max_mem >> 20, failures);
    row.rss_matched_mb = (static_cast<double>(rss_kib()) - static_cast<double>(row.before_kib)) / 1024;
    rows.push_back(row);
  }

  std::printf("\nclock overhead per steady_clock::now(): %.1f ns (included in the per-call figures)\n", clock_ns);
  std::printf("%-22s %8s %9s %7s %8s %9s %7s %7s %7s %8s %14s\n", "list", "entries", "compile_s", "rss_MB",
              "rss_trim", "rss_match", "p50_us", "p99_us", "max_us", "batch_us", "hits");
  for (const auto& r : rows) {
    std::printf("%-22s %8zu %9.2f %7.1f %8.1f %9.1f %7.2f %7.2f %7.1f %8.3f %7zu/%zu\n", r.what.c_str(), r.entries,
                r.compile_s, r.rss_mb, r.rss_trim_mb, r.rss_matched_mb, r.p50_us, r.p99_us, r.max_us,
                r.mean_batch_us, r.hits, r.lookups);
  }
  for (const auto& r : rows) {
    std::printf("%-22s matches: p50 %.2f us, p99 %.2f us; non-matches: p50 %.2f us, p99 %.2f us\n", r.what.c_str(),
                r.hit_p50_us, r.hit_p99_us, r.miss_p50_us, r.miss_p99_us);
  }
  double compile = 0, p99 = 0, rss = 0;
  for (const auto& r : rows) {
    compile = std::max(compile, r.compile_s);
    p99 = std::max(p99, r.p99_us);
    rss += std::max(r.rss_trim_mb, r.rss_matched_mb);
  }
  auto verdict = [](bool ok) { return ok ? "ok" : "MISSED"; };
  std::printf("targets: compile <= 10 s: %.2f s %s; p99 <= 5 us: %.2f us %s; lists' resident memory <= 300 MB: "
              "%.1f MB %s (peak VmHWM %.1f MB)\n",
              compile, verdict(compile <= 10), p99, verdict(p99 <= 5), rss, verdict(rss <= 300),
              static_cast<double>(hwm_kib()) / 1024);

  if (const char* keep = std::getenv("LISTS_BENCH_KEEP"); keep != nullptr && std::string_view(keep) == "1") {
    std::ofstream h(dir + "/hosts.txt"), u(dir + "/urls.txt");
    for (const auto& x : hosts) h << x << "\n";
    for (const auto& x : urls) u << x << "\n";
    std::printf("kept %s (domains.txt, regexes.txt, hosts.txt, urls.txt)\n", dir.c_str());
    return 0;
  }
  std::remove(domain_path.c_str());
  std::remove(regex_path.c_str());
  ::rmdir(dir.c_str());
  return 0;
}
