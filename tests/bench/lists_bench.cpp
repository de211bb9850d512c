// Microbenchmark of list loading and matching (not a test; prints a table and never fails the build).
//
//   ./build/lists_bench [domains=1000000] [regexes=10000] [lookups=200000]
//
// Generates, with a fixed-seed PRNG, a domain list (hosts-file, plain and adblock lines mixed) and a
// regex list of realistic ad/tracker patterns, writes them to a temporary directory, loads them through
// load_list (read, parse, validate, compile), and reports per list: compile time, resident memory added
// (VmRSS from /proc/self/status before and after, also after malloc_trim so freed load buffers don't
// count; rss_match is measured again after the lookups, since RE2 builds DFA states lazily), and the latency of single matches (p50/p99/max, each call timed with steady_clock; the
// clock's own cost is printed and not subtracted). Targets: compile <= 10 s, p99 <= 5 us, RSS <= 300 MB.
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
  if (r.below(3) == 0) w += std::to_string(r.below(100));
  return w;
}

std::string domain(Rng& r) {
  std::string d;
  std::size_t labels = 1 + (r.below(10) < 3 ? 1 : 0) + (r.below(10) == 0 ? 1 : 0);
  for (std::size_t i = 0; i < labels; ++i) d += word(r) + ".";
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
  std::size_t hits = 0, lookups = 0;
};

template <class F>
void time_lookups(Row& row, const std::vector<std::string>& subjects, F&& match) {
  std::vector<double> ns(subjects.size());
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
  }
  auto t0 = Clock::now();
  std::size_t batch_hits = 0;
  for (const auto& s : subjects) batch_hits += match(s) ? 1 : 0;
  auto t1 = Clock::now();
  row.mean_batch_us = std::chrono::duration<double, std::micro>(t1 - t0).count() / subjects.size();
  std::sort(ns.begin(), ns.end());
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
    for (std::size_t i = 0; i < n_domains; ++i) {
      std::string d = domain(r);
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
    for (std::size_t i = 0; i < n_regexes; ++i) {
      std::string w = word(r);
      switch (r.below(8)) {
        case 0: text += "^ads?[0-9]*\\." + w + "\\.\n"; break;
        case 1: text += "/banner[0-9]+/" + w + "\n"; break;
        case 2: text += "track(er|ing)\\." + w + "\\.(com|net)\n"; break;
        case 3: text += "\\." + w + "\\.(com|net|org)/ads/\n"; break;
        case 4: text += w + "[_-]?(pixel|beacon)\\.gif\n"; break;
        case 5: text += "^https?://([a-z0-9-]+\\.)*" + w + "\\." + kTlds[r.below(std::size(kTlds))] + "/\n"; break;
        case 6: text += "[?&]" + w + "_(id|uid|ref)=\n"; break;
        default: text += "/" + w + "/(ad|pop)[a-z]*\\.js\n"; break;
      }
    }
    std::ofstream(regex_path, std::ios::binary) << text;
    Rng q{99};
    for (std::size_t i = 0; i < n_lookups; ++i) {
      std::string host = (q.below(4) == 0 ? "ads" + std::to_string(q.below(10)) + "." : "www.") + word(q) + "." +
                         kTlds[q.below(std::size(kTlds))];
      std::string path = "/" + word(q, 1, 3) + "/" + word(q, 1, 3) + (q.below(3) == 0 ? ".js" : ".html");
      if (q.below(5) == 0) path += "?" + word(q, 1, 2) + "_id=" + std::to_string(q.below(100000));
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
    time_lookups(row, hosts, [&](const std::string& h) { return set->match(h) != nullptr; });
    std::printf("domain list: %zu distinct domains, %.1f MB in the set (arena+entries+table)\n", set->size(),
                static_cast<double>(set->memory_bytes()) / (1 << 20));
    row.rss_matched_mb = (static_cast<double>(rss_kib()) - static_cast<double>(row.before_kib)) / 1024;
    rows.push_back(row);
  }
  for (std::size_t shard : {kDefaultRegexShardSize, std::size_t{0}}) {
    Row row;
    row.what = shard == 0 ? "regex list, 1 set" : "regex list, " + std::to_string(shard) + "/set";
    ListSpec spec;
    spec.name = "bench-regexes";
    spec.path = regex_path;
    spec.kind = ListKind::regex;
    spec.shard_size = shard;
    auto list = load(row, spec);
    const RegexSet* set = list->regexes();
    std::size_t failures = 0;
    time_lookups(row, urls, [&](const std::string& u) {
      auto m = set->match(u);
      if (!m) {
        ++failures;
        return false;
      }
      return *m != nullptr;
    });
    std::printf("%s: %zu patterns in %zu RE2::Set(s), max_mem %zu MiB, %zu match failures\n", row.what.c_str(),
                set->size(), set->shards(), spec.max_mem >> 20, failures);
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
  std::printf("targets: compile <= 10 s, p99 <= 5 us, resident memory for the lists <= 300 MB; peak VmHWM %.1f MB\n",
              static_cast<double>(hwm_kib()) / 1024);

  std::remove(domain_path.c_str());
  std::remove(regex_path.c_str());
  ::rmdir(dir.c_str());
  return 0;
}
