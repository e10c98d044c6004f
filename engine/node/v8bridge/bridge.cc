// bridge.cc - see bridge.h.
#include "bridge.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "discover.h"
#include "join_stack.h"
#include "profiler.h"
#include "transfer.h"

// V8 12+ has continuation-preserved embedder data (Node 24+ keeps its
// AsyncContextFrame, i.e. AsyncLocalStorage, there): each coroutine carries
// its own across switches.
#if V8_MAJOR_VERSION >= 12
#define KO_CARRY_CONTINUATION_DATA 1
#else
#define KO_CARRY_CONTINUATION_DATA 0
#endif

namespace korutin {
namespace {

// Saves this side's values of V8's thread-local slots and loads the other's.
void SwapSlots(int *save_tid, void **save_start, int load_tid, void *load_start) {
  V8Slots s = SlotsOfThisThread();
  *save_tid = *s.thread_id;
  *save_start = *s.stack_start;
  *s.thread_id = load_tid;
  *s.stack_start = load_start;
}

// Isolate::Enter records the current stack start for the heap's
// conservative stack scan; an Enter/Exit pair refreshes it after a switch.
void RefreshStackStart(v8::Isolate *iso) {
  iso->Enter();
  iso->Exit();
}

// Lends the resumer's thread record to this coroutine for V8's samplers
// while it holds the lock (see profiler.h).
struct ProfilerLoan {
  ProfilerLoan() { ProfilerLend(); }
  ~ProfilerLoan() { ProfilerReturn(); }
};

void SwitchOut(JsCoroutine *c, JsCoroutine *next, bool carry);

// Own thread (threads backend): when the Locker restores a V8 thread, V8
// restores its debug state and re-applies breakpoints, which needs
// Isolate::Current() on this OS thread. V8 12 and later enter the isolate
// there themselves (Debug::RestoreDebug); V8 11 (Node 20) does not, and a
// coroutine resumed after a debugger pause crashed in
// Isolate::main_thread_local_heap(): there the coroutine's thread enters
// the isolate before the Locker (the resumer waits in ko_resume meanwhile,
// so entries stay LIFO). Later V8s must enter after it: entered before,
// Wasm code GC on Node 26 fails `isolate->thread_id() == ThreadId::Current()`.
#define KO_ENTER_BEFORE_LOCK (V8_MAJOR_VERSION < 12)
[[noreturn]] void Abandon(JsCoroutine *c, v8::Unlocker *unlocker);

// Whether a coroutine whose body just returned may park in its pool.
bool MayPark(JsCoroutine *c) {
  return c->pool && !c->quit && !c->terminated && c->pool->idle.size() < c->pool->cap &&
         !c->isolate->IsExecutionTerminating();
}

void *Entry(ko_coro *, void *arg) {
  JsCoroutine *c = static_cast<JsCoroutine *>(arg);
  v8::Isolate *iso = c->isolate;
  {
    v8::Locker locker(iso);  // a fresh V8 thread: new id, new stack guard
    c->locker = &locker;
    if (c->own_thread) iso->Enter(); else RefreshStackStart(iso);
    iso->SetStackLimit(c->js_limit);
    VerifyStackSizeField(iso, *SlotsOfThisThread().stack_start, c->js_limit);  // what GetStackStart() returns here
    ProfilerLoan loan;
    c->entered = true;
    // One body per use; between uses it parks here, its V8 thread
    // archived like any suspended coroutine's (see JsPool).
    for (;;) {
      {
        v8::HandleScope scope(iso);
        c->body_scope = &scope;
        v8::Local<v8::Context> ctx = c->context.Get(iso);
        v8::Context::Scope context_scope(ctx);
#if KO_CARRY_CONTINUATION_DATA
        iso->SetContinuationPreservedEmbedderData(c->continuation_data.Get(iso));
#endif
        v8::TryCatch try_catch(iso);  // the body catches; this stops termination
        c->join_base = JoinDepth(iso, c->context);
        v8::MaybeLocal<v8::Value> ignored = c->body.Get(iso)->Call(ctx, v8::Undefined(iso), 0, nullptr);
        (void)ignored;
        // Termination ends this V8 thread's outermost call, and V8 then
        // cancels it: note it, for the resumer to be terminated in turn.
        if (try_catch.HasTerminated() || iso->IsExecutionTerminating()) c->terminated = true;
      }
      c->body_scope = nullptr;
      if (!MayPark(c)) break;
      c->finished = true;
      c->parked = true;
      {
        v8::HandleScope scope(iso);
        SwitchOut(c, nullptr, false);
      }
      c->parked = false;
      if (c->quit) break;
      c->finished = false;
    }
    if (c->own_thread) iso->Exit();
    c->locker = nullptr;
  }  // the top-level Locker frees this V8 thread's resources
  iso->DiscardThreadSpecificMetadata();
  c->finished = true;
  c->entered = false;
  if (!c->own_thread) {
    SwapSlots(&c->tid, &c->stack_start, c->back_tid, c->back_stack_start);
  }
  return c;  // for the chain's resumer: who came back (see JsResume)
}

}  // namespace

size_t JsNativeReserve(size_t stack_size) {
  return std::max<size_t>(32 * 1024, stack_size / 8);
}

int JsCreate(JsCoroutine *c, const ko_backend *be, size_t stack_size, size_t guard_size) {
  ko_options opt = {};
  opt.backend = be;
  opt.stack_size = stack_size;
  opt.guard_size = guard_size;
  int err = ko_create(&c->co, &opt, Entry, c);
  if (err) return err;
  ko_set_data(c->co, c);
  c->own_thread = ko_backend_own_thread(be) != 0;
  void *lo;
  size_t size;
  ko_coro_stack(c->co, &lo, &size);
  c->js_limit = reinterpret_cast<uintptr_t>(lo) + JsNativeReserve(size);
  c->tid = 0;  // V8 hands out a fresh id the first time it asks
  c->stack_start = static_cast<char *>(lo) + size;
  return KO_OK;
}

JsCoroutine *JsResume(JsCoroutine *c, bool chained) {
  v8::Isolate *iso = c->isolate;
#if KO_CARRY_CONTINUATION_DATA
  // The resumer's async context (AsyncContextFrame on Node 24+) comes back
  // with it; the coroutine runs in its own.
  v8::Local<v8::Value> resumer_data = iso->GetContinuationPreservedEmbedderData();
#endif
  size_t *size_field = StackSizeField(iso);
  size_t resumer_size = size_field ? *size_field : 0;
  if (!JsCurrent()) ProfilerNoteBase(iso);
  void *profiler_home = ProfilerHome();
  ProfilerReturn();
  {
    v8::Unlocker unlocker(iso);
    for (;;) {
      c->started = true;
      c->chained = chained;
      c->profiler_home = profiler_home;
      if (!c->own_thread) {
        SwapSlots(&c->back_tid, &c->back_stack_start, c->tid, c->stack_start);
      }
      // the one that comes back: c, or the last a hand-off went to
      void *back = nullptr;
      ko_resume(c->co, nullptr, &back);
      if (back) c = static_cast<JsCoroutine *>(back);
      JsCoroutine *next = c->next;
      if (!next) break;
      c->next = nullptr;
      c = next;
    }
  }
  RefreshStackStart(iso);
  if ((size_field = StackSizeField(iso))) *size_field = resumer_size;
  ProfilerLend();
#if KO_CARRY_CONTINUATION_DATA
  iso->SetContinuationPreservedEmbedderData(resumer_data);
#endif
  // A coroutine stopped by termination: so is its resumer, out through
  // every level to the thread's own base (its Worker then stops).
  if (c->terminated) iso->TerminateExecution();
  return c;
}

JsRefusal JsSuspendRefusal(JsCoroutine *c) {
  if (c->vm_watchdogs > 0) return kJsInVmWatchdog;
  return JoinDepth(c->isolate, c->context) > c->join_base ? kJsInJoin : kJsMaySuspend;
}

void JsYield(JsCoroutine *c) { JsYieldTo(c, nullptr); }

void JsYieldTo(JsCoroutine *c, JsCoroutine *next) { SwitchOut(c, next, true); }

namespace {
// Whether a hand-off from c to next can switch straight from one to the
// other (the engine's transfer: one switch, not two through the chain's
// resumer in JsResume): both on one backend that allows it, next suspended.
bool Transfers(JsCoroutine *c, JsCoroutine *next) {
  return c->backend == next->backend && ko__can_transfer(c->backend) && ko_status(next->co) == KO_SUSPENDED;
}

// Suspends the running coroutine (see JsYieldTo); `carry`: keep its async
// context (continuation data) for when it resumes.
void SwitchOut(JsCoroutine *c, JsCoroutine *next, bool carry) {
  v8::Isolate *iso = c->isolate;
#if KO_CARRY_CONTINUATION_DATA
  if (carry) {
    // Usually unchanged since the last switch: keep the same global handle.
    v8::Local<v8::Value> data = iso->GetContinuationPreservedEmbedderData();
    if (c->continuation_data != data) c->continuation_data.Reset(iso, data);
  }
#endif
  size_t *size_field = StackSizeField(iso);
  if (size_field) c->v8_stack_size = *size_field;
  if (c->own_thread) iso->Exit();
  ProfilerReturn();
  {
    v8::Unlocker unlocker(iso);
    if (next && Transfers(c, next)) {
      // straight to next, which takes over c's resumer (the chain's), as
      // the resumer's loop in JsResume would have set it up
      next->started = true;
      next->chained = c->chained;
      next->profiler_home = c->profiler_home;
      next->back_tid = c->back_tid;
      next->back_stack_start = c->back_stack_start;
      SwapSlots(&c->tid, &c->stack_start, next->tid, next->stack_start);
      ko__transfer(next->co, nullptr);
    } else {
      if (!c->own_thread) {
        SwapSlots(&c->tid, &c->stack_start, c->back_tid, c->back_stack_start);
      }
      c->next = next;
      ko_yield(c);  // for the chain's resumer: who came back
    }
    if (c->abandon) Abandon(c, &unlocker);
#if KO_ENTER_BEFORE_LOCK
    if (c->own_thread) iso->Enter();
#endif
  }
#if KO_ENTER_BEFORE_LOCK
  if (!c->own_thread) RefreshStackStart(iso);
#else
  if (c->own_thread) iso->Enter(); else RefreshStackStart(iso);
#endif
  if ((size_field = StackSizeField(iso))) *size_field = c->v8_stack_size;
  ProfilerLend();
#if KO_CARRY_CONTINUATION_DATA
  if (carry) iso->SetContinuationPreservedEmbedderData(c->continuation_data.Get(iso));
#endif
  c->join_base = JoinDepth(iso, c->context);
}

// A suspended coroutine woken by JsDestroy at environment teardown, in its
// suspension point: what leaving its frames would do to V8, without leaving
// them (they hold JavaScript, which must not run now). Its Unlocker takes
// this V8 thread back; the body's outermost HandleScope, closed, frees the
// handle blocks of every scope its frames opened; the top-level Locker,
// destroyed, frees the V8 thread (as when a body returns) and unlocks. None
// of these objects is destroyed again: the frames they live in are never
// returned into. It then waits, suspended, to be destroyed with its stack
// (on threads, its OS thread leaves from that wait without unwinding).
[[noreturn]] void Abandon(JsCoroutine *c, v8::Unlocker *unlocker) {
  v8::Isolate *iso = c->isolate;
  unlocker->~Unlocker();
  if (c->body_scope) c->body_scope->~HandleScope();
  c->body_scope = nullptr;
  c->locker->~Locker();
  c->locker = nullptr;
  iso->DiscardThreadSpecificMetadata();
  c->finished = true;
  c->entered = false;
  c->next = nullptr;
  if (!c->own_thread) {
    SwapSlots(&c->tid, &c->stack_start, c->back_tid, c->back_stack_start);
  }
  for (;;) ko_yield(nullptr);
}
}  // namespace

void JsReuse(JsCoroutine *c) {
  c->started = false;
  c->finished = false;  // still parked: the next resume runs its new body
  c->chained = false;
  c->next = nullptr;
  c->vm_watchdogs = 0;
  c->async_resources.clear();
  if (c->base) c->base->global.Reset();  // kept for the next use's base (see AsyncEntry::Set)
  c->base_id = c->base_trigger = 0;
}

void JsDestroy(JsCoroutine *c) {
  if (c->parked) {
    c->quit = true;
    v8::HandleScope scope(c->isolate);
    JsResume(c, false);  // leaves its body loop: its V8 thread is freed
  } else if (c->co && c->entered && !c->finished && ko_status(c->co) == KO_SUSPENDED) {
    c->abandon = true;
    v8::HandleScope scope(c->isolate);
    JsResume(c, false);  // frees its V8 thread in Abandon and comes straight back
  }
  if (c->co) ko_destroy(c->co);
  c->co = nullptr;
  c->body.Reset();
  c->context.Reset();
  c->async_resources.clear();
  c->base.reset();
  c->continuation_data.Reset();
}

#if KO_CARRY_CONTINUATION_DATA && V8_MAJOR_VERSION >= 13
namespace {
// V8 13+ keeps the continuation data in one isolate-wide slot, yet visits
// that slot as a root once for the running thread and once more for every
// archived one. A scavenge is not idempotent: each visit copies a young
// object again, and with coroutines suspended (archived threads) the heap
// was corrupted (Scavenger::Process aborting, Node 24.21 and 26.10). So
// during every GC the slot holds undefined and its value waits in a
// Global, which GC visits exactly once.
struct GcStash {
  v8::Global<v8::Value> data;
  int depth = 0;
};

void StashBeforeGc(v8::Isolate *iso, v8::GCType, v8::GCCallbackFlags, void *p) {
  GcStash *s = static_cast<GcStash *>(p);
  if (s->depth++ > 0) return;
  v8::HandleScope scope(iso);
  s->data.Reset(iso, iso->GetContinuationPreservedEmbedderData());
  iso->SetContinuationPreservedEmbedderData(v8::Undefined(iso));
}

void RestoreAfterGc(v8::Isolate *iso, v8::GCType, v8::GCCallbackFlags, void *p) {
  GcStash *s = static_cast<GcStash *>(p);
  if (s->depth == 0 || --s->depth > 0) return;
  v8::HandleScope scope(iso);
  iso->SetContinuationPreservedEmbedderData(s->data.Get(iso));
  s->data.Reset();
}
}  // namespace

void *JsIsolateSetup(v8::Isolate *iso) {
  GcStash *s = new GcStash();
  iso->AddGCPrologueCallback(StashBeforeGc, s);
  iso->AddGCEpilogueCallback(RestoreAfterGc, s);
  return s;
}

void JsIsolateTeardown(v8::Isolate *iso, void *state) {
  GcStash *s = static_cast<GcStash *>(state);
  iso->RemoveGCPrologueCallback(StashBeforeGc, s);
  iso->RemoveGCEpilogueCallback(RestoreAfterGc, s);
  delete s;
}
#else
void *JsIsolateSetup(v8::Isolate *) { return nullptr; }
void JsIsolateTeardown(v8::Isolate *, void *) {}
#endif

namespace {
double NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

volatile int bench_stop = 0;
void *BenchBody(ko_coro *, void *) {
  while (!bench_stop) ko_yield(nullptr);
  return nullptr;
}
}  // namespace

SwitchCosts JsMeasureSwitch(v8::Isolate *iso, const ko_backend *be, size_t stack_size, int n) {
  SwitchCosts out;
  if (n <= 0) return out;
  // A JS coroutine whose body is native (yields in a loop): round trips
  // through the bridge with no N-API call and no JavaScript in them.
  double t0;
  {
    v8::HandleScope scope(iso);
    v8::Local<v8::Context> ctx = iso->GetCurrentContext();
    v8::Local<v8::Function> body =
        v8::Function::New(ctx, [](const v8::FunctionCallbackInfo<v8::Value> &) {
          JsCoroutine *c = JsCurrent();
          while (!bench_stop) JsYield(c);
        }).ToLocalChecked();
    JsCoroutine c;
    c.isolate = iso;
    c.body.Reset(iso, body);
    c.context.Reset(iso, ctx);
#if KO_CARRY_CONTINUATION_DATA
    c.continuation_data.Reset(iso, iso->GetContinuationPreservedEmbedderData());
#endif
    if (JsCreate(&c, be, std::max(stack_size, kJsMinStack), 0) == KO_OK) {
      bench_stop = 0;
      JsResume(&c, false);
      t0 = NowNs();
      for (int i = 0; i < n; i++) JsResume(&c, false);
      out.v8_ns = (NowNs() - t0) / (2.0 * n);  // the whole bridge switch, for now
      bench_stop = 1;
      JsResume(&c, false);
      JsDestroy(&c);
    }
  }
  if (!ko_backend_own_thread(be)) {
    int tid = 0;
    void *start = nullptr;
    t0 = NowNs();
    for (int i = 0; i < n; i++) {
      int back_tid;
      void *back_start;
      SwapSlots(&back_tid, &back_start, tid, start);  // in ...
      SwapSlots(&tid, &start, back_tid, back_start);  // ... and out again: two switches
    }
    out.slots_ns = (NowNs() - t0) / (2.0 * n);
  }
  ko_options opt = {};
  opt.backend = be;
  opt.stack_size = stack_size;
  ko_coro *co = nullptr;
  if (ko_create(&co, &opt, BenchBody, nullptr) == KO_OK) {
    bench_stop = 0;
    ko_resume(co, nullptr, nullptr);
    t0 = NowNs();
    for (int i = 0; i < n; i++) ko_resume(co, nullptr, nullptr);
    out.backend_ns = (NowNs() - t0) / (2.0 * n);
    bench_stop = 1;
    ko_resume(co, nullptr, nullptr);
    ko_destroy(co);
  }
  // V8's part: what the bridge switch costs beyond the backend and the slots
  out.bridge_ns = out.v8_ns;
  out.v8_ns = std::max(0.0, out.bridge_ns - out.backend_ns - out.slots_ns);
  return out;
}

JsCoroutine *JsCurrent() {
  ko_coro *co = ko_current();
  return co ? static_cast<JsCoroutine *>(ko_get_data(co)) : nullptr;
}

}  // namespace korutin
