// profiler.cc - see profiler.h.
#include "profiler.h"

#include <signal.h>

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

// Initial-exec TLS: one load off the thread pointer on the switch path, not
// a call to __tls_get_addr (this is a shared object), as engine/src/coro.c.
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define KO_TLS_IE thread_local __attribute__((tls_model("initial-exec")))
#else
#define KO_TLS_IE thread_local
#endif

#include "bridge.h"
#include "discover.h"

namespace korutin {
namespace {

// i::Isolate::FindPerThreadDataForThisThread(): the calling thread's record.
const char kFindSym[] = "_ZN2v88internal7Isolate30FindPerThreadDataForThisThreadEv";
using FindFn = void *(*)(void *isolate);
FindFn g_find = nullptr;

ProfilerDiscovery g_disc;
bool g_ran = false;

int &IntAt(void *rec, long off) { return *reinterpret_cast<int *>(static_cast<char *>(rec) + off); }
void *&PtrAt(void *rec, long off) { return *reinterpret_cast<void **>(static_cast<char *>(rec) + off); }

// The record's first field is its isolate (v8::Isolate and i::Isolate share
// an address), then its ThreadId (an int), a stack limit and the
// ThreadState* of an archived thread. Found, not assumed: the thread id is
// the int that equals this thread's id; the thread state is the one
// pointer-sized field that is null while this thread holds the lock and
// non-null while a v8::Unlocker has archived it.
ProfilerDiscovery Run(v8::Isolate *iso) {
  ProfilerDiscovery d;
  if (!Discover().ok) { d.reason = "the V8 bridge is off: " + Discover().reason; return d; }
  std::string why;
  void *fn = FindV8Function(kFindSym, &d.from, &why);
  if (!fn) { d.reason = why; return d; }
  g_find = reinterpret_cast<FindFn>(fn);
  void *rec = g_find(iso);
  if (!rec || PtrAt(rec, 0) != static_cast<void *>(iso)) {
    d.reason = "FindPerThreadDataForThisThread did not return a record of this isolate";
    return d;
  }
  int tid = *SlotsOfThisThread().thread_id;
  constexpr long kWords = 4;  // isolate, thread id, stack limit, thread state
  long tid_off = -1;
  for (long off = sizeof(void *); off < kWords * (long)sizeof(void *); off += sizeof(int)) {
    if (IntAt(rec, off) == tid) { tid_off = off; break; }
  }
  if (tid <= 0 || tid_off < 0) { d.reason = "no field of the thread record holds this thread's id"; return d; }
  void *before[kWords], *during[kWords], *after[kWords];
  memcpy(before, rec, sizeof before);
  {
    v8::Unlocker unlocker(iso);  // archives this thread (its record gets a ThreadState)
    memcpy(during, rec, sizeof during);
  }
  memcpy(after, rec, sizeof after);
  long state_off = -1;
  for (long w = 1; w < kWords; w++) {
    if (w * (long)sizeof(void *) <= tid_off && tid_off < (w + 1) * (long)sizeof(void *)) continue;
    if (!before[w] && during[w] && !after[w]) {
      if (state_off >= 0) { d.reason = "more than one field of the thread record looks like its thread state"; return d; }
      state_off = w * (long)sizeof(void *);
    }
  }
  if (state_off < 0) { d.reason = "no field of the thread record changes as an Unlocker archives the thread"; return d; }
  if (g_find(iso) != rec) { d.reason = "the thread record moved across an Unlocker"; return d; }
  d.thread_id_offset = tid_off;
  d.thread_state_offset = state_off;
  d.ok = true;
  return d;
}

struct Base;
// A record lent to another V8 thread, with what it held (see LendRecord).
struct Loan {
  Base *b = nullptr;
  int tid = 0;
  void *state = nullptr;
};

// Per OS thread: its own record and its loan to a running coroutine.
struct Base {
  void *rec = nullptr;
  int tid = 0;
  pthread_t thread{};
  Loan loan;
  bool lent = false;
  bool checked = false;   // the first loan was checked (see ProfilerLend)
};
KO_TLS_IE Base t_base;

// Lends b's record to V8 thread `tid`; Unlend puts it back.
Loan LendRecord(Base *b, int tid) {
  Loan l{b, IntAt(b->rec, g_disc.thread_id_offset), PtrAt(b->rec, g_disc.thread_state_offset)};
  IntAt(b->rec, g_disc.thread_id_offset) = tid;
  PtrAt(b->rec, g_disc.thread_state_offset) = nullptr;
  return l;
}
void Unlend(const Loan &l) {
  IntAt(l.b->rec, g_disc.thread_id_offset) = l.tid;
  PtrAt(l.b->rec, g_disc.thread_state_offset) = l.state;
}

// ---- The SIGPROF relay (own-thread coroutines; see profiler.h) ----
//
// One slot per running own-thread coroutine (at most one per isolate).
// Its state moves: kFree -> kClaimed -> kArmed (the coroutine runs, holding
// the lock) -> kAsked (the home's handler sent SIGPROF on) -> kGiven (the
// coroutine's handler left its register state and waits) -> kArmed (the
// home's handler sampled it) ... -> kFree (the coroutine releases the lock;
// never while a relay is under way). Everything a handler touches is here,
// in static storage, lock-free.
enum : int { kFree, kClaimed, kArmed, kAsked, kGiven };
struct Relay {
  std::atomic<int> state{kFree};
  std::atomic<pthread_t> home{};    // the thread V8's samplers signal
  std::atomic<pthread_t> target{};  // the coroutine's OS thread
  Base *base = nullptr;             // the home's record, lent while sampling
  int tid = 0;                      // the coroutine's V8 thread id
  std::atomic<void *> context{nullptr};
};
constexpr int kRelays = 64;  // more isolates sampled at once: the rest unseen
Relay g_relays[kRelays];
KO_TLS_IE Relay *t_relay = nullptr;  // this coroutine thread's, while armed

// How long a home's handler waits for the coroutine's thread to answer
// (one that blocks SIGPROF never does): the sample is then V8's own.
constexpr long kAnswerNs = 2'000'000;

// The handler ours stands in front of (V8's), as two words a handler reads.
std::atomic<void *> g_next_fn{nullptr};
std::atomic<bool> g_next_siginfo{false};
std::mutex g_install_mu;

long NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000L + ts.tv_nsec;
}

// One turn of a wait for the other thread: spin a little, then give the CPU
// away (the other thread may need this core to answer).
void Relax(int &turns) {
  if (++turns < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  } else {
    sched_yield();
  }
}

void CallNext(int sig, siginfo_t *info, void *context) {
  void *fn = g_next_fn.load(std::memory_order_acquire);
  if (!fn) return;
  if (g_next_siginfo.load(std::memory_order_relaxed))
    reinterpret_cast<void (*)(int, siginfo_t *, void *)>(fn)(sig, info, context);
  else
    reinterpret_cast<void (*)(int)>(fn)(sig);
}

// On the coroutine's thread, if still asked (the home may have given up):
// leave the registers, wait to be sampled.
bool Give(Relay &r, void *context) {
  r.context.store(context, std::memory_order_relaxed);
  int asked = kAsked;
  if (!r.state.compare_exchange_strong(asked, kGiven, std::memory_order_acq_rel)) return false;
  int turns = 0;
  while (r.state.load(std::memory_order_acquire) == kGiven) Relax(turns);
  return true;
}

// On the home thread, r armed for it: sample r's coroutine. False if it did
// not answer in time.
bool Ask(Relay &r, int sig, siginfo_t *info) {
  int armed = kArmed;
  if (!r.state.compare_exchange_strong(armed, kAsked, std::memory_order_acq_rel)) return false;
  if (!pthread_equal(r.home.load(std::memory_order_relaxed), pthread_self())) {  // reused meanwhile
    r.state.store(kArmed, std::memory_order_release);
    return false;
  }
  if (pthread_kill(r.target.load(std::memory_order_relaxed), SIGPROF) != 0) {
    r.state.store(kArmed, std::memory_order_release);
    return false;
  }
  long deadline = NowNs() + kAnswerNs;
  int turns = 0;
  while (r.state.load(std::memory_order_acquire) != kGiven) {
    if (NowNs() > deadline) {
      int asked = kAsked;
      if (r.state.compare_exchange_strong(asked, kArmed, std::memory_order_acq_rel)) return false;
    }
    Relax(turns);
  }
  Loan loan = LendRecord(r.base, r.tid);
  CallNext(sig, info, r.context.load(std::memory_order_relaxed));
  Unlend(loan);
  r.state.store(kArmed, std::memory_order_release);  // lets the coroutine go on
  return true;
}

std::atomic<int> g_in_handler{0};

void OnSigprof(int sig, siginfo_t *info, void *context) {
  g_in_handler.fetch_add(1, std::memory_order_acq_rel);
  int saved_errno = errno;
  pthread_t self = pthread_self();
  bool done = false;
  for (Relay &r : g_relays) {
    if (r.state.load(std::memory_order_acquire) == kAsked &&
        pthread_equal(r.target.load(std::memory_order_relaxed), self)) {
      done = Give(r, context);
      break;
    }
  }
  for (int i = 0; !done && i < kRelays; i++) {
    Relay &r = g_relays[i];
    if (r.state.load(std::memory_order_acquire) == kArmed &&
        pthread_equal(r.home.load(std::memory_order_relaxed), self))
      done = Ask(r, sig, info);
  }
  if (!done) CallNext(sig, info, context);
  errno = saved_errno;
  g_in_handler.fetch_sub(1, std::memory_order_acq_rel);
}

bool IsHandler(const struct sigaction &sa) {
  if (sa.sa_flags & SA_SIGINFO) return sa.sa_sigaction != nullptr;
  return sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
}

// Puts OnSigprof in front of the installed SIGPROF handler; false if there
// is none (no sampling profiler is on). A profiler that installs its own
// later (V8 does when the first sampler starts) is put behind it again on
// the next arm; one that restores what it replaced restores this one.
bool FrontInstalled() {
  struct sigaction cur;
  if (sigaction(SIGPROF, nullptr, &cur) != 0 || !IsHandler(cur)) return false;
  if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == OnSigprof) return true;
  std::lock_guard<std::mutex> lock(g_install_mu);
  if (sigaction(SIGPROF, nullptr, &cur) != 0 || !IsHandler(cur)) return false;
  if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == OnSigprof) return true;
  bool siginfo = (cur.sa_flags & SA_SIGINFO) != 0;
  g_next_siginfo.store(siginfo, std::memory_order_relaxed);
  g_next_fn.store(siginfo ? reinterpret_cast<void *>(cur.sa_sigaction) : reinterpret_cast<void *>(cur.sa_handler),
                  std::memory_order_release);
  struct sigaction sa = {};
  sa.sa_sigaction = OnSigprof;
  sa.sa_flags = SA_RESTART | SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGPROF, &sa, nullptr) == 0;
}

// When this copy of the library is unloaded (Node unloads an addon loaded
// only by Workers once the last of them is gone) while a profiler is still
// on elsewhere: OnSigprof must not stay installed. What it stood in front
// of comes back, and handlers under way finish first. (V8 never keeps
// OnSigprof to restore later: it saves the handler it replaces only when
// its first sampler starts, and OnSigprof is installed only over one.)
struct UninstallAtUnload {
  ~UninstallAtUnload() {
    std::lock_guard<std::mutex> lock(g_install_mu);
    struct sigaction cur;
    if (sigaction(SIGPROF, nullptr, &cur) != 0 || !(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != OnSigprof) return;
    struct sigaction sa = cur;
    void *fn = g_next_fn.load(std::memory_order_acquire);
    if (g_next_siginfo.load(std::memory_order_relaxed)) {
      sa.sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t *, void *)>(fn);
    } else {
      sa.sa_flags &= ~SA_SIGINFO;
      sa.sa_handler = fn ? reinterpret_cast<void (*)(int)>(fn) : SIG_DFL;
    }
    sigaction(SIGPROF, &sa, nullptr);
    int turns = 0;
    while (g_in_handler.load(std::memory_order_acquire) != 0) Relax(turns);
    timespec grace = {0, 1'000'000};  // one entering but not yet counted
    nanosleep(&grace, nullptr);
  }
} g_uninstall_at_unload;

// On an own-thread coroutine's thread, holding the lock.
void Arm(JsCoroutine *c) {
  Base *home = static_cast<Base *>(c->profiler_home);
  if (t_relay || !home || !home->rec || !FrontInstalled()) return;
  for (Relay &r : g_relays) {
    int free = kFree;
    if (!r.state.compare_exchange_strong(free, kClaimed, std::memory_order_acquire)) continue;
    r.home.store(home->thread, std::memory_order_relaxed);
    r.target.store(pthread_self(), std::memory_order_relaxed);
    r.base = home;
    r.tid = *SlotsOfThisThread().thread_id;
    r.state.store(kArmed, std::memory_order_release);
    t_relay = &r;
    return;
  }
}

// Before the lock is released: a relay under way ends first (the home's
// handler answers, or gives up, within kAnswerNs).
void Disarm() {
  Relay *r = t_relay;
  t_relay = nullptr;
  int turns = 0;
  for (;;) {
    int armed = kArmed;
    if (r->state.compare_exchange_weak(armed, kFree, std::memory_order_acq_rel)) return;
    Relax(turns);
  }
}

}  // namespace

// Out of line, as Discover(): the switch path need not carry it inlined.
__attribute__((noinline)) const ProfilerDiscovery &ProfilerDiscover(v8::Isolate *iso) {
  static std::once_flag once;
  std::call_once(once, [iso] { g_disc = Run(iso); g_ran = true; });
  return g_disc;
}

const ProfilerDiscovery *ProfilerDiscovered() { return g_ran ? &g_disc : nullptr; }

void ProfilerNoteBase(v8::Isolate *iso) {
  if (t_base.rec) return;
  if (!ProfilerDiscover(iso).ok) return;
  void *rec = g_find(iso);
  if (!rec || PtrAt(rec, 0) != static_cast<void *>(iso)) return;
  t_base.rec = rec;
  t_base.tid = IntAt(rec, g_disc.thread_id_offset);
  t_base.thread = pthread_self();
}

void *ProfilerHome() {
  JsCoroutine *c = JsCurrent();
  if (c && c->own_thread) return c->profiler_home;
  return t_base.rec ? &t_base : nullptr;
}

void ProfilerLend() {
  JsCoroutine *c = JsCurrent();
  if (c && c->own_thread) {
    Arm(c);
    return;
  }
  Base &b = t_base;
  if (!b.rec || b.lent) return;
  int tid = *SlotsOfThisThread().thread_id;
  if (tid == b.tid) return;
  b.loan = LendRecord(&b, tid);
  b.lent = true;
  if (!b.checked) {
    // V8 must still find the coroutine's own record by its id (the thread
    // table is keyed apart from the record's field): if not, stop lending.
    b.checked = true;
    void *own = g_find(PtrAt(b.rec, 0));
    if (own == b.rec || !own) {
      ProfilerReturn();
      b.rec = nullptr;
    }
  }
}

void ProfilerReturn() {
  if (t_relay) Disarm();
  Base &b = t_base;
  if (!b.lent) return;
  Unlend(b.loan);
  b.lent = false;
}

}  // namespace korutin
