// bridge.h - running a JavaScript function as a stackful coroutine.
//
// Every coroutine looks to V8 like a thread of its own. A switch releases
// the isolate with v8::Unlocker (V8 archives the running "thread": its
// handles, try-catch chain, stack guard...), moves V8's two thread-local
// slots (thread id, stack start) to the other side's values, switches
// stacks with the engine, and the other side takes the isolate back with
// v8::Locker, which restores its own archived state. GC then sees the frames
// of every suspended coroutine through the archived threads.
//
// On backends whose coroutines own an OS thread (threads), the slots are
// naturally per thread; the coroutine thread enters the isolate on each
// resume and leaves it on each suspend so that entries stay LIFO.
//
// A hand-off (JsYieldTo) suspends the running coroutine and continues in
// another one at once, without taking the isolate back in between: one V8
// thread switch instead of two. Where the backend allows it (the engine's
// transfer) the switch goes straight from one coroutine to the other,
// which takes over the chain's resumer; elsewhere (ucontext, threads) the
// resumer's loop resumes the next one. The resumer's JsResume returns when
// a coroutine of that chain yields or ends.
#ifndef KO_V8BRIDGE_BRIDGE_H
#define KO_V8BRIDGE_BRIDGE_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <v8.h>

#include "async_stack.h"
#include "korutin.h"

namespace korutin {

struct JsCoroutine;

// Finished coroutines kept for reuse (per isolate): each keeps its stack
// and its V8 thread (id, archived thread state, stack limit), parked at the
// bottom of its stack until the binding hands it a new body. `cap` bounds
// how many wait here.
struct JsPool {
  std::vector<JsCoroutine *> idle;
  size_t cap = 0;
  // Coroutines never started whose JS object was collected (see
  // JsCoroutine::holder), for the binding to free.
  std::vector<JsCoroutine *> dropped;
};

struct JsCoroutine {
  v8::Isolate *isolate = nullptr;
  ko_coro *co = nullptr;
  bool own_thread = false;
  bool started = false;
  bool finished = false;
  // Its body was stopped by termination (worker.terminate(), process.exit()
  // in a Worker): the resumer is terminated in turn (see JsResume).
  bool terminated = false;
  v8::Global<v8::Function> body;     // called with no arguments; must not throw
  v8::Global<v8::Context> context;
  uintptr_t js_limit = 0;            // V8's stack limit inside the coroutine
  // V8's thread-local slots: this coroutine's values and its resumer's.
  int tid = 0;
  void *stack_start = nullptr;
  int back_tid = 0;
  void *back_stack_start = nullptr;
  // V8 14's per-isolate stack size (see discover.h) while it runs.
  size_t v8_stack_size = 0;
  // Async contexts this coroutine re-pushed on resume (Node keeps handles
  // to them while they are on its stack; see async_stack.h).
  std::vector<std::unique_ptr<AsyncEntry>> async_resources;
  // V8's continuation-preserved embedder data (AsyncContextFrame on Node
  // 24+) as the coroutine left it when it last suspended.
  v8::Global<v8::Value> continuation_data;
  // The async context a chain enters it in (its AsyncResource): pushed on
  // Node's async stack while it runs in a chain, popped when it leaves.
  std::unique_ptr<AsyncEntry> base;
  double base_id = 0;
  double base_trigger = 0;
  // A hand-off that cannot transfer: set by JsYieldTo, taken by the
  // resumer's JsResume.
  JsCoroutine *next = nullptr;
  // Whoever resumed it (or handed off to it) accepts hand-offs.
  bool chained = false;
  // Own thread: the thread whose samplers see it (see profiler.h), as its
  // resumer last told it.
  void *profiler_home = nullptr;
  // The binding's object that owns this coroutine (nullptr: the binding's
  // table does, and it may be pooled).
  void *owner = nullptr;
  // Pooling (see JsPool): where it may park when its body returns; its body
  // loop is running (it has a V8 thread); it has parked (finished = true
  // too); it is being woken to leave for good.
  JsPool *pool = nullptr;
  bool entered = false;
  bool parked = false;
  bool quit = false;
  // What it was created with (a pooled one is reused for the same).
  const ko_backend *backend = nullptr;
  size_t req_stack = 0;
  size_t req_guard = 0;
  // Abandoning (JsDestroy of one suspended mid-body, at environment
  // teardown): set by the destroyer, seen by the coroutine when it wakes in
  // its suspension point. Its body's outermost HandleScope and its V8
  // thread's top-level Locker, on its own stack, are what it closes then.
  bool abandon = false;
  v8::HandleScope *body_scope = nullptr;
  v8::Locker *locker = nullptr;
  // The joins under way in its context when it was last resumed (see
  // join_stack.h): more when it would suspend means one of its own.
  int join_base = 0;
  // vm calls with a timeout (or breakOnSigint) under way on its stack (the
  // binding's vm_watch): vm's watchdog is per isolate, not per stack, so it
  // must not suspend inside one.
  int vm_watchdogs = 0;
  // Its number in the binding's table while it is in use, else -1.
  double no = -1;
  // Until it starts: a weak handle on the JS object that stands for it, so
  // that one dropped unstarted is freed (queued on pool->dropped).
  v8::Global<v8::Object> holder;
};

// Creates the native coroutine. Returns a ko_err.
int JsCreate(JsCoroutine *c, const ko_backend *be, size_t stack_size, size_t guard_size);
// Runs it until its body yields or returns (caller holds the isolate). With
// `chained`, coroutines it hands off to run in turn; returns the one that
// yielded or returned last (c itself without hand-offs).
JsCoroutine *JsResume(JsCoroutine *c, bool chained);
// Why the running coroutine `c` may not suspend now (the binding refuses
// then): an Array.prototype.join it began since it was resumed is under way
// (see join_stack.h), or vm code run with a watchdog (JsCoroutine::vm_watchdogs).
enum JsRefusal { kJsMaySuspend, kJsInJoin, kJsInVmWatchdog };
JsRefusal JsSuspendRefusal(JsCoroutine *c);
// Inside the running coroutine: suspends it until the next JsResume.
void JsYield(JsCoroutine *c);
// Inside the running coroutine, whose resumer accepts hand-offs
// (c->chained): suspends it and continues in `next` (suspended, not c) at
// once, straight or through the resumer's loop (see the top).
void JsYieldTo(JsCoroutine *c, JsCoroutine *next);
// Frees a coroutine that is not running (caller holds the isolate). A
// parked one (c->parked) is first woken to leave its body loop, which frees
// its V8 thread. One suspended mid-body is abandoned, which only
// environment teardown may do (the binding refuses it otherwise): woken
// once, it frees its V8 thread without running any JavaScript or unwinding
// its frames (its `finally` blocks and C++ destructors never run, as for a
// generator never resumed), then waits to be destroyed with its stack; on
// the threads backend its OS thread leaves through the backend (see
// backends/threads) and is joined before this returns.
void JsDestroy(JsCoroutine *c);
// A parked coroutine, ready to run a new body: clears what its last use
// left (async contexts, continuation data, hand-off state).
void JsReuse(JsCoroutine *c);
// Per isolate (the main thread's, each Worker's), before its first coroutine
// and after its last: what the bridge needs from V8 there. Returns a state
// for JsIsolateTeardown.
void *JsIsolateSetup(v8::Isolate *iso);
void JsIsolateTeardown(v8::Isolate *iso, void *state);
// The JS coroutine running on this OS thread, or nullptr.
JsCoroutine *JsCurrent();

// What one switch of a JS coroutine is made of, timed over `n` round trips
// on the calling thread (which holds the isolate and runs no coroutine), in
// ns per switch: the whole bridge switch (JsResume/JsYield of a coroutine
// whose body is native, so no N-API call and no JavaScript), V8's two
// thread-local slots (saved and loaded), the backend's context switch (half
// a ko_resume/ko_yield round trip of a C coroutine), and V8's part as what
// is left of the bridge's (Unlocker/Locker: archive one V8 thread, restore
// the other; stack start, stack size, continuation data). For the bench.
struct SwitchCosts {
  double bridge_ns = 0;  // the whole switch through the bridge (no N-API, no JS)
  double v8_ns = 0;
  double slots_ns = 0;
  double backend_ns = 0;
};
SwitchCosts JsMeasureSwitch(v8::Isolate *iso, const ko_backend *be, size_t stack_size, int n);

// Bytes below V8's stack limit kept for C++ (runtime calls, GC).
size_t JsNativeReserve(size_t stack_size);
// The smallest stack a JS coroutine can run in.
constexpr size_t kJsMinStack = 96 * 1024;

}  // namespace korutin

#endif
