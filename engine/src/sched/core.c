/*
 * core.c - tasks, the run queue, the timer heap, and the generic wait/wake
 * steps every primitive is built from. See core.h for the protocol.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NOT_IN_HEAP UINT32_MAX

/* ------------------------------------------------------------ object table */

void *ks__obj_new(ks_core *c, ks_kind kind, size_t size) {
  ks_obj *o = (ks_obj *)calloc(1, size);
  if (!o) return NULL;
  uint32_t h;
  if (c->nfree) {
    h = c->freeh[--c->nfree];
  } else {
    if (c->nobjs == c->objcap) {
      uint32_t cap = c->objcap ? c->objcap * 2 : 256;
      ks_obj **objs = (ks_obj **)realloc(c->objs, cap * sizeof *objs);
      if (!objs) {
        free(o);
        return NULL;
      }
      c->objs = objs;
      c->objcap = cap;
    }
    h = c->nobjs++;
  }
  c->objs[h] = o;
  o->core = c;
  o->handle = h;
  o->kind = (uint8_t)kind;
  o->serial = ++c->serial[kind];
  return o;
}

void ks__obj_drop(ks_core *c, ks_obj *o) {
  uint32_t h = o->handle;
  c->objs[h] = NULL;
  if (c->nfree == c->freecap) {
    uint32_t cap = c->freecap ? c->freecap * 2 : 256;
    uint32_t *f = (uint32_t *)realloc(c->freeh, cap * sizeof *f);
    if (f) {
      c->freeh = f;
      c->freecap = cap;
    }
  }
  if (c->nfree < c->freecap) c->freeh[c->nfree++] = h; /* else the handle is just never reused */
  free(o);
}

void *ks_lookup(const ks_core *c, uint32_t handle, ks_kind kind) {
  if (handle == 0 || handle >= c->nobjs) return NULL;
  ks_obj *o = c->objs[handle];
  return o && o->kind == kind ? o : NULL;
}

/* -------------------------------------------------------------------- core */

ks_core *ks_core_new(uint64_t seed) {
  ks_core *c = (ks_core *)calloc(1, sizeof *c);
  if (!c) return NULL;
  ks_list_init(&c->runq);
  ks_list_init(&c->live);
  c->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
  c->nobjs = 1; /* handle 0 is never handed out */
  c->objs = (ks_obj **)calloc(256, sizeof *c->objs);
  c->objcap = c->objs ? 256 : 0;
  if (!c->objs) {
    free(c);
    return NULL;
  }
  return c;
}

static void task_destroy(ks_core *c, ks_task *t) {
  free(t->wheap);
  ks__obj_drop(c, &t->o);
}

void ks_core_free(ks_core *c) {
  if (!c) return;
  for (uint32_t h = 1; h < c->nobjs; h++) {
    ks_obj *o = c->objs[h];
    if (!o) continue;
    if (o->kind == KS_TASK) {
      free(((ks_task *)o)->wheap);
    } else if (o->kind == KS_CHAN) {
      ks__chan_destroy((ks_chan *)o);
    }
    free(o);
  }
  free(c->objs);
  free(c->freeh);
  free(c->heap);
  free(c);
}

void *ks_core_user(const ks_core *c) { return c->user; }
void ks_core_set_user(ks_core *c, void *user) { c->user = user; }
uint32_t ks_ready_count(const ks_core *c) { return c->nready; }
uint32_t ks_live_count(const ks_core *c) { return c->nlive; }

ks_task *ks_live_next(const ks_core *c, ks_task *prev) {
  ks_node *n = prev ? prev->live.next : c->live.next;
  return n == &c->live ? NULL : KS_CONTAINER(n, ks_task, live);
}

uint64_t ks__random(ks_core *c) {
  /* xorshift64* */
  uint64_t x = c->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  c->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* ------------------------------------------------------------- timer heap */

static int heap_less(const ks_task *a, const ks_task *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->tseq < b->tseq);
}

static void heap_set(ks_core *c, uint32_t i, ks_task *t) {
  c->heap[i] = t;
  t->heap_pos = i;
}

static void heap_up(ks_core *c, uint32_t i) {
  ks_task *t = c->heap[i];
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (!heap_less(t, c->heap[p])) break;
    heap_set(c, i, c->heap[p]);
    i = p;
  }
  heap_set(c, i, t);
}

static void heap_down(ks_core *c, uint32_t i) {
  ks_task *t = c->heap[i];
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    const ks_task *best = t;
    if (l < c->nheap && heap_less(c->heap[l], best)) m = l, best = c->heap[l];
    if (r < c->nheap && heap_less(c->heap[r], best)) m = r;
    if (m == i) break;
    heap_set(c, i, c->heap[m]);
    i = m;
  }
  heap_set(c, i, t);
}

static int heap_push(ks_core *c, ks_task *t) {
  if (c->nheap == c->heapcap) {
    uint32_t cap = c->heapcap ? c->heapcap * 2 : 64;
    ks_task **h = (ks_task **)realloc(c->heap, cap * sizeof *h);
    if (!h) return KO_ENOMEM;
    c->heap = h;
    c->heapcap = cap;
  }
  t->tseq = c->tseq++;
  heap_set(c, c->nheap++, t);
  heap_up(c, t->heap_pos);
  return KO_OK;
}

static void heap_remove(ks_core *c, ks_task *t) {
  uint32_t i = t->heap_pos;
  if (i == NOT_IN_HEAP) return;
  t->heap_pos = NOT_IN_HEAP;
  ks_task *last = c->heap[--c->nheap];
  if (i == c->nheap) return;
  heap_set(c, i, last);
  if (i > 0 && heap_less(last, c->heap[(i - 1) / 2])) heap_up(c, i);
  else heap_down(c, i);
}

ks_time ks_next_deadline(const ks_core *c) { return c->nheap ? c->heap[0]->deadline : UINT64_MAX; }
uint32_t ks_timed_count(const ks_core *c) { return c->nheap; }

/* ---------------------------------------------------------------- passes */

#define KS_UNREAD UINT64_MAX

void ks_core_set_clock(ks_core *c, ks_time (*now)(void *arg), void *arg) {
  c->now = now;
  c->now_arg = arg;
}

static ks_time core_now(ks_core *c) { return c->now ? c->now(c->now_arg) : 0; }

ks_task *ks_pass_next(ks_core *c, int begin) {
  if (begin || !c->in_pass) {
    c->in_pass = 1;
    c->pass_over = 0;
    c->pass_pops = 0;
    c->pass_start = KS_UNREAD;
    if (c->nheap) ks_expire(c, c->pass_start = core_now(c));
  } else if (c->pass_over) {
    return NULL;
  } else if (++c->pass_pops % KS_PASS_CHECK == 0) {
    ks_time now = core_now(c);
    if (c->pass_start == KS_UNREAD) c->pass_start = now;
    if (c->nheap) ks_expire(c, now);
    if (now - c->pass_start > KS_PASS_BUDGET_US) {
      c->pass_over = 1;
      return NULL;
    }
  }
  return ks_next(c);
}

int ks_pass_run(ks_core *c, int begin, ks_run_fn run, void *arg) {
  ks_task *t;
  for (; (t = ks_pass_next(c, begin)); begin = 0) {
    int r = run(arg, t);
    if (r) return r;
  }
  return 0;
}

/* -------------------------------------------------------- generic waiting */

static void runq_push(ks_core *c, ks_task *t) {
  t->state = KS_READY;
  ks_list_push(&c->runq, &t->run);
  c->nready++;
}

int ks__enter(ks_core *c, ks_task *t) {
  (void)c;
  if (!t || t->state != KS_RUNNING) return KO_EINVAL;
  if (t->cancel_pending) {
    t->cancel_pending = 0;
    return KO_ECANCELED;
  }
  return KO_OK;
}

ks_waiter *ks__waiters(ks_task *t, uint32_t n) {
  if (n <= 1) {
    t->w = &t->one;
    t->nw = n;
    return t->w;
  }
  if (t->wcap < n) {
    ks_waiter *w = (ks_waiter *)realloc(t->wheap, n * sizeof *w);
    if (!w) return NULL;
    t->wheap = w;
    t->wcap = n;
  }
  t->w = t->wheap;
  t->nw = n;
  return t->w;
}

void ks__enqueue(ks_node *q, ks_waiter *w, ks_task *t, ks_obj *obj, uint8_t op, int32_t index, uint64_t value) {
  w->task = t;
  w->obj = obj;
  w->op = op;
  w->index = index;
  w->value = value;
  ks_list_push(q, &w->link);
}

void ks__block(ks_core *c, ks_task *t, ks_wait wait, ks_obj *obj, ks_time now, int64_t timeout) {
  t->state = KS_BLOCKED;
  t->wait = (uint8_t)wait;
  t->wait_obj = obj;
  t->since = now;
  t->status = KO_OK;
  t->fired = -1;
  t->value = 0;
  if (timeout >= 0) {
    t->deadline = now + (ks_time)timeout;
    if (heap_push(c, t) != KO_OK) t->heap_pos = NOT_IN_HEAP; /* no room: the wait has no deadline */
  }
}

void ks__unwait(ks_core *c, ks_task *t) {
  for (uint32_t i = 0; i < t->nw; i++)
    if (ks_linked(&t->w[i].link)) ks_list_unlink(&t->w[i].link);
  t->nw = 0;
  heap_remove(c, t);
}

void ks__wake(ks_core *c, ks_task *t, int status, int32_t fired, uint64_t value) {
  ks__unwait(c, t);
  t->wait = KS_W_NONE;
  t->wait_obj = NULL;
  t->relock = NULL;
  t->status = status;
  t->fired = fired;
  t->value = value;
  t->seq++;
  runq_push(c, t);
}

/* ----------------------------------------------------------------- tasks */

static ks_task *task_new(ks_core *c) {
  ks_task *t = (ks_task *)ks__obj_new(c, KS_TASK, sizeof(ks_task));
  if (!t) return NULL;
  t->heap_pos = NOT_IN_HEAP;
  t->fired = -1;
  t->timeout_case = -1;
  t->deadline = UINT64_MAX;
  ks_list_init(&t->joiners);
  return t;
}

ks_task *ks_spawn(ks_core *c) {
  ks_task *t = task_new(c);
  if (!t) return NULL;
  ks_list_push(&c->live, &t->live);
  c->nlive++;
  runq_push(c, t);
  return t;
}

ks_task *ks_proxy(ks_core *c) {
  ks_task *t = task_new(c);
  if (!t) return NULL;
  t->proxy = 1;
  t->started = 1;
  t->state = KS_RUNNING;
  return t;
}

ks_task *ks_next(ks_core *c) {
  ks_node *n = ks_list_first(&c->runq);
  if (!n) return NULL;
  ks_list_unlink(n);
  c->nready--;
  ks_task *t = KS_CONTAINER(n, ks_task, run);
  t->state = KS_RUNNING;
  if (!t->started) {
    /* a task cancelled before it ever ran learns it here */
    t->started = 1;
    t->status = t->cancel_pending ? KO_ECANCELED : KO_OK;
    t->cancel_pending = 0;
    t->fired = -1;
  }
  return t;
}

void ks_unnext(ks_core *c, ks_task *t) {
  if (t->state != KS_RUNNING || ks_linked(&t->run)) return;
  t->state = KS_READY;
  /* the head of the queue: it was the next to run */
  ks_node *h = &c->runq;
  t->run.next = h->next;
  t->run.prev = h;
  h->next->prev = &t->run;
  h->next = &t->run;
  c->nready++;
}

static void task_free(ks_core *c, ks_task *t) {
  if (ks_linked(&t->run)) {
    ks_list_unlink(&t->run);
    c->nready--;
  }
  ks__unwait(c, t);
  if (ks_linked(&t->live)) {
    ks_list_unlink(&t->live);
    c->nlive--;
  }
  /* joiners of a task freed before it ended (only at teardown) are woken */
  ks_waiter *w;
  while ((w = ks__pop(&t->joiners))) ks__wake(c, w->task, KO_EDONE, -1, 0);
  task_destroy(c, t);
}

void ks_exit(ks_core *c, ks_task *t, ks_end end, uint64_t result) {
  if (t->state == KS_DONE) return;
  ks__unwait(c, t);
  t->state = KS_DONE;
  t->end = (uint8_t)end;
  t->result = result;
  t->wait = KS_W_NONE;
  if (ks_linked(&t->live)) {
    ks_list_unlink(&t->live);
    c->nlive--;
  }
  ks_waiter *w;
  while ((w = ks__pop(&t->joiners))) ks__wake(c, w->task, KO_OK, w->index, 0);
  if (t->released) task_destroy(c, t);
}

int ks_has_joiners(const ks_task *t) { return !ks_list_empty(&t->joiners); }

void ks_release(ks_core *c, ks_task *t) {
  if (t->state == KS_DONE || t->proxy) task_free(c, t);
  else t->released = 1;
}

int ks_cancel(ks_core *c, ks_task *t) {
  if (t->state == KS_DONE) return KO_EDONE;
  t->cancelled = 1;
  if (t->state != KS_BLOCKED) {
    t->cancel_pending = 1;
    return KO_OK;
  }
  if (t->wait == KS_W_RELOCK) t->pending = KO_ECANCELED; /* it gets the news with its mutex back */
  else if (t->wait == KS_W_COND && t->relock) ks__cond_done(c, t, KO_ECANCELED);
  else ks__wake(c, t, KO_ECANCELED, -1, 0);
  return KO_OK;
}

int ks_wakeup(ks_core *c, ks_task *t) {
  if (t->state != KS_BLOCKED || t->wait != KS_W_SLEEP) return KO_EINVAL;
  ks__wake(c, t, KO_WOKEN, -1, 0);
  return KO_OK;
}

int ks_check_cancel(ks_core *c, ks_task *t) { return ks__enter(c, t); }

/* --------------------------------------------------- the simple waits */

int ks_yield(ks_core *c, ks_task *t) {
  int err = ks__enter(c, t);
  if (err) return err;
  t->status = KO_OK;
  t->fired = -1;
  runq_push(c, t);
  return KS_BLOCK;
}

int ks_sleep(ks_core *c, ks_task *t, ks_time now, int64_t dur) {
  int err = ks__enter(c, t);
  if (err) return err;
  ks__waiters(t, 0);
  ks__block(c, t, KS_W_SLEEP, NULL, now, dur < 0 ? 0 : dur);
  return KS_BLOCK;
}

int ks_join(ks_core *c, ks_task *t, ks_task *target, ks_time now, int64_t timeout) {
  if (!target || target == t) return KO_EINVAL;
  int err = ks__enter(c, t);
  if (err) return err;
  if (target->state == KS_DONE) return KO_OK;
  ks_waiter *w = ks__waiters(t, 1);
  ks__enqueue(&target->joiners, w, t, &target->o, KS_W_JOIN, 0, 0);
  ks__block(c, t, KS_W_JOIN, &target->o, now, timeout);
  return KS_BLOCK;
}

int ks_block_external(ks_core *c, ks_task *t, ks_time now, int64_t timeout, int kind, int64_t arg,
                      uint32_t *seq) {
  int err = ks__enter(c, t);
  if (err) return err;
  ks__waiters(t, 0);
  t->ext_kind = kind;
  t->ext_arg = arg;
  ks__block(c, t, KS_W_EXTERNAL, NULL, now, timeout);
  if (seq) *seq = t->seq;
  return KS_BLOCK;
}

int ks_wake_external(ks_core *c, ks_task *t, uint32_t seq, int status, uint64_t value) {
  if (t->state != KS_BLOCKED || t->wait != KS_W_EXTERNAL || t->seq != seq) return KO_EINVAL;
  ks__wake(c, t, status, -1, value);
  return KO_OK;
}

/* ----------------------------------------------------------------- timers */

static void on_deadline(ks_core *c, ks_task *t) {
  switch (t->wait) {
    case KS_W_SLEEP: ks__wake(c, t, KO_OK, -1, 0); break;
    case KS_W_SELECT:
      if (t->timeout_case >= 0) ks__wake(c, t, KO_OK, t->timeout_case, 0);
      else ks__wake(c, t, KO_ETIMEDOUT, -1, 0);
      break;
    case KS_W_COND:
      if (t->relock) {
        ks__cond_done(c, t, KO_ETIMEDOUT);
        break;
      }
      ks__wake(c, t, KO_ETIMEDOUT, -1, 0);
      break;
    default: ks__wake(c, t, KO_ETIMEDOUT, -1, 0); break;
  }
}

uint32_t ks_expire(ks_core *c, ks_time now) {
  uint32_t n = 0;
  while (c->nheap && c->heap[0]->deadline <= now) {
    ks_task *t = c->heap[0];
    heap_remove(c, t);
    on_deadline(c, t);
    n++;
  }
  return n;
}

/* ------------------------------------------------------------ descriptions */

static const char *kind_name(uint8_t kind) {
  switch (kind) {
    case KS_TASK: return "task";
    case KS_CHAN: return "channel";
    case KS_MUTEX: return "mutex";
    case KS_COND: return "cond";
    case KS_SEM: return "semaphore";
    case KS_WG: return "waitgroup";
    default: return "object";
  }
}

const char *ks_state_name(const ks_task *t) {
  if (t->state == KS_DONE) {
    switch (t->end) {
#define KS_XX(name, value, word) \
  case KS_END_##name: return word;
      KS_END_MAP(KS_XX)
#undef KS_XX
    }
  }
  switch (t->state) {
#define KS_XX(name, value, word) \
  case KS_##name: return word;
    KS_STATE_MAP(KS_XX)
#undef KS_XX
  }
  return "unknown";
}

typedef struct out {
  char *buf;
  size_t size, len;
} out;

#if defined(__GNUC__)
static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
static void put(out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *dst = o->len < o->size ? o->buf + o->len : NULL;
  size_t room = o->len < o->size ? o->size - o->len : 0;
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

static void put_ms(out *o, uint64_t us) {
  if (us % 1000 == 0 || us >= 100000) put(o, "%llums", (unsigned long long)((us + 500) / 1000));
  else put(o, "%.4gms", (double)us / 1000.0);
}

static void put_obj(out *o, const ks_obj *obj) {
  put(o, "%s#%llu", kind_name(obj->kind), (unsigned long long)obj->serial);
}

int ks_describe(const ks_core *c, const ks_task *t, ks_time now, char *buf, size_t size) {
  (void)c;
  out o = {buf, size, 0};
  if (size) buf[0] = 0;
  if (t->state != KS_BLOCKED) {
    put(&o, "%s", ks_state_name(t));
    return (int)o.len;
  }
  int has_deadline = t->heap_pos != NOT_IN_HEAP;
  switch (t->wait) {
    case KS_W_SLEEP:
      put(&o, "sleep ");
      put_ms(&o, t->deadline - t->since);
      has_deadline = 0;
      break;
    case KS_W_JOIN: put(&o, "join "); put_obj(&o, t->wait_obj); break;
    case KS_W_SEND: put(&o, "send "); put_obj(&o, t->wait_obj); break;
    case KS_W_RECV: put(&o, "recv "); put_obj(&o, t->wait_obj); break;
    case KS_W_LOCK: put(&o, "lock "); put_obj(&o, t->wait_obj); break;
    case KS_W_RELOCK: put(&o, "lock "); put_obj(&o, t->wait_obj); put(&o, " (after cond wait)"); break;
    case KS_W_COND: put(&o, "wait "); put_obj(&o, t->wait_obj); break;
    case KS_W_SEM: put(&o, "acquire "); put_obj(&o, t->wait_obj); break;
    case KS_W_WG: put(&o, "wait "); put_obj(&o, t->wait_obj); break;
    case KS_W_SELECT:
      put(&o, "select [");
      for (uint32_t i = 0; i < t->nw; i++) {
        put(&o, "%s%s ", i ? ", " : "", t->w[i].op == KS_OP_SEND ? "send" : "recv");
        put_obj(&o, t->w[i].obj);
      }
      if (t->timeout_case >= 0) {
        put(&o, "%safter ", t->nw ? ", " : "");
        put_ms(&o, t->deadline - t->since);
        has_deadline = 0;
      }
      put(&o, "]");
      break;
    case KS_W_EXTERNAL:
      if (t->ext_kind == KS_EXT_AWAIT) put(&o, "await promise");
      else if (t->ext_kind == KS_EXT_FD) put(&o, "poll fd %lld", (long long)t->ext_arg);
      else put(&o, "external event");
      break;
    default: put(&o, "blocked"); break;
  }
  if (has_deadline) {
    put(&o, " (timeout ");
    put_ms(&o, t->deadline - t->since);
    uint64_t left = t->deadline > now ? t->deadline - now : 0;
    put(&o, ", ");
    put_ms(&o, left);
    put(&o, " left)");
  }
  return (int)o.len;
}
