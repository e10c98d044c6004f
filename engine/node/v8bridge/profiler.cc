// profiler.cc - see profiler.h.
#include "profiler.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <v8-profiler.h>

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

// Per OS thread: its own record and what it lent.
struct Base {
  void *rec = nullptr;
  int tid = 0;
  void *state = nullptr;  // the record's thread state while lent
  bool lent = false;
  bool checked = false;   // the first loan was checked (see ProfilerLend)
};
thread_local Base t_base;

}  // namespace

const ProfilerDiscovery &ProfilerDiscover(v8::Isolate *iso) {
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
}

void ProfilerLend() {
  Base &b = t_base;
  if (!b.rec || b.lent) return;
  int tid = *SlotsOfThisThread().thread_id;
  if (tid == b.tid) return;
  b.state = PtrAt(b.rec, g_disc.thread_state_offset);
  IntAt(b.rec, g_disc.thread_id_offset) = tid;
  PtrAt(b.rec, g_disc.thread_state_offset) = nullptr;
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
  Base &b = t_base;
  if (!b.lent) return;
  IntAt(b.rec, g_disc.thread_id_offset) = b.tid;
  PtrAt(b.rec, g_disc.thread_state_offset) = b.state;
  b.lent = false;
}

namespace {

// Never destroyed: the ticker thread waits on them until the process ends
// (a destroyed condition variable with a waiter hangs exit()).
struct Ticker {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<v8::Isolate *> running;  // one entry per running own-thread coroutine
  bool started = false;
};
Ticker &T() {
  static Ticker *t = new Ticker();
  return *t;
}
thread_local v8::Isolate *t_registered = nullptr;

bool SamplingSignalInstalled() {
  struct sigaction sa;
  if (sigaction(SIGPROF, nullptr, &sa) != 0) return false;
  if (sa.sa_flags & SA_SIGINFO) return sa.sa_sigaction != nullptr;
  return sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
}

void SampleHere(v8::Isolate *iso, void *) {
  JsCoroutine *c = JsCurrent();
  if (c && c->own_thread && c->isolate == iso) v8::CpuProfiler::CollectSample(iso);
}

void Tick() {
  Ticker &t = T();
  std::unique_lock<std::mutex> lock(t.mu);
  for (;;) {
    t.cv.wait(lock, [&t] { return !t.running.empty(); });
    // Under t.mu: a listed isolate is alive (its coroutine unlists it first).
    for (v8::Isolate *iso : t.running) iso->RequestInterrupt(SampleHere, nullptr);
    t.cv.wait_for(lock, std::chrono::milliseconds(1), [] { return false; });
  }
}

}  // namespace

void ProfilerOwnThreadIn(v8::Isolate *iso) {
  if (t_registered || !SamplingSignalInstalled()) return;
  Ticker &t = T();
  std::lock_guard<std::mutex> lock(t.mu);
  t.running.push_back(iso);
  t_registered = iso;
  if (!t.started) {
    t.started = true;
    std::thread(Tick).detach();
  }
  t.cv.notify_one();
}

void ProfilerOwnThreadOut() {
  if (!t_registered) return;
  Ticker &t = T();
  std::lock_guard<std::mutex> lock(t.mu);
  auto it = std::find(t.running.begin(), t.running.end(), t_registered);
  if (it != t.running.end()) t.running.erase(it);
  t_registered = nullptr;
}

}  // namespace korutin
