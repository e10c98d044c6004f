// binding.cc - the Node addon: korutin's engine for JavaScript.
//
// Exposes the backends, the bridge's discovery report, a `Coroutine` class
// whose body is a JS function, and the switch functions (resume, yield,
// and for the scheduler binding's pass and hand-offs JsRunChain and
// JsHandOff), which name a coroutine by its number. Values and exceptions cross in JavaScript
// (ts/coroutine.ts); this file owns what JS asks of the switches: each
// coroutine's state (status()), which one runs (the view it writes on every
// switch, KO_VIEW_MAP), and whether it may suspend at all (RefusalText).
//
// Names: a JS function is named as the C function it wraps, without its
// prefix (`resume` runs JsResume, `stack_pool_limit` ko_stack_pool_limit),
// snake_case like the scheduler's (sched_binding.cc). Errors: every one it
// throws is a ko_err, thrown as a KorutinError (the class ts/native.ts hands
// over with set_error_class()) whose code is the KO_ERRNO_MAP row's.
#include <napi.h>
#include <node_version.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "binding.h"
#include "korutin.h"
#include "sched_binding.h"
#include "v8bridge/async_stack.h"
#include "v8bridge/bridge.h"
#include "v8bridge/discover.h"
#include "v8bridge/join_stack.h"
#include "v8bridge/profiler.h"

namespace korutin {
namespace {

// The code JavaScript throws for a ko_err (KO_ERRNO_MAP's last column).
const char *JsCode(int err) {
  switch (err) {
#define KO_XX(name, value, text, js) \
  case KO_##name: return "ERR_" #js;
    KO_ERRNO_MAP(KO_XX)
#undef KO_XX
    default: return "ERR_NONE";
  }
}

Napi::Value Backends(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  for (int i = 0; i < ko_backend_count(); i++) {
    const ko_backend *be = ko_backend_at(i);
    Napi::Object o = Napi::Object::New(env);
    const char *why = ko_backend_unavailable(be);
    o.Set("name", ko_backend_name(be));
    o.Set("available", why == nullptr);
    o.Set("reason", why ? Napi::Value(Napi::String::New(env, why)) : env.Null());
    o.Set("ownThread", ko_backend_own_thread(be) != 0);
    out.Set(i, o);
  }
  return out;
}

Napi::Value Bridge(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const Discovery &d = Discover();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", d.ok);
  o.Set("reason", d.ok ? env.Null() : Napi::Value(Napi::String::New(env, d.reason)));
  o.Set("threadIdOffset", Napi::Number::New(env, (double)d.thread_id_offset));
  o.Set("stackStartOffset", Napi::Number::New(env, (double)d.stack_start_offset));
  o.Set("threadIdFrom", d.thread_id_from);
  o.Set("stackStartFrom", d.stack_start_from);
  // The isolate's stack-size field (V8 13.6+), or -1: none, not decoded, or
  // refuted on a coroutine's first entry.
  size_t *size_field = d.ok ? StackSizeField(v8::Isolate::GetCurrent()) : nullptr;
  o.Set("stackSizeOffset", Napi::Number::New(env, size_field ? (double)d.stack_size_offset : -1));
  o.Set("minStack", Napi::Number::New(env, (double)kJsMinStack));
  // The native context's join-stack slot (join_stack.h), or -1 and why not.
  const JoinStackDiscovery &join = JoinStackDiscover(v8::Isolate::GetCurrent(), v8::Isolate::GetCurrent()->GetCurrentContext());
  o.Set("joinStackSlot", Napi::Number::New(env, (double)join.slot));
  o.Set("joinStackReason", join.ok ? env.Null() : Napi::Value(Napi::String::New(env, join.reason)));
  // Whether V8's samplers see coroutine frames (v8bridge/profiler.h). The
  // discovery runs outside any coroutine, with the isolate held.
  const ProfilerDiscovery *p = ProfilerDiscovered();
  if (!p && d.ok && !JsCurrent()) p = &ProfilerDiscover(v8::Isolate::GetCurrent());
  o.Set("profiler", p && p->ok);
  o.Set("profilerReason", !p ? Napi::Value(Napi::String::New(env, "not discovered yet"))
                             : p->ok ? env.Null() : Napi::Value(Napi::String::New(env, p->reason)));
  return o;
}

class Coroutine;

// What V8 is told a live coroutine holds outside its heap, so that dropped
// coroutines make GC (and so their finalizers) come soon enough. Measured
// (x64, Node 20-26): a suspended shallow coroutine touches 12-13 KiB of RSS
// on the stack backends (stack pages, V8's archived thread state), 17-18 KiB
// on threads (plus the OS thread). Not the reserved stack size: that is
// mostly untouched address space, and telling V8 about it makes GC thrash.
constexpr int64_t kExternalBytes = 16 * 1024;
constexpr int64_t kExternalBytesOwnThread = 24 * 1024;

// Per environment (main thread or Worker): its async-context stack access
// and the bridge's per-isolate state.
struct Instance {
  std::unique_ptr<AsyncStack> async;
  v8::Isolate *isolate = nullptr;
  void *bridge = nullptr;
  // Live coroutines by number: the switch functions (resume, yieldTo...)
  // name a coroutine by its number, which is cheaper than unwrapping an
  // object. A number is a slot plus, above kSlots, the slot's generation,
  // so a stale number is refused rather than reaching a newer coroutine.
  static constexpr double kSlots = (double)(1u << KO_SLOT_BITS);
  struct Slot {
    JsCoroutine *co;
    double gen;
  };
  std::vector<Slot> coros;
  std::vector<uint32_t> free_slots;
  // Finished coroutines kept for reuse by create() (see JsPool), and what
  // reuse saved: counters for the bench and tests.
  JsPool pool;
  double fresh = 0;   // coroutines create() had to make
  double reused = 0;  // create() calls served from the pool
  // Idle pooled coroutines are freed when none was taken for a while (PoolTick).
  bool taken_since_tick = false;
  napi_ref error_class = nullptr;  // KorutinError (set_error_class)
  // The view JavaScript reads (KO_VIEW_MAP): set_view()'s Int32Array, or
  // `unseen` before it is given.
  int32_t unseen[KO_VIEW_SIZE] = {-1};
  int32_t *view = unseen;
  napi_ref view_ref = nullptr;
  ~Instance() { JsIsolateTeardown(isolate, bridge); }

  // Generations wrap below 2^29, so that a number stays an exact double.
  static constexpr uint64_t kGenMask = (1ull << 29) - 1;
  double Add(JsCoroutine *co) {
    uint32_t i;
    if (!free_slots.empty()) {
      i = free_slots.back();
      free_slots.pop_back();
      coros[i].co = co;
      coros[i].gen = (double)(((uint64_t)coros[i].gen + 1) & kGenMask);
    } else {
      i = (uint32_t)coros.size();
      coros.push_back({co, 0});
    }
    return coros[i].gen * kSlots + i;
  }
  static uint32_t SlotOf(double no) { return (uint32_t)((uint64_t)no & ((uint64_t)kSlots - 1)); }
  // What the view says: `c` runs now (nullptr: no coroutine).
  void Show(const JsCoroutine *c) { view[KO_VIEW_CURRENT] = c && c->no >= 0 ? (int32_t)SlotOf(c->no) : -1; }
  void Remove(double no) {
    uint32_t i = SlotOf(no);
    coros[i].co = nullptr;
    free_slots.push_back(i);
  }
  size_t Live() const { return coros.size() - free_slots.size(); }
  napi_env env = nullptr;
  JsCoroutine *Find(double no) const {
    if (!(no >= 0 && no < 9007199254740992.0)) return nullptr;
    uint64_t n = (uint64_t)no;
    if ((double)n != no) return nullptr;
    uint64_t slot = n & ((uint64_t)kSlots - 1);
    if (slot >= coros.size()) return nullptr;
    const Slot &s = coros[slot];
    return s.co && (uint64_t)s.gen == (n >> 24) ? s.co : nullptr;
  }
};

class Coroutine;

// A KorutinError(JsCode(err), msg); before set_error_class() (only the
// load-time version check), a plain Error with that code. nullptr when its
// constructor threw (that is pending).
napi_value MakeError(napi_env env, int err, const std::string &msg) {
  Instance *inst = Napi::Env(env).GetInstanceData<Instance>();
  napi_value code, text, klass, e;
  napi_create_string_utf8(env, JsCode(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg.c_str(), msg.size(), &text);
  if (inst && inst->error_class && napi_get_reference_value(env, inst->error_class, &klass) == napi_ok) {
    napi_value argv[2] = {code, text};
    return napi_new_instance(env, klass, 2, argv, &e) == napi_ok ? e : nullptr;
  }
  napi_create_error(env, nullptr, text, &e);
  napi_set_named_property(env, e, "code", code);
  return e;
}

// Throws MakeError(env, err, msg).
void Throw(napi_env env, int err, const std::string &msg) {
  if (napi_value e = MakeError(env, err, msg)) napi_throw(env, e);
}

// Why the running coroutine `c` may not suspend now (JsSuspendRefusal) and
// what to do instead, or nullptr: the one text of ERR_UNSAFE_YIELD.
const char *RefusalText(JsCoroutine *c) {
  switch (c ? JsSuspendRefusal(c) : kJsMaySuspend) {
    case kJsMaySuspend:
      return nullptr;
    case kJsInVmWatchdog:
      return "cannot suspend inside vm code run with a timeout (or breakOnSigint): its watchdog is per isolate and would "
             "stop other code; run the vm code without suspending, or put the timeout around the coroutine's work instead";
    case kJsInJoin:
      return "cannot suspend inside Array.prototype.join (or an array's toString/toLocaleString, or a TypedArray's join): "
             "V8 keeps one join stack per context, not per coroutine, and other joins of the array would see it as a "
             "cycle; build the string after suspending (e.g. map the elements to strings first, then join)";
  }
  return nullptr;
}

// Throws ERR_UNSAFE_YIELD when the running coroutine `c` may not suspend
// now; returns whether it did (then nothing else has changed).
bool RefuseSuspend(napi_env env, JsCoroutine *c) {
  const char *why = RefusalText(c);
  if (why) Throw(env, KO_EUNSAFE, why);
  return why != nullptr;
}

AsyncStack &Async(Instance *inst) {
  if (!inst->async) inst->async.reset(new AsyncStack(v8::Isolate::GetCurrent()->GetCurrentContext()));
  return *inst->async;
}

AsyncStack &Async(Napi::Env env) { return Async(env.GetInstanceData<Instance>()); }

class Coroutine : public Napi::ObjectWrap<Coroutine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    // Its number (`no`) is all it shows: the switch functions and status()
    // take it, as for a coroutine of the table.
    return DefineClass(env, "Coroutine", {});
  }

  // new Coroutine(backend: string, stackSize: number, guardSize: number, body: () => void)
  explicit Coroutine(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Coroutine>(info) {
    Napi::Env env = info.Env();
    const Discovery &d = Discover();
    if (!d.ok) {
      Throw(env, KO_EBACKEND, "JavaScript coroutines are not supported on this runtime: " + d.reason);
      return;
    }
    std::string name = info[0].As<Napi::String>();
    const ko_backend *be = ko_backend_find(name.c_str());
    if (!be || ko_backend_unavailable(be)) {
      Throw(env, KO_EBACKEND, "backend '" + name + "' is not usable here: " +
                     (be ? ko_backend_unavailable(be) : "no such backend"));
      return;
    }
    size_t stack = (size_t)info[1].As<Napi::Number>().Int64Value();
    size_t guard = (size_t)info[2].As<Napi::Number>().Int64Value();
    v8::Isolate *iso = v8::Isolate::GetCurrent();
    js_.isolate = iso;
    js_.owner = this;
    inst_ = env.GetInstanceData<Instance>();
    js_.body.Reset(iso, ToV8(info[3]).As<v8::Function>());
    js_.context.Reset(iso, iso->GetCurrentContext());
#if V8_MAJOR_VERSION >= 12  // see v8bridge/bridge.cc
    // It starts in the async context it was created in.
    js_.continuation_data.Reset(iso, iso->GetContinuationPreservedEmbedderData());
#endif
    int err = JsCreate(&js_, be, stack, guard);
    if (!err) {
      external_ = js_.own_thread ? kExternalBytesOwnThread : kExternalBytes;
      Napi::MemoryManagement::AdjustExternalMemory(env, external_);
      no_ = js_.no = inst_->Add(&js_);
      info.This().As<Napi::Object>().DefineProperty(
          Napi::PropertyDescriptor::Value("no", Napi::Number::New(env, no_), napi_enumerable));
    }
    if (err) {
      const char *detail = ko_error_detail();
      Throw(env, err, std::string("cannot create a coroutine: ") + ko_strerror(err) +
                     (detail ? std::string(": ") + detail
                      : err == KO_ENOMEM ? "; each stack is a memory mapping: finish or return() idle coroutines, "
                                           "use a smaller stackSize, or raise the limits (ulimit -v, sysctl vm.max_map_count)"
                                         : ""));
    }
  }

  ~Coroutine() override {
    // Only one finished or never started is freed here; one suspended
    // mid-body (held by a reference until it finishes, so this is
    // environment teardown) was freed by CleanupCoroutines before.
    if (!js_.co || (js_.started && !js_.finished)) return;
    Free();
  }

  // At environment teardown (CleanupCoroutines): frees it whatever its state
  // (not running), without running JavaScript.
  void Teardown() { Free(); }

 public:
  static v8::Local<v8::Value> ToV8(const Napi::Value &v) {
    v8::Local<v8::Value> out;
    napi_value raw = v;
    memcpy(static_cast<void *>(&out), &raw, sizeof raw);
    return out;
  }

 private:

  // A coroutine that returned is freed at once (and no longer kept alive).
  void Finished() {
    Unref();
    Free();
  }

  // Frees the native coroutine (finished, or never started).
  void Free() {
    if (no_ >= 0) inst_->Remove(no_);
    no_ = js_.no = -1;
    if (external_) Napi::MemoryManagement::AdjustExternalMemory(Env(), -external_);
    external_ = 0;
    JsDestroy(&js_);
  }

  JsCoroutine js_;
  Instance *inst_;
  double no_ = -1;  // in Instance::coros
  int64_t external_ = 0;  // bytes reported to V8 (kExternalBytes) until freed

  friend void Started(JsCoroutine *);
  friend void Finished(Instance *, JsCoroutine *);
};

// Whether `c` has a base async context (create()'s or setBase's).
inline bool HasBase(const JsCoroutine *c) { return c->base && !c->base->global.IsEmpty(); }

// Why coroutine `c` cannot be resumed now, or nullptr.
const char *NotResumable(const JsCoroutine *c, int *code) {
  *code = KO_EDONE;
  if (!c->co || c->finished) return "this coroutine has finished; create a new one to run the body again";
  *code = KO_EBUSY;
  if (ko_status(c->co) != KO_SUSPENDED)
    return "this coroutine is running: a coroutine cannot resume itself or a coroutine that is waiting on it";
  return nullptr;
}

// A coroutine about to run for the first time (in this use): one of a
// Coroutine object lives until it finishes.
inline void Started(JsCoroutine *c) {
  if (c->started) return;
  if (c->owner) static_cast<Coroutine *>(c->owner)->Ref();
  else c->holder.Reset();  // from now on ts/coroutine.ts looks after it
}

constexpr int64_t ExternalBytes(const JsCoroutine *c) { return c->own_thread ? kExternalBytesOwnThread : kExternalBytes; }

// Frees a coroutine of the table (never started in this use, or finished):
// a parked one goes back to the pool while there is room.
void Release(Instance *inst, JsCoroutine *c, bool may_pool) {
  c->holder.Reset();
  if (may_pool && c->parked && inst->pool.idle.size() < inst->pool.cap) {
    JsReuse(c);
    // Nothing of its last use stays reachable from here: not its async
    // context. (Its body is kept: ts/coroutine.ts passes every coroutine
    // the same function, so reuse needs no new handle.)
    c->continuation_data.Reset();
    inst->pool.idle.push_back(c);
    return;
  }
  JsDestroy(c);
  int64_t adjusted;
  napi_adjust_external_memory(inst->env, -ExternalBytes(c), &adjusted);
  delete c;
}

// A coroutine that returned (or parked) is freed at once, or pooled.
void Finished(Instance *inst, JsCoroutine *c) {
  if (!c->finished) return;
  if (c->owner) {
    static_cast<Coroutine *>(c->owner)->Finished();
    return;
  }
  inst->Remove(c->no);
  c->no = -1;
  Release(inst, c, true);
}

// Frees the coroutines whose JS objects were collected before they started.
void DrainDropped(Instance *inst) {
  std::vector<JsCoroutine *> dropped;
  dropped.swap(inst->pool.dropped);
  for (JsCoroutine *c : dropped) {
    if (c->no < 0 || c->started || inst->Find(c->no) != c) continue;
    inst->Remove(c->no);
    c->no = -1;
    Release(inst, c, true);
  }
}

void OnDropped(const v8::WeakCallbackInfo<JsCoroutine> &info) {
  JsCoroutine *c = info.GetParameter();
  c->holder.Reset();
  c->pool->dropped.push_back(c);  // freed by the next create(), trim_pool() or pool_tick()
}

// Frees pooled coroutines until at most `keep` wait; returns how many went.
size_t TrimPool(Instance *inst, size_t keep) {
  DrainDropped(inst);
  size_t n = 0;
  while (inst->pool.idle.size() > keep) {
    JsCoroutine *c = inst->pool.idle.back();
    inst->pool.idle.pop_back();
    Release(inst, c, false);
    n++;
  }
  return n;
}

// The pool's idle tick (ts/coroutine.ts calls pool_tick() about every 2 s
// while coroutines are pooled): if none was taken since the last tick, the
// pool is emptied (their stacks and V8 threads freed). Returns how many
// still wait. A JS timer, not a uv one: a Worker unloads the addon before
// its loop closes, and a uv close callback in here would run unmapped code.
Napi::Value PoolTick(const Napi::CallbackInfo &info) {
  Instance *inst = info.Env().GetInstanceData<Instance>();
  DrainDropped(inst);
  if (inst->taken_since_tick) inst->taken_since_tick = false;
  else TrimPool(inst, 0);
  return Napi::Number::New(info.Env(), (double)inst->pool.idle.size());
}

// At environment teardown (main thread or Worker), before N-API's own
// cleanup (the finalizers) and before the addon may be unloaded: every
// coroutine of this environment is freed natively. Pooled ones leave their
// body loops; those suspended mid-body are abandoned (see JsDestroy: no
// JavaScript runs, their `finally` blocks never do); those never started are
// discarded. Their V8 threads, stacks and (threads backend) OS threads are
// gone when this returns, so no thread of a coroutine is left to run in the
// addon once Node unloads it with the last environment that loaded it.
void CleanupCoroutines(void *arg) {
  Instance *inst = static_cast<Instance *>(arg);
  inst->pool.cap = 0;
  v8::HandleScope scope(inst->isolate);
  TrimPool(inst, 0);
  for (size_t i = 0; i < inst->coros.size(); i++) {
    JsCoroutine *c = inst->coros[i].co;
    if (!c) continue;
    // One running (or resuming another) is on a stack below this one: a
    // teardown inside a coroutine. It cannot be freed from here.
    if (c->co && ko_status(c->co) != KO_SUSPENDED && ko_status(c->co) != KO_DONE) continue;
    if (c->owner) {
      static_cast<Coroutine *>(c->owner)->Teardown();
      continue;
    }
    inst->Remove(c->no);
    c->no = -1;
    Release(inst, c, false);
  }
}

// The arguments and the Instance of a plain N-API callback (the fast paths
// take the Instance as their data, not through node-addon-api).
template <size_t N>
struct RawCall {
  napi_env env;
  Instance *inst;
  size_t argc = N;
  napi_value argv[N];
  RawCall(napi_env e, napi_callback_info info) : env(e) {
    void *data;
    napi_get_cb_info(e, info, &argc, argv, nullptr, &data);
    inst = static_cast<Instance *>(data);
  }
};

// The switch functions: plain N-API callbacks (the hot path), with the
// Instance as their data; a coroutine is named by its number.
struct SwitchCall {
  napi_env env;
  Instance *inst;
  size_t argc = 1;
  napi_value arg = nullptr;

  SwitchCall(napi_env e, napi_callback_info info) : env(e) {
    void *data;
    napi_get_cb_info(e, info, &argc, &arg, nullptr, &data);
    inst = static_cast<Instance *>(data);
  }
  void Fail(int err, const char *msg) const { Throw(env, err, msg); }
  // The resumable coroutine named by the argument, or nullptr (thrown).
  JsCoroutine *Target() const {
    double no = -1;
    if (argc >= 1) napi_get_value_double(env, arg, &no);
    JsCoroutine *co = inst->Find(no);
    if (!co) {
      Fail(KO_EDONE, "no such coroutine: it has finished, or this is not a coroutine's number");
      return nullptr;
    }
    int code;
    const char *why = NotResumable(co, &code);
    if (why) Fail(code, why);
    return why ? nullptr : co;
  }
};

// resume(no): runs coroutine `no` until its body yields or returns.
napi_value Resume(napi_env env, napi_callback_info info) {
  SwitchCall call(env, info);
  JsCoroutine *co = call.Target();
  if (!co) return nullptr;
  Started(co);  // a started coroutine lives until it finishes
  JsCoroutine *back = JsCurrent();
  call.inst->Show(co);
  Finished(call.inst, JsResume(co, false));
  call.inst->Show(back);
  return nullptr;
}

// Resumes coroutine `co` (resumable, with a base) in its base async context
// (create()'s or set_base's), entered and left natively (as
// AsyncResource#runInAsyncScope would, for less). Chained, the coroutines it
// hands the turn to (JsHandOff) run in turn, each in its own, until one
// yields or returns: that one comes back, not yet freed (see Finished).
JsCoroutine *RunInBase(Instance *inst, JsCoroutine *co, bool chained) {
  AsyncStack &async = Async(inst);
  Started(co);
  JsCoroutine *back = JsCurrent();
  async.Enter(co->base_id, co->base_trigger, co->base.get());
  inst->Show(co);
  JsCoroutine *last = JsResume(co, chained);
  async.Leave(last->base_id);
  inst->Show(back);
  return last;
}

// resume_scoped(no): resume(no) in its base async context.
napi_value ResumeScoped(napi_env env, napi_callback_info info) {
  SwitchCall call(env, info);
  JsCoroutine *co = call.Target();
  if (!co) return nullptr;
  if (!HasBase(co) || !Async(call.inst).ok()) {
    call.Fail(KO_EINVAL, "resume_scoped() needs a base async context and a movable async stack");
    return nullptr;
  }
  Finished(call.inst, RunInBase(call.inst, co, false));
  return nullptr;
}

// yield(): suspends the running coroutine until it is resumed again
// (ERR_UNSAFE_YIELD where it may not: see RefuseSuspend).
napi_value Yield(napi_env env, napi_callback_info info) {
  JsCoroutine *c = JsCurrent();
  if (!c) {
    SwitchCall(env, info).Fail(KO_ENOTCORO, "yield() was called outside a coroutine; call it from inside a coroutine body");
    return nullptr;
  }
  if (RefuseSuspend(env, c)) return nullptr;
  JsYield(c);
  return nullptr;
}

// create(backend: number, stackSize, guardSize, body) -> number: a coroutine
// owned by the table (no object): the fast path of ts/coroutine.ts. Served
// from the pool of finished coroutines when one of the same backend and
// sizes waits there (its stack and V8 thread are reused), else made anew.
// `backend` is the index in backends().
napi_value Create(napi_env env, napi_callback_info info) {
  RawCall<8> call(env, info);
  Instance *inst = call.inst;
  napi_value *argv = call.argv;
  if (!inst->pool.dropped.empty()) DrainDropped(inst);
  Napi::Env e(env);
  const Discovery &d = Discover();
  if (!d.ok) {
    Throw(e, KO_EBACKEND, "JavaScript coroutines are not supported on this runtime: " + d.reason);
    return nullptr;
  }
  int32_t index = -1;
  int64_t stack = 0, guard = 0;
  napi_get_value_int32(env, argv[0], &index);
  napi_get_value_int64(env, argv[1], &stack);
  napi_get_value_int64(env, argv[2], &guard);
  const ko_backend *be = index >= 0 && index < ko_backend_count() ? ko_backend_at(index) : nullptr;
  if (!be || ko_backend_unavailable(be)) {
    Throw(e, KO_EBACKEND, std::string("backend #") + std::to_string(index) + " is not usable here: " +
                   (be ? ko_backend_unavailable(be) : "no such backend"));
    return nullptr;
  }
  v8::Isolate *iso = inst->isolate;
  v8::Local<v8::Function> body = Coroutine::ToV8(Napi::Value(env, argv[3])).As<v8::Function>();
  JsCoroutine *c = nullptr;
  std::vector<JsCoroutine *> &idle = inst->pool.idle;
  for (size_t i = idle.size(); i-- > 0;) {
    JsCoroutine *p = idle[i];
    if (p->backend == be && p->req_stack == (size_t)stack && p->req_guard == (size_t)guard) {
      c = p;
      idle.erase(idle.begin() + (long)i);
      break;
    }
  }
  if (c) {
    inst->reused++;
    inst->taken_since_tick = true;
    v8::Local<v8::Context> ctx = iso->GetCurrentContext();
    if (c->context != ctx) c->context.Reset(iso, ctx);
  } else {
    c = new JsCoroutine();
    c->isolate = iso;
    c->backend = be;
    c->req_stack = (size_t)stack;
    c->req_guard = (size_t)guard;
    c->pool = &inst->pool;
    c->context.Reset(iso, iso->GetCurrentContext());
    int err = JsCreate(c, be, (size_t)stack, (size_t)guard);
    if (err) {
      delete c;
      const char *detail = ko_error_detail();
      Throw(e, err, std::string("cannot create a coroutine: ") + ko_strerror(err) +
                     (detail ? std::string(": ") + detail
                      : err == KO_ENOMEM ? "; each stack is a memory mapping: finish or return() idle coroutines, "
                                           "use a smaller stackSize, or raise the limits (ulimit -v, sysctl vm.max_map_count)"
                                         : ""));
      return nullptr;
    }
    inst->fresh++;
    int64_t adjusted;
    napi_adjust_external_memory(env, ExternalBytes(c), &adjusted);
  }
  if (c->body != body) c->body.Reset(iso, body);
#if V8_MAJOR_VERSION >= 12  // see v8bridge/bridge.cc
  {
    // It starts in the async context it was created in.
    v8::Local<v8::Value> cpd = iso->GetContinuationPreservedEmbedderData();
    if (c->continuation_data != cpd) c->continuation_data.Reset(iso, cpd);
  }
#endif
  c->no = inst->Add(c);
  if (call.argc >= 5) {
    v8::Local<v8::Value> holder = Coroutine::ToV8(Napi::Value(env, argv[4]));
    if (holder->IsObject()) {
      c->holder.Reset(iso, holder.As<v8::Object>());
      c->holder.SetWeak(c, OnDropped, v8::WeakCallbackType::kParameter);
    }
  }
  if (call.argc >= 8) {
    // its base async context (as setBase), for resumeScoped and chains
    napi_get_value_double(env, argv[5], &c->base_id);
    napi_get_value_double(env, argv[6], &c->base_trigger);
    v8::Local<v8::Object> resource = Coroutine::ToV8(Napi::Value(env, argv[7])).As<v8::Object>();
    if (c->base) c->base->Set(iso, resource);
    else c->base.reset(new AsyncEntry(iso, resource));
  }
  napi_value out;
  napi_create_double(env, c->no, &out);
  return out;
}

// The table's coroutine named by argv[0] (not one of a Coroutine object), or nullptr (thrown).
JsCoroutine *Owned(napi_env env, Instance *inst, napi_value arg) {
  double no = -1;
  napi_get_value_double(env, arg, &no);
  JsCoroutine *c = inst->Find(no);
  if (!c || c->owner) {
    Throw(Napi::Env(env), KO_EDONE, "no such coroutine: it has finished, or this is not a coroutine's number");
    return nullptr;
  }
  return c;
}

// destroy(no): frees coroutine `no`, which must not be started (it may
// go back to the pool).
napi_value DestroyNo(napi_env env, napi_callback_info info) {
  RawCall<1> call(env, info);
  Instance *inst = call.inst;
  JsCoroutine *c = Owned(env, inst, call.argv[0]);
  if (!c) return nullptr;
  if (c->started && !c->finished) {
    Throw(Napi::Env(env), KO_EBUSY, "a started coroutine must finish (return() it) before it is destroyed");
    return nullptr;
  }
  inst->Remove(c->no);
  c->no = -1;
  Release(inst, c, true);
  return nullptr;
}

// status(no) -> the state of coroutine `no`: KO_STATE_MAP's value, or
// KO_JS_CREATED before its first resume. The engine owns it; JS asks.
napi_value Status(napi_env env, napi_callback_info info) {
  RawCall<1> call(env, info);
  double no = -1;
  napi_get_value_double(env, call.argv[0], &no);
  JsCoroutine *c = call.inst->Find(no);
  int32_t state = !c || !c->co || c->finished ? KO_DONE : !c->started ? KO_JS_CREATED : (int32_t)ko_status(c->co);
  napi_value out;
  napi_create_int32(env, state, &out);
  return out;
}

// set_view(Int32Array(VIEW_SIZE)): where the switch functions show which
// coroutine runs now (KO_VIEW_MAP), for ts/coroutine.ts to read.
napi_value SetView(napi_env env, napi_callback_info info) {
  RawCall<1> call(env, info);
  Instance *inst = call.inst;
  void *data = HoldTypedArray(env, call.argv[0], napi_int32_array, KO_VIEW_SIZE, &inst->view_ref);
  if (!data) {
    Throw(env, KO_EINVAL, "set_view() takes an Int32Array of VIEW_SIZE");
    return nullptr;
  }
  inst->view = static_cast<int32_t *>(data);
  inst->Show(JsCurrent());
  return nullptr;
}

// suspend_refusal() -> the ERR_UNSAFE_YIELD error saying why the running
// coroutine may not suspend now (a scheduler operation returned
// KO_EUNSAFE), or undefined when it may.
napi_value SuspendRefusal(napi_env env, napi_callback_info info) {
  const char *why = RefusalText(JsCurrent());
  return why ? MakeError(env, KO_EUNSAFE, why) : nullptr;
}

// vm_watch(delta): vm code with a watchdog (a timeout, breakOnSigint)
// begins (+1) or ends (-1) on the running coroutine's stack: while one is
// under way it may not suspend (see RefuseSuspend).
napi_value VmWatch(napi_env env, napi_callback_info info) {
  RawCall<1> call(env, info);
  int32_t delta = 0;
  napi_get_value_int32(env, call.argv[0], &delta);
  JsCoroutine *c = JsCurrent();
  if (c) c->vm_watchdogs += delta;
  return nullptr;
}

// set_base(no, asyncId, triggerId, resource): the async context a chain
// runs coroutine `no` in (see JsRunChain).
napi_value SetBaseNo(napi_env env, napi_callback_info info) {
  RawCall<4> call(env, info);
  napi_value *argv = call.argv;
  JsCoroutine *c = Owned(env, call.inst, argv[0]);
  if (!c) return nullptr;
  napi_get_value_double(env, argv[1], &c->base_id);
  napi_get_value_double(env, argv[2], &c->base_trigger);
  c->base.reset(new AsyncEntry(c->isolate, Coroutine::ToV8(Napi::Value(env, argv[3])).As<v8::Object>()));
  return nullptr;
}

// trimPool(keep = 0): frees pooled coroutines until at most `keep` wait;
// returns how many were freed.
Napi::Value TrimPoolFn(const Napi::CallbackInfo &info) {
  Instance *inst = info.Env().GetInstanceData<Instance>();
  size_t keep = info.Length() > 0 ? (size_t)info[0].As<Napi::Number>().Int64Value() : 0;
  return Napi::Number::New(info.Env(), (double)TrimPool(inst, keep));
}

// pool_info() -> { idle, cap, fresh, reused }
Napi::Value PoolInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Instance *inst = env.GetInstanceData<Instance>();
  Napi::Object o = Napi::Object::New(env);
  o.Set("idle", (double)inst->pool.idle.size());
  o.Set("cap", (double)inst->pool.cap);
  o.Set("fresh", inst->fresh);
  o.Set("reused", inst->reused);
  return o;
}

Napi::Value InCoroutine(const Napi::CallbackInfo &info) {
  return Napi::Boolean::New(info.Env(), JsCurrent() != nullptr);
}

// async_stack() -> { ok, reason }: can coroutines move their async contexts?
Napi::Value AsyncStackInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  AsyncStack &a = Async(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", a.ok());
  o.Set("reason", a.ok() ? env.Null() : Napi::Value(Napi::String::New(env, a.reason())));
  return o;
}

// asyncPop(asyncId): pops the top async context, which must be asyncId.
Napi::Value AsyncPop(const Napi::CallbackInfo &info) {
  Async(info.Env()).Pop(info[0].As<Napi::Number>().DoubleValue());
  return info.Env().Undefined();
}

// asyncRestore(ids: number[], resources: object[]): inside a coroutine, pushes
// back the async contexts it popped when it suspended (ids holds id, trigger
// pairs, outermost first).
Napi::Value AsyncRestore(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  JsCoroutine *c = JsCurrent();
  if (!c) {
    Throw(env, KO_ENOTCORO, "async_restore() is for a coroutine resuming");
    return env.Undefined();
  }
  AsyncStack &stack = Async(env);
  Napi::Array ids = info[0].As<Napi::Array>();
  Napi::Array resources = info[1].As<Napi::Array>();
  uint32_t n = resources.Length();
  c->async_resources.clear();  // what it pushed last time is off the stack by now
  for (uint32_t i = 0; i < n; i++) {
    napi_value raw = resources.Get(i);
    v8::Local<v8::Object> resource;
    memcpy(static_cast<void *>(&resource), &raw, sizeof raw);
    c->async_resources.push_back(std::make_unique<AsyncEntry>(c->isolate, resource));
    double id = ids.Get(2 * i).As<Napi::Number>().DoubleValue();
    double trigger = ids.Get(2 * i + 1).As<Napi::Number>().DoubleValue();
    stack.Push(id, trigger, c->async_resources.back().get());
  }
  return env.Undefined();
}

// setPoolLimit(max): how many freed stacks are kept for reuse; returns the old limit.
Napi::Value StackPoolLimit(const Napi::CallbackInfo &info) {
  size_t max = (size_t)info[0].As<Napi::Number>().Int64Value();
  // Finished coroutines (stack and V8 thread) are pooled up to the same limit.
  Instance *inst = info.Env().GetInstanceData<Instance>();
  inst->pool.cap = max;
  TrimPool(inst, max);
  return Napi::Number::New(info.Env(), (double)ko_stack_pool_limit(max));
}

// switchCosts(backend: number, n) -> { bridgeNs, v8Ns, slotsNs, backendNs }: the
// parts of one switch, each timed alone (see JsMeasureSwitch), for the bench.
Napi::Value SwitchCostsFn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int index = info[0].As<Napi::Number>().Int32Value();
  int n = info[1].As<Napi::Number>().Int32Value();
  const ko_backend *be = index >= 0 && index < ko_backend_count() ? ko_backend_at(index) : nullptr;
  if (!be || ko_backend_unavailable(be) || JsCurrent()) {
    Throw(env, KO_EINVAL, "switch_costs() takes an available backend's index, outside any coroutine");
    return env.Undefined();
  }
  SwitchCosts c = JsMeasureSwitch(v8::Isolate::GetCurrent(), be, 64 * 1024, n);
  Napi::Object o = Napi::Object::New(env);
  o.Set("bridgeNs", c.bridge_ns);
  o.Set("v8Ns", c.v8_ns);
  o.Set("slotsNs", c.slots_ns);
  o.Set("backendNs", c.backend_ns);
  return o;
}

// live_coroutines(): coroutines of this thread that exist natively (created
// and not yet finished or destroyed).
Napi::Value LiveCoroutines(const Napi::CallbackInfo &info) {
  Instance *inst = info.Env().GetInstanceData<Instance>();
  DrainDropped(inst);  // those collected unstarted are not live
  return Napi::Number::New(info.Env(), (double)inst->Live());
}

// set_error_class(KorutinError): the class of every error thrown here.
Napi::Value SetErrorClass(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Instance *inst = env.GetInstanceData<Instance>();
  if (inst->error_class) napi_delete_reference(env, inst->error_class);
  napi_create_reference(env, info[0], 1, &inst->error_class);
  return env.Undefined();
}

// The bridge uses V8's C++ API, whose ABI changes with every Node major, so
// this addon runs only in the Node it was built for (NODE_MODULE_VERSION).
// Checked before the first V8 call: another Node gets a coded error, never
// a symbol lookup failure later.
// process.versions[key], or "" where it cannot be read: a Worker being
// terminated while it loads korutin refuses every call into JavaScript.
std::string ProcessVersion(napi_env env, const char *key) {
  napi_value v;
  char text[64];
  size_t len = 0;
  if (napi_get_global(env, &v) != napi_ok || napi_get_named_property(env, v, "process", &v) != napi_ok ||
      napi_get_named_property(env, v, "versions", &v) != napi_ok || napi_get_named_property(env, v, key, &v) != napi_ok ||
      napi_get_value_string_utf8(env, v, text, sizeof text, &len) != napi_ok) {
    return "";
  }
  return std::string(text, len);
}

bool BuiltForThisNode(Napi::Env env) {
  std::string node = ProcessVersion(env, "node");
  std::string abi = ProcessVersion(env, "modules");
  if (abi == std::to_string(NODE_MODULE_VERSION)) return true;
  if (abi.empty()) return false;  // terminating: nothing to tell, nobody to tell it to
  Throw(env, KO_EBACKEND, "korutin's addon was built for Node " NODE_VERSION_STRING " (ABI " + std::to_string(NODE_MODULE_VERSION) +
                 ") but runs in Node " + node + " (ABI " + abi +
                 "): reinstall korutin with this Node (npm rebuild korutin) so that its prebuild or a source build for it is used");
  return false;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (!BuiltForThisNode(env)) return exports;
  // A Worker terminated while it loads korutin: leave the exports empty
  // rather than fail half-way through them.
  if (v8::Isolate::GetCurrent()->IsExecutionTerminating()) return exports;
  Instance *inst = new Instance();
  inst->isolate = v8::Isolate::GetCurrent();
  inst->env = env;
  inst->bridge = JsIsolateSetup(inst->isolate);
  JoinStackDiscover(inst->isolate, inst->isolate->GetCurrentContext());
  env.SetInstanceData(inst);
  napi_add_env_cleanup_hook(env, CleanupCoroutines, inst);
  exports.Set("set_error_class", Napi::Function::New<SetErrorClass>(env, "set_error_class"));
  exports.Set("trim_pool", Napi::Function::New<TrimPoolFn>(env, "trim_pool"));
  exports.Set("pool_info", Napi::Function::New<PoolInfo>(env, "pool_info"));
  exports.Set("pool_tick", Napi::Function::New<PoolTick>(env, "pool_tick"));
  exports.Set("switch_costs", Napi::Function::New<SwitchCostsFn>(env, "switch_costs"));
  exports.Set("async_stack", Napi::Function::New<AsyncStackInfo>(env, "async_stack"));
  exports.Set("async_pop", Napi::Function::New<AsyncPop>(env, "async_pop"));
  exports.Set("async_restore", Napi::Function::New<AsyncRestore>(env, "async_restore"));
  exports.Set("stack_pool_limit", Napi::Function::New<StackPoolLimit>(env, "stack_pool_limit"));
  exports.Set("backends", Napi::Function::New<Backends>(env, "backends"));
  exports.Set("bridge", Napi::Function::New<Bridge>(env, "bridge"));
  exports.Set("live_coroutines", Napi::Function::New<LiveCoroutines>(env, "live_coroutines"));
  exports.Set("built_for", Napi::String::New(env, NODE_VERSION_STRING));
  const struct {
    const char *name;
    napi_callback fn;
  } switches[] = {{"resume", Resume}, {"yield", Yield},
                  {"create", Create}, {"destroy", DestroyNo}, {"set_base", SetBaseNo}, {"resume_scoped", ResumeScoped},
                  {"status", Status}, {"set_view", SetView}, {"vm_watch", VmWatch},
                  {"suspend_refusal", SuspendRefusal}};
  for (const auto &f : switches) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, inst, &fn);
    exports.Set(f.name, fn);
  }
  exports.Set("in_coroutine", Napi::Function::New<InCoroutine>(env, "in_coroutine"));
  exports.Set("Coroutine", Coroutine::Define(env));
  InitScheduler(env, exports);
  return exports;
}

}  // namespace

void *HoldTypedArray(napi_env env, napi_value value, napi_typedarray_type type, size_t min, napi_ref *ref, size_t *len) {
  napi_typedarray_type is;
  size_t n;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, value, &is, &n, &data, &ab, &off) != napi_ok || is != type || n < min) return nullptr;
  if (*ref) napi_delete_reference(env, *ref);
  napi_create_reference(env, value, 1, ref);
  if (len) *len = n;
  return data;
}

JsChainEnd JsRunChain(napi_env env, double no) {
  void *data = nullptr;
  napi_get_instance_data(env, &data);
  Instance *inst = static_cast<Instance *>(data);
  JsCoroutine *co = inst ? inst->Find(no) : nullptr;
  int code = KO_EDONE;
  const char *why = co ? NotResumable(co, &code) : "no such coroutine: it has finished";
  if (!why && JsCurrent()) {
    code = KO_EBUSY;
    why = "a chain is resumed from outside any coroutine";
  }
  if (!why && (!HasBase(co) || !Async(inst).ok())) {
    code = KO_EINVAL;
    why = "a chain needs a base async context and a movable async stack";
  }
  if (why) {
    Throw(env, code, why);
    return kJsChainFailed;
  }
  JsCoroutine *last = RunInBase(inst, co, true);
  bool ended = last->finished;
  Finished(inst, last);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  return pending ? kJsChainFailed : ended ? kJsChainEnded : kJsChainYielded;
}

bool JsHandOff(napi_env env, JsCoroutine *c, double no) {
  void *data = nullptr;
  napi_get_instance_data(env, &data);
  Instance *inst = static_cast<Instance *>(data);
  JsCoroutine *next = inst ? inst->Find(no) : nullptr;
  if (!c->chained || !next || !next->started || !HasBase(next)) return false;
  int code;
  if (NotResumable(next, &code)) return false;
  AsyncStack &async = Async(inst);
  if (!async.ok()) return false;
  async.Leave(c->base_id);
  async.Enter(next->base_id, next->base_trigger, next->base.get());
  inst->Show(next);
  JsYieldTo(c, next);
  return true;
}

bool JsYieldToChain(JsCoroutine *c) {
  if (!c->chained) return false;
  JsYield(c);
  return true;
}

}  // namespace korutin

static Napi::Object InitKorutin(Napi::Env env, Napi::Object exports) {
  return korutin::Init(env, exports);
}
NODE_API_MODULE(korutin, InitKorutin)
