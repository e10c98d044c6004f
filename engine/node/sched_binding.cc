// sched_binding.cc - the scheduler core exposed to ts/scheduler.ts.
//
// The core (engine/src/sched) decides who blocks and who wakes; JavaScript
// switches the coroutines and reads the clock. Every function here takes and
// returns plain numbers (handles, statuses, microseconds), so a crossing is
// cheap; extra results (the outcome of a wait, a received slot) are written
// into a small Int32Array shared with JavaScript instead of being boxed, and
// select cases are read from a shared Float64Array. JS values never come
// here: channels carry slot numbers of a table kept in JavaScript.
//
// These are plain N-API callbacks on the hot path (no wrapper objects are
// built per call); node-addon-api is used to set the module up.
#include "sched_binding.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "korutin.h"
#include "sched/core.h"

namespace korutin {
namespace {

// Slots of the shared Int32Array.
enum Io {
  kReady = 0,   // tasks ready to run (after every call)
  kStatus = 1,  // next(): the outcome of the popped task's wait
  kFired = 2,   // next(), select(): the case that fired
  kValue = 3,   // next(), recv(), tryRecv(), select(): the value (a slot)
  kSeq = 4,     // blockExternal(): the wait's number, for wakeExternal()
  kSerial = 5,  // *New(), spawn(): the new object's serial ("channel#N")
  kAux = 6,     // chanInfo(): capacity; taskInfo(): end; ...
  kAux2 = 7,    // chanInfo(): closed
  kNext = 8,    // a task op that blocked: the task to run next (its outcome in
                // kStatus/kFired/kValue), -1 if none (see Blocked())
  kIoSize = 16
};

struct Sched {
  ks_core *core = nullptr;
  int32_t *io = nullptr;
  int32_t scratch[kIoSize] = {};
  double *cases = nullptr;
  size_t ncases = 0;
  napi_ref io_ref = nullptr;
  napi_ref cases_ref = nullptr;
  std::vector<ks_case> kcases;
};

void Cleanup(void *arg) {
  Sched *s = static_cast<Sched *>(arg);
  ks_core_free(s->core);
  delete s;
}

constexpr size_t kMaxArgs = 6;

struct Call {
  napi_env env;
  Sched *s;
  size_t argc = kMaxArgs;
  napi_value argv[kMaxArgs];

  Call(napi_env e, napi_callback_info info) : env(e) {
    void *data = nullptr;
    napi_get_cb_info(e, info, &argc, argv, nullptr, &data);
    s = static_cast<Sched *>(data);
    for (size_t i = argc; i < kMaxArgs; i++) argv[i] = nullptr;
  }

  int32_t I(size_t i) const {
    int32_t v = 0;
    if (argv[i]) napi_get_value_int32(env, argv[i], &v);
    return v;
  }
  int64_t L(size_t i) const {
    int64_t v = 0;
    if (argv[i]) napi_get_value_int64(env, argv[i], &v);
    return v;
  }
  // A time or a duration in microseconds; negative durations mean "none".
  ks_time Now(size_t i) const { return (ks_time)L(i); }

  template <typename T>
  T *Obj(size_t i, ks_kind kind) const {
    int32_t h = I(i);
    return h > 0 ? static_cast<T *>(ks_lookup(s->core, (uint32_t)h, kind)) : nullptr;
  }
  ks_task *Task(size_t i) const { return Obj<ks_task>(i, KS_TASK); }

  napi_value Ret(double v) const {
    s->io[kReady] = (int32_t)ks_ready_count(s->core);
    napi_value out;
    napi_create_double(env, v, &out);
    return out;
  }
  napi_value RetI(int32_t v) const {
    s->io[kReady] = (int32_t)ks_ready_count(s->core);
    napi_value out;
    napi_create_int32(env, v, &out);
    return out;
  }
};

#define FN(name) napi_value name(napi_env env, napi_callback_info info)

// The return of a task operation. When the task must suspend, the task to
// run after it is popped now (io[kNext]), so that the driver resumes it
// without a next() call: one crossing less per switch. Proxies do not
// suspend, so nothing is popped for them.
napi_value Blocked(const Call &c, ks_task *t, int r) {
  if (r == KS_BLOCK && t && !t->proxy) {
    int32_t *io = c.s->io;
    ks_task *n = ks_next(c.s->core);
    if (n) {
      io[kNext] = (int32_t)n->o.handle;
      io[kStatus] = n->status;
      io[kFired] = n->fired;
      io[kValue] = (int32_t)n->value;
    } else {
      io[kNext] = -1;
    }
  }
  return c.RetI(r);
}

// setBuffers(io: Int32Array(16), cases: Float64Array(3 * n))
FN(SetBuffers) {
  Call c(env, info);
  Sched *s = c.s;
  napi_typedarray_type type;
  size_t len;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, c.argv[0], &type, &len, &data, &ab, &off) != napi_ok || type != napi_int32_array ||
      len < kIoSize) {
    napi_throw_type_error(env, nullptr, "setBuffers: io must be an Int32Array of 16");
    return nullptr;
  }
  if (s->io_ref) napi_delete_reference(env, s->io_ref);
  napi_create_reference(env, c.argv[0], 1, &s->io_ref);
  s->io = static_cast<int32_t *>(data);
  if (napi_get_typedarray_info(env, c.argv[1], &type, &len, &data, &ab, &off) != napi_ok || type != napi_float64_array) {
    napi_throw_type_error(env, nullptr, "setBuffers: cases must be a Float64Array");
    return nullptr;
  }
  if (s->cases_ref) napi_delete_reference(env, s->cases_ref);
  napi_create_reference(env, c.argv[1], 1, &s->cases_ref);
  s->cases = static_cast<double *>(data);
  s->ncases = len / 3;
  s->kcases.resize(s->ncases);
  return c.RetI(0);
}

// ---------------------------------------------------------------- tasks

FN(Spawn) {
  Call c(env, info);
  ks_task *t = ks_spawn(c.s->core);
  if (!t) return c.RetI(KO_ENOMEM);
  c.s->io[kSerial] = (int32_t)t->o.serial;
  return c.RetI((int32_t)t->o.handle);
}

FN(Proxy) {
  Call c(env, info);
  ks_task *t = ks_proxy(c.s->core);
  return c.RetI(t ? (int32_t)t->o.handle : KO_ENOMEM);
}

FN(Release) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  if (t) ks_release(c.s->core, t);
  return c.RetI(t ? KO_OK : KO_EINVAL);
}

// next() -> handle of the task to run (io: status, fired, value), or -1.
FN(Next) {
  Call c(env, info);
  ks_task *t = ks_next(c.s->core);
  if (!t) return c.RetI(-1);
  int32_t *io = c.s->io;
  io[kStatus] = t->status;
  io[kFired] = t->fired;
  io[kValue] = (int32_t)t->value;
  return c.RetI((int32_t)t->o.handle);
}

// unnext(h): a task popped early (io[kNext]) goes back to the head of the queue.
FN(Unnext) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  if (t) ks_unnext(c.s->core, t);
  return c.RetI(t ? KO_OK : KO_EINVAL);
}

// exit(h, end)
FN(Exit) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  if (!t) return c.RetI(KO_EINVAL);
  ks_exit(c.s->core, t, (ks_end)c.I(1), 0);
  return c.RetI(KO_OK);
}

FN(Cancel) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  return c.RetI(t ? ks_cancel(c.s->core, t) : KO_EINVAL);
}

FN(Wakeup) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  return c.RetI(t ? ks_wakeup(c.s->core, t) : KO_EINVAL);
}

FN(YieldNow) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  return Blocked(c, t, ks_yield(c.s->core, t));
}

// sleep(h, now, dur)
FN(Sleep) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  return Blocked(c, t, ks_sleep(c.s->core, t, c.Now(1), c.L(2)));
}

// join(h, target, now, timeout)
FN(Join) {
  Call c(env, info);
  ks_task *target = c.Task(1);
  if (!target) return c.RetI(KO_EINVAL);
  ks_task *t = c.Task(0);
  return Blocked(c, t, ks_join(c.s->core, t, target, c.Now(2), c.L(3)));
}

// blockExternal(h, now, timeout, kind) -> status; io[seq]
FN(BlockExternal) {
  Call c(env, info);
  uint32_t seq = 0;
  ks_task *t = c.Task(0);
  int r = ks_block_external(c.s->core, t, c.Now(1), c.L(2), c.I(3), 0, &seq);
  c.s->io[kSeq] = (int32_t)seq;
  return Blocked(c, t, r);
}

// wakeExternal(h, seq, status)
FN(WakeExternal) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  if (!t) return c.RetI(KO_EINVAL);
  return c.RetI(ks_wake_external(c.s->core, t, (uint32_t)c.I(1), c.I(2), 0));
}

FN(Expire) {
  Call c(env, info);
  return c.RetI((int32_t)ks_expire(c.s->core, c.Now(0)));
}

FN(NextDeadline) {
  Call c(env, info);
  ks_time d = ks_next_deadline(c.s->core);
  return c.Ret(d == UINT64_MAX ? -1.0 : (double)d);
}

// taskInfo(h) -> state (ks_state); io[aux] = end, io[serial] = serial
FN(TaskInfo) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  if (!t) return c.RetI(KO_EINVAL);
  c.s->io[kAux] = t->end;
  c.s->io[kSerial] = (int32_t)t->o.serial;
  return c.RetI(t->state);
}

// describe(h, now) -> string
FN(Describe) {
  Call c(env, info);
  ks_task *t = c.Task(0);
  char buf[512];
  if (t) ks_describe(c.s->core, t, c.Now(1), buf, sizeof buf);
  else snprintf(buf, sizeof buf, "unknown");
  napi_value out;
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &out);
  return out;
}

FN(LiveCount) {
  Call c(env, info);
  return c.RetI((int32_t)ks_live_count(c.s->core));
}

// ------------------------------------------------------------- channels

FN(ChanNew) {
  Call c(env, info);
  int64_t cap = c.L(0);
  if (cap < 0 || cap > INT32_MAX) return c.RetI(KO_EINVAL);
  ks_chan *ch = ks_chan_new(c.s->core, (uint32_t)cap);
  if (!ch) return c.RetI(KO_ENOMEM);
  c.s->io[kSerial] = (int32_t)ch->o.serial;
  return c.RetI((int32_t)ch->o.handle);
}

// send(h, ch, slot, now, timeout)
FN(Send) {
  Call c(env, info);
  ks_chan *ch = c.Obj<ks_chan>(1, KS_CHAN);
  if (!ch) return c.RetI(KO_EINVAL);
  ks_task *t = c.Task(0);
  return Blocked(c, t, ks_chan_send(c.s->core, t, ch, (uint64_t)(uint32_t)c.I(2), c.Now(3), c.L(4)));
}

// recv(h, ch, now, timeout) -> status; io[value]
FN(Recv) {
  Call c(env, info);
  ks_chan *ch = c.Obj<ks_chan>(1, KS_CHAN);
  if (!ch) return c.RetI(KO_EINVAL);
  uint64_t v = 0;
  ks_task *t = c.Task(0);
  int r = ks_chan_recv(c.s->core, t, ch, &v, c.Now(2), c.L(3));
  c.s->io[kValue] = (int32_t)v;
  return Blocked(c, t, r);
}

FN(TrySend) {
  Call c(env, info);
  ks_chan *ch = c.Obj<ks_chan>(0, KS_CHAN);
  if (!ch) return c.RetI(KO_EINVAL);
  return c.RetI(ks_chan_try_send(c.s->core, ch, (uint64_t)(uint32_t)c.I(1)));
}

FN(TryRecv) {
  Call c(env, info);
  ks_chan *ch = c.Obj<ks_chan>(0, KS_CHAN);
  if (!ch) return c.RetI(KO_EINVAL);
  uint64_t v = 0;
  int r = ks_chan_try_recv(c.s->core, ch, &v);
  c.s->io[kValue] = (int32_t)v;
  return c.RetI(r);
}

FN(Close) {
  Call c(env, info);
  ks_chan *ch = c.Obj<ks_chan>(0, KS_CHAN);
  return c.RetI(ch ? ks_chan_close(c.s->core, ch) : KO_EINVAL);
}

// chanInfo(ch) -> buffered count; io[aux] = capacity, io[aux2] = closed
FN(ChanInfo) {
  Call c(env, info);
  ks_chan *ch = c.Obj<ks_chan>(0, KS_CHAN);
  if (!ch) return c.RetI(KO_EINVAL);
  c.s->io[kAux] = (int32_t)ch->cap;
  c.s->io[kAux2] = ch->closed;
  return c.RetI((int32_t)ch->len);
}

// select(h | 0, n, now, timeout, nonblock) -> status; io[fired], io[value].
// Cases are read from the shared Float64Array: [op, handle, value] each;
// value is a slot (send) or a delay in microseconds (after).
FN(Select) {
  Call c(env, info);
  Sched *s = c.s;
  int32_t n = c.I(1);
  if (n < 0 || (size_t)n > s->ncases) return c.RetI(KO_EINVAL);
  for (int32_t i = 0; i < n; i++) {
    const double *k = s->cases + 3 * i;
    ks_case &kc = s->kcases[(size_t)i];
    kc.op = (uint8_t)k[0];
    kc.ch = kc.op == KS_OP_AFTER ? nullptr : static_cast<ks_chan *>(ks_lookup(s->core, (uint32_t)k[1], KS_CHAN));
    kc.value = kc.op == KS_OP_AFTER ? (uint64_t)(int64_t)k[2] : (uint64_t)(uint32_t)(int64_t)k[2];
    if (kc.op != KS_OP_AFTER && !kc.ch) return c.RetI(KO_EINVAL);
  }
  int32_t fired = -1;
  uint64_t v = 0;
  ks_task *t = c.Task(0);
  int r = ks_select(s->core, t, s->kcases.data(), (uint32_t)n, c.Now(2), c.L(3), c.I(4), &fired, &v);
  s->io[kFired] = fired;
  s->io[kValue] = (int32_t)v;
  return Blocked(c, t, r);
}

// ----------------------------------------------------------------- sync

FN(MutexNew) {
  Call c(env, info);
  ks_mutex *m = ks_mutex_new(c.s->core);
  if (!m) return c.RetI(KO_ENOMEM);
  c.s->io[kSerial] = (int32_t)m->o.serial;
  return c.RetI((int32_t)m->o.handle);
}

// lock(h, m, now, timeout)
FN(Lock) {
  Call c(env, info);
  ks_mutex *m = c.Obj<ks_mutex>(1, KS_MUTEX);
  if (!m) return c.RetI(KO_EINVAL);
  ks_task *t = c.Task(0);
  return Blocked(c, t, ks_mutex_lock(c.s->core, t, m, c.Now(2), c.L(3)));
}

FN(TryLock) {
  Call c(env, info);
  ks_mutex *m = c.Obj<ks_mutex>(1, KS_MUTEX);
  if (!m) return c.RetI(KO_EINVAL);
  return c.RetI(ks_mutex_trylock(c.s->core, c.Task(0), m));
}

FN(Unlock) {
  Call c(env, info);
  ks_mutex *m = c.Obj<ks_mutex>(1, KS_MUTEX);
  if (!m) return c.RetI(KO_EINVAL);
  return c.RetI(ks_mutex_unlock(c.s->core, c.Task(0), m));
}

// mutexInfo(m) -> serial of the holder (0: free)
FN(MutexInfo) {
  Call c(env, info);
  ks_mutex *m = c.Obj<ks_mutex>(0, KS_MUTEX);
  if (!m) return c.RetI(KO_EINVAL);
  return c.RetI(m->owner ? (int32_t)m->owner->o.serial : 0);
}

FN(CondNew) {
  Call c(env, info);
  ks_cond *cv = ks_cond_new(c.s->core);
  if (!cv) return c.RetI(KO_ENOMEM);
  c.s->io[kSerial] = (int32_t)cv->o.serial;
  return c.RetI((int32_t)cv->o.handle);
}

// condWait(h, cond, mutex | 0, now, timeout)
FN(CondWait) {
  Call c(env, info);
  ks_cond *cv = c.Obj<ks_cond>(1, KS_COND);
  if (!cv) return c.RetI(KO_EINVAL);
  ks_mutex *m = c.I(2) ? c.Obj<ks_mutex>(2, KS_MUTEX) : nullptr;
  if (c.I(2) && !m) return c.RetI(KO_EINVAL);
  ks_task *t = c.Task(0);
  return Blocked(c, t, ks_cond_wait(c.s->core, t, cv, m, c.Now(3), c.L(4)));
}

FN(Signal) {
  Call c(env, info);
  ks_cond *cv = c.Obj<ks_cond>(0, KS_COND);
  return c.RetI(cv ? (int32_t)ks_cond_signal(c.s->core, cv) : KO_EINVAL);
}

FN(Broadcast) {
  Call c(env, info);
  ks_cond *cv = c.Obj<ks_cond>(0, KS_COND);
  return c.RetI(cv ? (int32_t)ks_cond_broadcast(c.s->core, cv) : KO_EINVAL);
}

FN(SemNew) {
  Call c(env, info);
  ks_sem *sm = ks_sem_new(c.s->core, c.L(0));
  if (!sm) return c.RetI(KO_EINVAL);
  c.s->io[kSerial] = (int32_t)sm->o.serial;
  return c.RetI((int32_t)sm->o.handle);
}

// acquire(h, sem, now, timeout)
FN(Acquire) {
  Call c(env, info);
  ks_sem *sm = c.Obj<ks_sem>(1, KS_SEM);
  if (!sm) return c.RetI(KO_EINVAL);
  ks_task *t = c.Task(0);
  return Blocked(c, t, ks_sem_acquire(c.s->core, t, sm, c.Now(2), c.L(3)));
}

FN(TryAcquire) {
  Call c(env, info);
  ks_sem *sm = c.Obj<ks_sem>(0, KS_SEM);
  return c.RetI(sm ? ks_sem_try_acquire(c.s->core, sm) : KO_EINVAL);
}

// semRelease(sem, n)
FN(SemRelease) {
  Call c(env, info);
  ks_sem *sm = c.Obj<ks_sem>(0, KS_SEM);
  return c.RetI(sm ? ks_sem_release(c.s->core, sm, c.L(1)) : KO_EINVAL);
}

FN(SemCount) {
  Call c(env, info);
  ks_sem *sm = c.Obj<ks_sem>(0, KS_SEM);
  return c.Ret(sm ? (double)sm->count : (double)KO_EINVAL);
}

FN(WgNew) {
  Call c(env, info);
  ks_wg *wg = ks_wg_new(c.s->core);
  if (!wg) return c.RetI(KO_ENOMEM);
  c.s->io[kSerial] = (int32_t)wg->o.serial;
  return c.RetI((int32_t)wg->o.handle);
}

// wgAdd(wg, delta)
FN(WgAdd) {
  Call c(env, info);
  ks_wg *wg = c.Obj<ks_wg>(0, KS_WG);
  return c.RetI(wg ? ks_wg_add(c.s->core, wg, c.L(1)) : KO_EINVAL);
}

// wgWait(h, wg, now, timeout)
FN(WgWait) {
  Call c(env, info);
  ks_wg *wg = c.Obj<ks_wg>(1, KS_WG);
  if (!wg) return c.RetI(KO_EINVAL);
  ks_task *t = c.Task(0);
  return Blocked(c, t, ks_wg_wait(c.s->core, t, wg, c.Now(2), c.L(3)));
}

FN(WgCount) {
  Call c(env, info);
  ks_wg *wg = c.Obj<ks_wg>(0, KS_WG);
  return c.Ret(wg ? (double)wg->count : (double)KO_EINVAL);
}

// free(h): a channel, mutex, cond, semaphore or wait group.
FN(Free) {
  Call c(env, info);
  int32_t h = c.I(0);
  for (int k = KS_CHAN; k < KS_KIND_COUNT; k++) {
    void *o = h > 0 ? ks_lookup(c.s->core, (uint32_t)h, (ks_kind)k) : nullptr;
    if (o) return c.RetI(ks_obj_free(c.s->core, o));
  }
  return c.RetI(KO_EINVAL);
}

struct Entry {
  const char *name;
  napi_callback fn;
};

const Entry kFunctions[] = {
    {"setBuffers", SetBuffers}, {"spawn", Spawn}, {"proxy", Proxy}, {"release", Release},
    {"next", Next}, {"unnext", Unnext}, {"exit", Exit}, {"cancel", Cancel}, {"wakeup", Wakeup},
    {"yieldNow", YieldNow}, {"sleep", Sleep}, {"join", Join}, {"blockExternal", BlockExternal},
    {"wakeExternal", WakeExternal}, {"expire", Expire}, {"nextDeadline", NextDeadline},
    {"taskInfo", TaskInfo}, {"describe", Describe}, {"liveCount", LiveCount},
    {"chanNew", ChanNew}, {"send", Send}, {"recv", Recv}, {"trySend", TrySend},
    {"tryRecv", TryRecv}, {"close", Close}, {"chanInfo", ChanInfo}, {"select", Select},
    {"mutexNew", MutexNew}, {"lock", Lock}, {"tryLock", TryLock}, {"unlock", Unlock},
    {"mutexInfo", MutexInfo}, {"condNew", CondNew}, {"condWait", CondWait}, {"signal", Signal},
    {"broadcast", Broadcast}, {"semNew", SemNew}, {"acquire", Acquire}, {"tryAcquire", TryAcquire},
    {"semRelease", SemRelease}, {"semCount", SemCount}, {"wgNew", WgNew}, {"wgAdd", WgAdd},
    {"wgWait", WgWait}, {"wgCount", WgCount}, {"free", Free},
};

}  // namespace

void InitScheduler(Napi::Env env, Napi::Object exports) {
  Sched *s = new Sched();
  uint64_t seed = 0x243F6A8885A308D3ull ^ (uint64_t)(uintptr_t)s;
  s->core = ks_core_new(seed);
  s->io = s->scratch;  // until setBuffers() hands over the shared array
  napi_add_env_cleanup_hook(env, Cleanup, s);
  Napi::Object sched = Napi::Object::New(env);
  for (const Entry &e : kFunctions) {
    napi_value fn;
    napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, s, &fn);
    sched.Set(e.name, Napi::Value(env, fn));
  }
  // Status codes and enums, so that JavaScript never hard-codes them.
  Napi::Object k = Napi::Object::New(env);
  k.Set("OK", (int)KO_OK);
  k.Set("BLOCK", (int)KS_BLOCK);
  k.Set("WOKEN", (int)KS_WOKEN);
  k.Set("EINVAL", (int)KO_EINVAL);
  k.Set("ENOMEM", (int)KO_ENOMEM);
  k.Set("EDONE", (int)KO_EDONE);
  k.Set("EBUSY", (int)KO_EBUSY);
  k.Set("ETIMEDOUT", (int)KO_ETIMEDOUT);
  k.Set("ECLOSED", (int)KO_ECLOSED);
  k.Set("ECANCELED", (int)KO_ECANCELED);
  k.Set("EAGAIN", (int)KO_EAGAIN);
  k.Set("OP_RECV", (int)KS_OP_RECV);
  k.Set("OP_SEND", (int)KS_OP_SEND);
  k.Set("OP_AFTER", (int)KS_OP_AFTER);
  k.Set("END_OK", (int)KS_END_OK);
  k.Set("END_ERROR", (int)KS_END_ERROR);
  k.Set("END_CANCELLED", (int)KS_END_CANCELLED);
  k.Set("READY", (int)KS_READY);
  k.Set("RUNNING", (int)KS_RUNNING);
  k.Set("BLOCKED", (int)KS_BLOCKED);
  k.Set("DONE", (int)KS_DONE);
  k.Set("EXT_AWAIT", (int)KS_EXT_AWAIT);
  k.Set("IO_READY", (int)kReady);
  k.Set("IO_STATUS", (int)kStatus);
  k.Set("IO_FIRED", (int)kFired);
  k.Set("IO_VALUE", (int)kValue);
  k.Set("IO_SEQ", (int)kSeq);
  k.Set("IO_SERIAL", (int)kSerial);
  k.Set("IO_AUX", (int)kAux);
  k.Set("IO_AUX2", (int)kAux2);
  k.Set("IO_NEXT", (int)kNext);
  k.Set("IO_SIZE", (int)kIoSize);
  sched.Set("K", k);
  exports.Set("sched", sched);
}

}  // namespace korutin
