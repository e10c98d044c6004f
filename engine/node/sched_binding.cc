// sched_binding.cc - the scheduler core exposed to ts/scheduler.ts.
//
// The core (engine/src/sched) decides who blocks and who wakes; JavaScript
// switches the coroutines and reads the clock. Every function here takes and
// returns plain numbers (handles, statuses, microseconds), so a crossing is
// cheap: the arguments come in a small Float64Array shared with JavaScript
// (ts/sched/binding.ts writes them, then calls with none: no N-API argument
// is converted), extra results (a received slot, a new object's serial) go
// out in a small Int32Array instead of being boxed, the outcome of each
// task's wait into that task's record of another one, and select cases are
// read from a shared Float64Array. JS values never come here: channels
// carry slot numbers of a table kept in JavaScript.
//
// These are plain N-API callbacks on the hot path (no wrapper objects are
// built per call); node-addon-api is used to set the module up.
//
// Names: each JS function is named as the core function it calls, without
// its `ks_` prefix (`chan_send` calls ks_chan_send); the few that read a
// field instead (`task_info`, `chan_info`...) are named in the same style.
// The numbers JS needs (statuses, states, the io slots) are not exported:
// ts/vocab.ts mirrors them from the C tables (scripts/gen-vocab.js).
#include "sched_binding.h"
#include "binding.h"
#include "v8bridge/bridge.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <uv.h>

#include "korutin.h"
#include "sched/core.h"

namespace korutin {
namespace {

struct Sched {
  ks_core *core = nullptr;
  double *args = nullptr;  // KS_ARGS_SIZE: the arguments of the call under way
  double args_scratch[KS_ARGS_SIZE] = {};
  int32_t *io = nullptr;
  int32_t scratch[KS_IO_SIZE] = {};
  double *cases = nullptr;
  size_t ncases = 0;
  int32_t *outcome = nullptr;  // KS_OUT_SIZE per handle (see KS_OUTCOME_MAP)
  size_t noutcome = 0;         // handles it has room for
  napi_ref args_ref = nullptr;
  napi_ref io_ref = nullptr;
  napi_ref cases_ref = nullptr;
  napi_ref outcome_ref = nullptr;
  std::vector<ks_case> kcases;
  // Each task's coroutine (its number in the binding's table), by handle,
  // for hand-offs (task_bind); -1: none.
  std::vector<double> coro_no;
  // The core's clock is ts/sched/binding.ts clock() (performance.now() in
  // microseconds): uv_hrtime() less this, measured in set_buffers().
  int64_t clock_offset = 0;
};

// The core's clock (see Sched::clock_offset), for its passes.
ks_time Clock(void *arg) {
  int64_t now = (int64_t)(uv_hrtime() / 1000) - static_cast<Sched *>(arg)->clock_offset;
  return now > 0 ? (ks_time)now : 0;
}

void Cleanup(void *arg) {
  Sched *s = static_cast<Sched *>(arg);
  ks_core_free(s->core);
  delete s;
}

// An argument as napi_get_value_int64/int32 would read it: NaN, the
// infinities and a missing one (undefined: NaN) are 0; an int64 saturates,
// an int32 keeps the low 32 bits of the integer.
int64_t ToI64(double d) {
  if (!std::isfinite(d)) return 0;
  if (d >= 9223372036854775807.0) return INT64_MAX;
  if (d <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)d;
}
int32_t ToI32(double d) { return (int32_t)(uint32_t)(uint64_t)ToI64(d); }

// The return of a binding function: `v`, and the counts JS reads after
// every call (io[READY], io[TIMED]).
napi_value ReturnI(napi_env env, Sched *s, int32_t v) {
  s->io[KS_IO_READY] = (int32_t)ks_ready_count(s->core);
  s->io[KS_IO_TIMED] = (int32_t)ks_timed_count(s->core);
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

// What may switch stacks (a task's blocking op, a pass) has everything of
// ours it calls inlined into it (across files with the build's LTO), and
// the ops reach it by a tail call, so that after the switch it returns to
// JavaScript through as few frames as can be: each of those returns is a
// mispredicted one, the CPU's return predictor holding the other stack's
// calls.
#if defined(__GNUC__)
#define SWITCHES __attribute__((flatten))
#else
#define SWITCHES
#endif

// One call of a binding function: its arguments, copied from the shared
// array at once (JS a call runs may make calls of its own), and what every
// function needs. `js` > 0: the call also takes that many JS values
// (set_buffers' arrays), in argv.
struct Call {
  napi_env env;
  Sched *s;
  ks_core *core;
  double a[KS_ARGS_SIZE];
  size_t argc = 0;
  napi_value argv[4] = {};

  Call(napi_env e, napi_callback_info info, size_t js = 0) : env(e) {
    void *data = nullptr;
    argc = js;
    napi_get_cb_info(e, info, js ? &argc : nullptr, js ? argv : nullptr, nullptr, &data);
    s = static_cast<Sched *>(data);
    core = s->core;
    Load();
  }
  void Load() { memcpy(a, s->args, sizeof a); }

  int32_t I(size_t i) const { return ToI32(a[i]); }
  int64_t L(size_t i) const { return ToI64(a[i]); }
  // A slot number carried as a channel value.
  uint64_t U(size_t i) const { return (uint64_t)(uint32_t)I(i); }
  // A time or a duration in microseconds; negative durations mean "none".
  ks_time Now(size_t i) const { return (ks_time)L(i); }

  template <typename T>
  T *Obj(size_t i, ks_kind kind) const {
    int32_t h = I(i);
    return h > 0 ? static_cast<T *>(ks_lookup(core, (uint32_t)h, kind)) : nullptr;
  }
  ks_task *Task(size_t i) const { return Obj<ks_task>(i, KS_TASK); }

  napi_value Ret(double v) const {
    s->io[KS_IO_READY] = (int32_t)ks_ready_count(core);
    s->io[KS_IO_TIMED] = (int32_t)ks_timed_count(core);
    napi_value out;
    napi_create_double(env, v, &out);
    return out;
  }
  napi_value RetI(int32_t v) const { return ReturnI(env, s, v); }
  // A new object: its handle (its serial in io), or `err` when it is NULL.
  napi_value New(ks_obj *o, int32_t err) const {
    if (!o) return RetI(err);
    s->io[KS_IO_SERIAL] = (int32_t)o->serial;
    return RetI((int32_t)o->handle);
  }
};

// Task (or proxy) `n`, just popped by the core to run: its handle, and the
// outcome of its wait written into its own record, where it reads it when
// it runs (see KS_OUTCOME_MAP), with its wait number, which stays until its
// next wake. JS makes the room at spawn (set_buffers).
int32_t Popped(Sched *s, ks_task *n) {
  uint32_t h = n->o.handle;
  if (h < s->noutcome) {
    int32_t *out = s->outcome + (size_t)h * KS_OUT_SIZE;
    out[KS_OUT_STATUS] = n->status;
    out[KS_OUT_FIRED] = n->fired;
    out[KS_OUT_VALUE] = (int32_t)n->value;
    out[KS_OUT_SEQ] = (int32_t)n->seq;
  }
  return (int32_t)h;
}

// Hands the turn from the running task's coroutine straight to that of
// task `n` (see JsHandOff); returns once the running one is resumed, or
// false when n's coroutine cannot take it so.
bool HandOff(napi_env env, Sched *s, ks_task *n) {
  const std::vector<double> &nos = s->coro_no;
  double no = n->o.handle < nos.size() ? nos[n->o.handle] : -1;
  JsCoroutine *me = JsCurrent();
  return no >= 0 && me && JsHandOff(env, me, no);
}

// The return of a task operation. When the task must suspend, and it is at
// its base async context (io[HAND]), it suspends inside the op: the task to
// run after it is popped now and handed the turn at once when it can be (a
// hand-off: one switch of V8's thread state instead of two), io[NEXT]
// saying KS_NEXT_HANDED; with no such task (the popped one goes back to the
// head of the queue) it suspends back to the pass that runs its chain
// (run_pass), KS_NEXT_PASSED. Either way the op returns once the task runs
// again, and no yield crosses from JS. Otherwise (io[NEXT] -1: not at its
// base, or not in a chain) JS yields back to the pass. A task switched into
// finds its outcome in its own record (Popped()). Proxies do not suspend.
// `hand` false: the caller has to do something between blocking and
// suspending (arrange its wake), so JS suspends. The ops tail-call it
// (SWITCHES), with their env and Sched.
SWITCHES napi_value Blocked(napi_env env, Sched *s, ks_task *t, int r, bool hand = true) {
  if (r != KS_BLOCK || !t || t->proxy) return ReturnI(env, s, r);
  int32_t *io = s->io;
  io[KS_IO_NEXT] = -1;
  if (!hand || !io[KS_IO_HAND]) return ReturnI(env, s, r);
  // back from either switch once t runs again: whoever popped it wrote its record
  if (ks_task *n = ks_pass_next(s->core, 0)) {
    Popped(s, n);
    if (HandOff(env, s, n)) {
      io[KS_IO_NEXT] = KS_NEXT_HANDED;
      return ReturnI(env, s, r);
    }
    ks_unnext(s->core, n);
  }
  JsCoroutine *me = JsCurrent();
  if (me && JsYieldToChain(me)) io[KS_IO_NEXT] = KS_NEXT_PASSED;
  return ReturnI(env, s, r);
}

// The pass's runner (ks_pass_run): runs task `n` in a chain, natively, and
// goes on with the pass; stops it (1) where JS must act first, with
// `out` for run_pass() to return.
struct Pass {
  napi_env env;
  Sched *s;
  int32_t out = -1;
};
constexpr int32_t KS_RUN_FAILED = -2;  // `out` when a chain could not run: its exception is pending
int RunOne(void *arg, ks_task *n) {
  Pass *p = static_cast<Pass *>(arg);
  const std::vector<double> &nos = p->s->coro_no;
  int32_t h = Popped(p->s, n);
  double no = n->proxy || (size_t)h >= nos.size() ? -1 : nos[(size_t)h];
  if (no < 0) {
    p->out = h;  // a proxy woke, or a task that runs alone (no chains here)
    return 1;
  }
  p->s->io[KS_IO_RUNS]++;
  switch (JsRunChain(p->env, no)) {
    case kJsChainYielded:
      return 0;
    case kJsChainEnded:
      p->out = 0;  // a task's coroutine ended
      return 1;
    default:
      p->out = KS_RUN_FAILED;
      return 1;
  }
}

// Task `t` ends: it runs in no coroutine any more.
void Unbind(const Call &c, ks_task *t) {
  std::vector<double> &nos = c.s->coro_no;
  if (t->o.handle < nos.size()) nos[t->o.handle] = -1;
}

// Whether task `t` (the running one; proxies never suspend) may not suspend
// now (see JsSuspendRefusal): then the operation does nothing and returns
// KO_EUNSAFE (JS asks suspend_refusal() why).
bool Refused(ks_task *t) {
  if (!t || t->proxy) return false;
  JsCoroutine *co = JsCurrent();
  return co && JsSuspendRefusal(co) != kJsMaySuspend;
}
#define REFUSE_UNSAFE(c, t) \
  if (Refused(t)) return (c).RetI(KO_EUNSAFE)

#define FN(name) napi_value op_##name(napi_env env, napi_callback_info info)

template <typename T>
ks_obj *ObjOf(T *p) { return p ? &p->o : nullptr; }

// name(...): a new object made by `make`, or `err` when it is NULL.
#define NEW_OP(name, make, err) \
  FN(name) {                    \
    Call c(env, info);          \
    return c.New(make, err);    \
  }
// name(o, ...) or name(h, o, ...): `expr` on the object `o` of kind `kind`
// at argument `at` (KO_EINVAL when there is none).
#define OBJ_OP(name, T, kind, at, expr)                 \
  FN(name) {                                            \
    Call c(env, info);                                  \
    T *o = c.Obj<T>(at, kind);                          \
    return c.RetI(o ? (int32_t)(expr) : KO_EINVAL);     \
  }
// name(h, o, ...): a blocking operation of task `h` on the object `o`.
#define WAIT_OP(name, T, kind, expr)       \
  FN(name) {                               \
    Call c(env, info);                     \
    T *o = c.Obj<T>(1, kind);              \
    if (!o) return c.RetI(KO_EINVAL);      \
    ks_task *t = c.Task(0);                \
    REFUSE_UNSAFE(c, t);                   \
    return Blocked(c.env, c.s, t, expr);   \
  }

// set_buffers(args: Float64Array(ARGS_SIZE), io: Int32Array(IO_SIZE),
// cases: Float64Array(3 * n), outcome: Int32Array(OUT_SIZE * handles));
// args[0] = now: the driver's clock, read just before (see
// Sched::clock_offset).
FN(set_buffers) {
  Call c(env, info, 4);
  Sched *s = c.s;
  void *args = HoldTypedArray(env, c.argv[0], napi_float64_array, KS_ARGS_SIZE, &s->args_ref);
  if (!args) {
    napi_throw_type_error(env, nullptr, "set_buffers: args must be a Float64Array of ARGS_SIZE");
    return nullptr;
  }
  s->args = static_cast<double *>(args);
  c.Load();
  // read after the caller's clock: the core's never runs ahead of it
  s->clock_offset = (int64_t)(uv_hrtime() / 1000) - c.L(0);
  void *io = HoldTypedArray(env, c.argv[1], napi_int32_array, KS_IO_SIZE, &s->io_ref);
  if (!io) {
    napi_throw_type_error(env, nullptr, "set_buffers: io must be an Int32Array of IO_SIZE");
    return nullptr;
  }
  s->io = static_cast<int32_t *>(io);
  size_t len = 0;
  void *cases = HoldTypedArray(env, c.argv[2], napi_float64_array, 0, &s->cases_ref, &len);
  if (!cases) {
    napi_throw_type_error(env, nullptr, "set_buffers: cases must be a Float64Array");
    return nullptr;
  }
  s->cases = static_cast<double *>(cases);
  s->ncases = len / 3;
  s->kcases.resize(s->ncases);
  void *outcome = HoldTypedArray(env, c.argv[3], napi_int32_array, 0, &s->outcome_ref, &len);
  if (!outcome) {
    napi_throw_type_error(env, nullptr, "set_buffers: outcome must be an Int32Array");
    return nullptr;
  }
  s->outcome = static_cast<int32_t *>(outcome);
  s->noutcome = len / KS_OUT_SIZE;
  return c.RetI(0);
}

// ---------------------------------------------------------------- tasks

NEW_OP(spawn, ObjOf(ks_spawn(c.core)), KO_ENOMEM)
NEW_OP(proxy, ObjOf(ks_proxy(c.core)), KO_ENOMEM)
OBJ_OP(release, ks_task, KS_TASK, 0, (ks_release(c.core, o), KO_OK))
// exit(h, end)
OBJ_OP(exit, ks_task, KS_TASK, 0, (Unbind(c, o), ks_exit(c.core, o, (ks_end)c.I(1), 0), KO_OK))
// task_bind(h, no): task h runs in coroutine `no` (a number of the binding's
// table), which a blocked task may hand the turn to.
FN(task_bind) {
  Call c(env, info);
  ks_task *o = c.Task(0);
  if (!o) return c.RetI(KO_EINVAL);
  std::vector<double> &nos = c.s->coro_no;
  if (o->o.handle >= nos.size()) nos.resize(o->o.handle + 1, -1);
  nos[o->o.handle] = c.a[1];
  return c.RetI(KO_OK);
}
OBJ_OP(cancel, ks_task, KS_TASK, 0, ks_cancel(c.core, o))
OBJ_OP(wakeup, ks_task, KS_TASK, 0, ks_wakeup(c.core, o))
// wake_external(h, seq, status) -> status
OBJ_OP(wake_external, ks_task, KS_TASK, 0, ks_wake_external(c.core, o, (uint32_t)c.I(1), c.I(2), 0))
// task_info(h) -> state (KS_STATE_MAP); io[AUX] = end, io[SERIAL] = serial
OBJ_OP(task_info, ks_task, KS_TASK, 0,
       (c.s->io[KS_IO_AUX] = o->end, c.s->io[KS_IO_SERIAL] = (int32_t)o->o.serial, o->state))
// join(h, target, now, timeout)
WAIT_OP(join, ks_task, KS_TASK, ks_join(c.core, t, o, c.Now(2), c.L(3)))

// run_pass(begin, h, seq) -> what the JS driver must act on before the pass goes
// on (it calls again, with begin 0): the handle of a proxy that woke, or of
// a task to run alone (no chains here), its outcome in its record; 0: a
// task's coroutine ended (ts/coroutine.ts says how); -1: the pass is over
// (none ready, or it has had its time: ks_pass_next). Every other task is
// run here, in a chain (JsRunChain): io[RUNS] counts them. With h > 0,
// task h's external wait `seq` ends first (wake_external with KO_OK), as
// for a promise reaction that runs the pass at once: one call for both.
SWITCHES FN(run_pass) {
  Call c(env, info);
  ks_task *w = c.I(1) > 0 ? c.Task(1) : nullptr;
  if (w) ks_wake_external(c.core, w, (uint32_t)c.I(2), KO_OK, 0);
  c.s->io[KS_IO_RUNS] = 0;
  Pass p{env, c.s};
  ks_pass_run(c.core, c.I(0), RunOne, &p);
  if (p.out == KS_RUN_FAILED) return nullptr;  // its exception is pending
  return c.RetI(p.out);
}

// yield(h): lets every other ready task run once.
FN(yield) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  REFUSE_UNSAFE(c, t);
  return Blocked(c.env, c.s, t, ks_yield(c.core, t));
}

// sleep(h, now, dur)
FN(sleep) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  REFUSE_UNSAFE(c, t);
  return Blocked(c.env, c.s, t, ks_sleep(c.core, t, c.Now(1), c.L(2)));
}

// block_external(h, now, timeout, kind, armed) -> status; io[SEQ].
// `armed` 1: the wake is arranged already (with the task's OUT_SEQ), so the
// task suspends in this call (see Blocked()); 0: JS arranges it with
// io[SEQ] after this returns, then suspends.
FN(block_external) {
  Call c(env, info);
  uint32_t seq = 0;
  ks_task *t = c.Task(0);
  REFUSE_UNSAFE(c, t);
  int r = ks_block_external(c.core, t, c.Now(1), c.L(2), c.I(3), 0, &seq);
  c.s->io[KS_IO_SEQ] = (int32_t)seq;
  return Blocked(c.env, c.s, t, r, c.I(4) != 0);
}

FN(next_deadline) {
  Call c(env, info);
  ks_time d = ks_next_deadline(c.core);
  return c.Ret(d == UINT64_MAX ? -1.0 : (double)d);
}

// describe(h, now) -> string
FN(describe) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  char buf[512];
  if (t) ks_describe(c.core, t, c.Now(1), buf, sizeof buf);
  else snprintf(buf, sizeof buf, "unknown");
  napi_value out;
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &out);
  return out;
}

FN(live_count) {
  Call c(env, info);
  return c.RetI((int32_t)ks_live_count(c.core));
}

// ------------------------------------------------------------- channels

FN(chan_new) {
  Call c(env, info);
  int64_t cap = c.L(0);
  if (cap < 0 || cap > INT32_MAX) return c.RetI(KO_EINVAL);
  return c.New(ObjOf(ks_chan_new(c.core, (uint32_t)cap)), KO_ENOMEM);
}

// chan_send(h, ch, slot, now, timeout)
WAIT_OP(chan_send, ks_chan, KS_CHAN, ks_chan_send(c.core, t, o, c.U(2), c.Now(3), c.L(4)))

// chan_recv(h, ch, now, timeout) -> status; io[VALUE]
FN(chan_recv) {
  Call c(env, info);
  ks_chan *ch = c.Obj<ks_chan>(1, KS_CHAN);
  if (!ch) return c.RetI(KO_EINVAL);
  uint64_t v = 0;
  ks_task *t = c.Task(0);
  REFUSE_UNSAFE(c, t);
  int r = ks_chan_recv(c.core, t, ch, &v, c.Now(2), c.L(3));
  c.s->io[KS_IO_VALUE] = (int32_t)v;
  return Blocked(c.env, c.s, t, r);
}

// chan_try_send(ch, slot)
OBJ_OP(chan_try_send, ks_chan, KS_CHAN, 0, ks_chan_try_send(c.core, o, c.U(1)))
// chan_try_recv(ch) -> status; io[VALUE]
FN(chan_try_recv) {
  Call c(env, info);
  ks_chan *ch = c.Obj<ks_chan>(0, KS_CHAN);
  if (!ch) return c.RetI(KO_EINVAL);
  uint64_t v = 0;
  int r = ks_chan_try_recv(c.core, ch, &v);
  c.s->io[KS_IO_VALUE] = (int32_t)v;
  return c.RetI(r);
}
OBJ_OP(chan_close, ks_chan, KS_CHAN, 0, ks_chan_close(c.core, o))
// chan_info(ch) -> buffered count; io[AUX] = capacity, io[AUX2] = closed
OBJ_OP(chan_info, ks_chan, KS_CHAN, 0,
       (c.s->io[KS_IO_AUX] = (int32_t)o->cap, c.s->io[KS_IO_AUX2] = o->closed, o->len))

// select(h | 0, n, now, timeout, nonblock) -> status; io[FIRED], io[VALUE].
// Cases are read from the shared Float64Array: [op, handle, value] each;
// value is a slot (send) or a delay in microseconds (after).
FN(select) {
  Call c(env, info);
  Sched *s = c.s;
  int32_t n = c.I(1);
  if (n < 0 || (size_t)n > s->ncases) return c.RetI(KO_EINVAL);
  for (int32_t i = 0; i < n; i++) {
    const double *k = s->cases + 3 * i;
    ks_case &kc = s->kcases[(size_t)i];
    kc.op = (uint8_t)k[0];
    kc.ch = kc.op == KS_OP_AFTER ? nullptr : static_cast<ks_chan *>(ks_lookup(c.core, (uint32_t)k[1], KS_CHAN));
    kc.value = kc.op == KS_OP_AFTER ? (uint64_t)(int64_t)k[2] : (uint64_t)(uint32_t)(int64_t)k[2];
    if (kc.op != KS_OP_AFTER && !kc.ch) return c.RetI(KO_EINVAL);
  }
  int32_t fired = -1;
  uint64_t v = 0;
  ks_task *t = c.Task(0);
  if (!c.I(4)) REFUSE_UNSAFE(c, t);
  int r = ks_select(c.core, t, s->kcases.data(), (uint32_t)n, c.Now(2), c.L(3), c.I(4), &fired, &v);
  s->io[KS_IO_FIRED] = fired;
  s->io[KS_IO_VALUE] = (int32_t)v;
  return Blocked(c.env, c.s, t, r);
}

// ----------------------------------------------------------------- sync

NEW_OP(mutex_new, ObjOf(ks_mutex_new(c.core)), KO_ENOMEM)
// mutex_lock(h, m, now, timeout)
WAIT_OP(mutex_lock, ks_mutex, KS_MUTEX, ks_mutex_lock(c.core, t, o, c.Now(2), c.L(3)))
// mutex_trylock(h, m), mutex_unlock(h, m)
OBJ_OP(mutex_trylock, ks_mutex, KS_MUTEX, 1, ks_mutex_trylock(c.core, c.Task(0), o))
OBJ_OP(mutex_unlock, ks_mutex, KS_MUTEX, 1, ks_mutex_unlock(c.core, c.Task(0), o))
// mutex_info(m) -> serial of the holder (0: free)
OBJ_OP(mutex_info, ks_mutex, KS_MUTEX, 0, o->owner ? o->owner->o.serial : 0)

NEW_OP(cond_new, ObjOf(ks_cond_new(c.core)), KO_ENOMEM)
// cond_wait(h, cond, mutex | 0, now, timeout)
FN(cond_wait) {
  Call c(env, info);
  ks_cond *cv = c.Obj<ks_cond>(1, KS_COND);
  if (!cv) return c.RetI(KO_EINVAL);
  ks_mutex *m = c.I(2) ? c.Obj<ks_mutex>(2, KS_MUTEX) : nullptr;
  if (c.I(2) && !m) return c.RetI(KO_EINVAL);
  ks_task *t = c.Task(0);
  REFUSE_UNSAFE(c, t);
  return Blocked(c.env, c.s, t, ks_cond_wait(c.core, t, cv, m, c.Now(3), c.L(4)));
}
OBJ_OP(cond_signal, ks_cond, KS_COND, 0, ks_cond_signal(c.core, o))
OBJ_OP(cond_broadcast, ks_cond, KS_COND, 0, ks_cond_broadcast(c.core, o))

// sem_new(count): KO_EINVAL for a negative count
NEW_OP(sem_new, ObjOf(ks_sem_new(c.core, c.L(0))), KO_EINVAL)
// sem_acquire(h, sem, now, timeout)
WAIT_OP(sem_acquire, ks_sem, KS_SEM, ks_sem_acquire(c.core, t, o, c.Now(2), c.L(3)))
OBJ_OP(sem_try_acquire, ks_sem, KS_SEM, 0, ks_sem_try_acquire(c.core, o))
// sem_release(sem, n)
OBJ_OP(sem_release, ks_sem, KS_SEM, 0, ks_sem_release(c.core, o, c.L(1)))

NEW_OP(wg_new, ObjOf(ks_wg_new(c.core)), KO_ENOMEM)
// wg_add(wg, delta)
OBJ_OP(wg_add, ks_wg, KS_WG, 0, ks_wg_add(c.core, o, c.L(1)))
// wg_wait(h, wg, now, timeout)
WAIT_OP(wg_wait, ks_wg, KS_WG, ks_wg_wait(c.core, t, o, c.Now(2), c.L(3)))

// sem_count(sem), wg_count(wg): counters, which may pass int32.
FN(sem_count) {
  Call c(env, info);
  ks_sem *o = c.Obj<ks_sem>(0, KS_SEM);
  return c.Ret(o ? (double)o->count : (double)KO_EINVAL);
}
FN(wg_count) {
  Call c(env, info);
  ks_wg *o = c.Obj<ks_wg>(0, KS_WG);
  return c.Ret(o ? (double)o->count : (double)KO_EINVAL);
}

// obj_free(h): a channel, mutex, cond, semaphore or wait group.
FN(obj_free) {
  Call c(env, info);
  int32_t h = c.I(0);
  for (int k = KS_CHAN; k < KS_KIND_COUNT; k++) {
    void *o = h > 0 ? ks_lookup(c.core, (uint32_t)h, (ks_kind)k) : nullptr;
    if (o) return c.RetI(ks_obj_free(c.core, o));
  }
  return c.RetI(KO_EINVAL);
}

#define KS_BINDING_OPS(XX)                                                                                      \
  XX(set_buffers) XX(spawn) XX(proxy) XX(release) XX(run_pass) XX(exit) XX(task_bind) XX(cancel)      \
  XX(wakeup) XX(yield)                                                                                        \
  XX(sleep) XX(join) XX(block_external) XX(wake_external) XX(next_deadline) XX(task_info)                     \
  XX(describe) XX(live_count) XX(chan_new) XX(chan_send) XX(chan_recv) XX(chan_try_send) XX(chan_try_recv)   \
  XX(chan_close) XX(chan_info) XX(select) XX(mutex_new) XX(mutex_lock) XX(mutex_trylock) XX(mutex_unlock)    \
  XX(mutex_info) XX(cond_new) XX(cond_wait) XX(cond_signal) XX(cond_broadcast) XX(sem_new) XX(sem_acquire)   \
  XX(sem_try_acquire) XX(sem_release) XX(sem_count) XX(wg_new) XX(wg_add) XX(wg_wait) XX(wg_count) XX(obj_free)

struct Entry {
  const char *name;
  napi_callback fn;
};

const Entry kFunctions[] = {
#define XX(name) {#name, op_##name},
    KS_BINDING_OPS(XX)
#undef XX
};

}  // namespace

void InitScheduler(Napi::Env env, Napi::Object exports) {
  Sched *s = new Sched();
  uint64_t seed = 0x243F6A8885A308D3ull ^ (uint64_t)(uintptr_t)s;
  s->core = ks_core_new(seed);
  ks_core_set_clock(s->core, Clock, s);
  s->io = s->scratch;  // until set_buffers() hands over the shared arrays
  s->args = s->args_scratch;
  napi_add_env_cleanup_hook(env, Cleanup, s);
  Napi::Object sched = Napi::Object::New(env);
  for (const Entry &e : kFunctions) {
    napi_value fn;
    napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, s, &fn);
    sched.Set(e.name, Napi::Value(env, fn));
  }
  exports.Set("sched", sched);
}

}  // namespace korutin
