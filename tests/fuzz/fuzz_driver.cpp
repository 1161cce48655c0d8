// A small stand-in for libFuzzer, so that the fuzz targets run in the normal (g++) build and in CI.
// It links with any target that defines LLVMFuzzerTestOneInput (and, optionally,
// LLVMFuzzerInitialize) and:
//
//   fuzz_<name> CORPUS_DIR [--seconds S] [--seed N] [--max-len BYTES] [--malloc-limit-mb M]
//               [--rss-limit-mb R] [--timeout S] [--artifacts DIR]
//   fuzz_<name> FILE...                     runs each file once (reproduces a saved input)
//
// With a corpus directory it replays every file in it, then for S seconds (default 4) feeds the
// target mutants of the corpus made by a seeded generator (default seed 1, or $DISTD_FUZZ_SEED):
// bit flips, byte overwrites, inserts and deletes, interesting numbers written as text or bytes,
// duplicated runs, splices of two corpus entries and truncations, 1-6 of them stacked, half of
// the time on top of an earlier mutant. It has no coverage feedback: it finds shallow bugs fast and
// keeps the corpus replayed in every CI run; deep runs use the libFuzzer build (docs/testing.md).
//
// Contracts enforced around the target, as libFuzzer's -malloc_limit_mb, -rss_limit_mb and
// -timeout do: a single operator new over M MiB (default 256), a peak RSS over R MiB (default
// 256) or one input taking over S s (default 10) fails the run. So does a crash or an exception
// escaping the target. A failing input is written to DIR/crash-<name>-<n> (default: the current
// directory) and its size and first bytes are printed, so it can be added to the corpus.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

size_t g_malloc_limit = size_t(256) << 20;
bool g_in_target = false;
const std::string* g_current = nullptr;  // the input being run, for the signal handlers
char g_artifact[4096] = "crash-fuzz";

// Writes the current input to g_artifact; async-signal-safe (open/write/close only).
void save_current() {
  if (!g_current) return;
  int fd = ::open(g_artifact, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const char* p = g_current->data();
  size_t left = g_current->size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  ::close(fd);
}

void say(const char* s) { (void)!::write(2, s, std::strlen(s)); }

void on_fatal_signal(int sig) {
  save_current();
  say(sig == SIGALRM ? "\n==fuzz_driver== TIMEOUT: one input ran too long; input saved to "
                     : "\n==fuzz_driver== CRASH (fatal signal); input saved to ");
  say(g_artifact);
  say("\n");
  if (sig == SIGALRM) ::_exit(70);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

std::string read_whole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string preview(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out + (s.size() > 64 ? "..." : "");
}

struct Options {
  std::string corpus;
  std::vector<std::string> files;
  double seconds = 4;
  uint64_t seed = 1;
  size_t max_len = 0;  // 0: max(4096, 2 * the largest corpus entry), at most 1 MiB
  size_t rss_limit_mb = 256;
  unsigned timeout_s = 10;
  std::string artifacts = ".";
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s CORPUS_DIR [--seconds S] [--seed N] [--max-len BYTES] [--malloc-limit-mb M]\n"
               "          [--rss-limit-mb R] [--timeout S] [--artifacts DIR]\n"
               "       %s FILE...   (run each file once)\n",
               argv0, argv0);
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  if (const char* s = std::getenv("DISTD_FUZZ_SEED")) o.seed = std::strtoull(s, nullptr, 10);
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (a == "--seconds") o.seconds = std::atof(val().c_str());
    else if (a == "--seed") o.seed = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--max-len") o.max_len = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--malloc-limit-mb") g_malloc_limit = size_t(std::strtoull(val().c_str(), nullptr, 10)) << 20;
    else if (a == "--rss-limit-mb") o.rss_limit_mb = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--timeout") o.timeout_s = static_cast<unsigned>(std::strtoul(val().c_str(), nullptr, 10));
    else if (a == "--artifacts") o.artifacts = val();
    else if (a.rfind("--", 0) == 0) usage(argv[0]);
    else pos.push_back(a);
  }
  if (pos.empty()) usage(argv[0]);
  struct stat st {};
  if (pos.size() == 1 && ::stat(pos[0].c_str(), &st) == 0 && S_ISDIR(st.st_mode)) o.corpus = pos[0];
  else o.files = pos;
  return o;
}

std::vector<std::string> load_corpus(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (auto& n : names) {
    struct stat st {};
    std::string p = dir + "/" + n;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) out.push_back(read_whole(p));
  }
  return out;
}

// Seeded mutations of text and binary inputs.
class Mutator {
 public:
  Mutator(uint64_t seed, const std::vector<std::string>& corpus, size_t max_len)
      : rng_(seed), corpus_(corpus), max_len_(max_len) {}

  std::string next() {
    std::string s;
    if (!last_.empty() && coin(2)) s = last_;
    else if (!corpus_.empty()) s = corpus_[pick(corpus_.size())];
    int n = 1 + static_cast<int>(pick(6));
    for (int i = 0; i < n; ++i) mutate(s);
    if (s.size() > max_len_) s.resize(max_len_);
    last_ = s;
    return s;
  }

 private:
  size_t pick(size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool coin(size_t n) { return pick(n) == 0; }
  char byte() { return static_cast<char>(pick(256)); }

  void mutate(std::string& s) {
    static const char* kNumbers[] = {"0", "1", "-1", "255", "256", "65535", "65536", "2147483647", "2147483648",
                                     "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
                                     "18446744073709551615", "18446744073709551616", "99999999999999999999999",
                                     "-9223372036854775808", "1e308", "0x10", "00"};
    size_t len = s.size();
    switch (pick(12)) {
      case 0:  // flip a bit
        if (len) s[pick(len)] ^= static_cast<char>(1u << pick(8));
        break;
      case 1:  // overwrite a byte
        if (len) s[pick(len)] = byte();
        break;
      case 2: {  // insert a few random bytes
        size_t k = 1 + pick(4);
        std::string ins;
        for (size_t i = 0; i < k; ++i) ins += byte();
        s.insert(pick(len + 1), ins);
        break;
      }
      case 3:  // delete a run
        if (len) {
          size_t at = pick(len);
          s.erase(at, 1 + pick(std::min<size_t>(len - at, 64)));
        }
        break;
      case 4: {  // write an interesting number over a run of digits (mostly a whole one), or insert it
        std::string num = kNumbers[pick(sizeof kNumbers / sizeof kNumbers[0])];
        size_t at = pick(len + 1);
        if (!coin(4)) {
          std::vector<size_t> runs;
          for (size_t i = 0; i < len; ++i)
            if (s[i] >= '0' && s[i] <= '9' && (i == 0 || s[i - 1] < '0' || s[i - 1] > '9')) runs.push_back(i);
          if (!runs.empty()) at = runs[pick(runs.size())];
        }
        size_t end = at;
        while (end < len && ((s[end] >= '0' && s[end] <= '9') || s[end] == '-')) ++end;
        s.replace(at, end - at, num);
        break;
      }
      case 5: {  // write an interesting binary value (little- or big-endian, 1-8 bytes)
        static const uint64_t kVals[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff,
                                         0x100000000ull, ~0ull, 0x8000000000000000ull};
        uint64_t v = kVals[pick(sizeof kVals / sizeof kVals[0])];
        size_t w = size_t(1) << pick(4);
        bool big = coin(2);
        if (len < w) break;
        size_t at = pick(len - w + 1);
        for (size_t i = 0; i < w; ++i) s[at + i] = static_cast<char>(v >> (8 * (big ? w - 1 - i : i)));
        break;
      }
      case 6:  // duplicate a run
        if (len) {
          size_t at = pick(len);
          size_t k = 1 + pick(std::min<size_t>(len - at, 256));
          s.insert(pick(len + 1), s.substr(at, k));
        }
        break;
      case 7:  // splice: our head, another entry's tail
      case 8:
        if (!corpus_.empty()) {
          const std::string& o = corpus_[pick(corpus_.size())];
          size_t a = pick(len + 1), b = pick(o.size() + 1);
          s = s.substr(0, a) + o.substr(b);
        }
        break;
      case 9:  // insert a run of another entry
        if (!corpus_.empty()) {
          const std::string& o = corpus_[pick(corpus_.size())];
          if (!o.empty()) {
            size_t b = pick(o.size());
            s.insert(pick(len + 1), o.substr(b, 1 + pick(std::min<size_t>(o.size() - b, 128))));
          }
        }
        break;
      case 10:  // truncate
        s.resize(pick(len + 1));
        break;
      case 11: {  // swap two lines (text formats) or two bytes
        size_t a = pick(len + 1), b = pick(len + 1);
        if (a < len && b < len) std::swap(s[a], s[b]);
        break;
      }
    }
  }

  std::mt19937_64 rng_;
  const std::vector<std::string>& corpus_;
  size_t max_len_;
  std::string last_;
};

void run_one(const std::string& input) {
  g_current = &input;
  // A copy in its own allocation, as libFuzzer does, so that ASan or a careful reader sees a read
  // past the end.
  std::vector<uint8_t> buf(input.begin(), input.end());
  g_in_target = true;
  try {
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
  } catch (const std::exception& e) {
    g_in_target = false;
    save_current();
    std::fprintf(stderr, "==fuzz_driver== an exception escaped the target: %s\n  input (%zu bytes) saved to %s: %s\n",
                 e.what(), input.size(), g_artifact, preview(input).c_str());
    std::exit(71);
  } catch (...) {
    g_in_target = false;
    save_current();
    std::fprintf(stderr, "==fuzz_driver== a non-std exception escaped the target\n  input saved to %s: %s\n",
                 g_artifact, preview(input).c_str());
    std::exit(71);
  }
  g_in_target = false;
}

size_t peak_rss_mb() {
  rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<size_t>(ru.ru_maxrss) / 1024;
}

}  // namespace

// -malloc_limit_mb: a single allocation this large from inside the target is a bug (an unbounded
// reserve or resize driven by the input).
void* operator new(size_t n) {
  if (g_in_target && n > g_malloc_limit) {
    g_in_target = false;
    save_current();
    std::fprintf(stderr, "==fuzz_driver== MALLOC LIMIT: the target asked for %zu bytes at once (limit %zu MiB)\n"
                 "  input (%zu bytes) saved to %s: %s\n",
                 n, g_malloc_limit >> 20, g_current ? g_current->size() : 0, g_artifact,
                 g_current ? preview(*g_current).c_str() : "");
    std::abort();
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::string name = argv[0];
  name = name.substr(name.find_last_of('/') + 1);
  std::snprintf(g_artifact, sizeof g_artifact, "%s/crash-%s", o.artifacts.c_str(), name.c_str());
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGTRAP, SIGALRM}) ::signal(sig, on_fatal_signal);
  auto arm = [&] {
    itimerval t{};
    t.it_value.tv_sec = o.timeout_s;
    ::setitimer(ITIMER_REAL, &t, nullptr);
  };

  if (!o.files.empty()) {
    for (auto& f : o.files) {
      std::string in = read_whole(f);
      std::fprintf(stderr, "running %s (%zu bytes)\n", f.c_str(), in.size());
      arm();
      run_one(in);
    }
    std::fprintf(stderr, "%zu inputs ran without failing\n", o.files.size());
    return 0;
  }

  std::vector<std::string> corpus = load_corpus(o.corpus);
  if (corpus.empty()) {
    std::fprintf(stderr, "%s: the corpus %s is empty or missing\n", name.c_str(), o.corpus.c_str());
    return 2;
  }
  size_t largest = 0;
  for (auto& c : corpus) largest = std::max(largest, c.size());
  size_t max_len = o.max_len ? o.max_len : std::min<size_t>(std::max<size_t>(4096, 2 * largest), 1 << 20);

  auto t0 = std::chrono::steady_clock::now();
  for (auto& c : corpus) {
    arm();
    run_one(c);
  }
  uint64_t runs = corpus.size();
  Mutator mut(o.seed, corpus, max_len);
  auto deadline = t0 + std::chrono::duration<double>(o.seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 16; ++i, ++runs) {
      std::string in = mut.next();
      arm();
      run_one(in);
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  size_t rss = peak_rss_mb();
  std::printf("%s: seed %llu, %zu corpus entries replayed, %llu runs in %.1f s (%.0f/s), max len %zu, peak RSS %zu MiB\n",
              name.c_str(), static_cast<unsigned long long>(o.seed), corpus.size(),
              static_cast<unsigned long long>(runs), secs, runs / secs, max_len, rss);
  if (rss > o.rss_limit_mb) {
    std::fprintf(stderr, "==fuzz_driver== RSS LIMIT: peak RSS %zu MiB is over %zu MiB\n", rss, o.rss_limit_mb);
    return 72;
  }
  return 0;
}
