/*
 * uv_driver.c - the C driver of the scheduler core: tasks are ko_coro
 * coroutines resumed from a libuv loop.
 *
 * A pass pops ready tasks from the core and resumes each until it blocks,
 * yields or ends. A uv_idle handle is active while tasks are ready (so the
 * loop does not sleep in poll), a uv_timer is armed for the earliest
 * deadline, and uv_poll handles watch file descriptors. The clock is
 * uv_hrtime(), in microseconds for the core.
 */
#include "korutin.h"
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* A pass gives the loop a turn after this long (microseconds). */
#define PASS_BUDGET_US 10000

typedef struct handles {
  uv_idle_t idle;
  uv_timer_t timer;
  int open;
  struct ko_sched *s;
} handles;

struct ko_sched {
  ks_core *core;
  uv_loop_t *loop;
  handles *h;
  ko_options copt;
  ks_time armed; /* the deadline the timer is set for; UINT64_MAX: none */
  int in_pass;
  ko_task *tasks; /* every task not freed yet */
};

struct ko_task {
  ks_task *kt;
  ko_sched *s;
  ko_coro *co;
  ko_task_fn fn;
  void *arg;
  void *result;
  void *data;
  char *name;
  int started;
  int detached;
  struct fdwait *fw; /* the fd wait it is blocked in, if any */
  ko_task *prev, *next;
};

/* The task running on this OS thread (set inside the coroutine, so it also
 * holds on backends that give each coroutine a thread of its own). */
static __thread ko_task *tls_task;

static ks_time now_us(void) { return (ks_time)(uv_hrtime() / 1000); }
static int64_t to_us(int64_t ms) { return ms < 0 ? -1 : ms * 1000; }

static ko_task *self(void) {
  ko_task *t = tls_task;
  return t && t->co && ko_current() == t->co ? t : NULL;
}

/* Suspends the calling task until the core wakes it; returns the outcome. */
static int suspend(ko_task *t) {
  ko_yield(NULL);
  tls_task = t;
  return t->kt->status;
}

static int finish_op(ko_task *t, int r) { return r == KS_BLOCK ? suspend(t) : r; }

/* ------------------------------------------------------------- the loop */

static void run_pass(ko_sched *s);

static void on_idle(uv_idle_t *h) { run_pass(((handles *)h->data)->s); }

static void on_timer(uv_timer_t *h) {
  ko_sched *s = ((handles *)h->data)->s;
  s->armed = UINT64_MAX;
  run_pass(s);
}

/* Keeps the idle handle and the timer in step with the core. */
static void update(ko_sched *s) {
  if (s->in_pass || !s->h) return;
  if (ks_ready_count(s->core)) uv_idle_start(&s->h->idle, on_idle);
  else uv_idle_stop(&s->h->idle);
  ks_time d = ks_next_deadline(s->core);
  if (d == UINT64_MAX) {
    uv_timer_stop(&s->h->timer);
    s->armed = UINT64_MAX;
  } else if (d != s->armed) {
    ks_time now = now_us();
    uint64_t ms = d > now ? (d - now + 999) / 1000 : 0;
    uv_timer_start(&s->h->timer, on_timer, ms, 0);
    s->armed = d;
  }
}

static void task_unlist(ko_sched *s, ko_task *t) {
  if (t->prev) t->prev->next = t->next;
  else s->tasks = t->next;
  if (t->next) t->next->prev = t->prev;
}

static void fdwait_abandon(struct fdwait *w);

static void task_free(ko_task *t) {
  if (t->fw) fdwait_abandon(t->fw); /* freed while waiting on a fd */
  task_unlist(t->s, t);
  if (t->co) ko_destroy(t->co);
  free(t->name);
  free(t);
}

static void finish(ko_sched *s, ko_task *t) {
  ks_task *kt = t->kt;
  if (t->co) {
    ko_destroy(t->co);
    t->co = NULL;
  }
  int detached = t->detached;
  ks_exit(s->core, kt, kt->cancelled ? KS_END_CANCELLED : KS_END_OK, (uint64_t)(uintptr_t)t->result);
  if (detached) task_free(t); /* the core freed kt (it was released) */
}

static void run_pass(ko_sched *s) {
  if (s->in_pass) return;
  s->in_pass = 1;
  ks_time start = now_us();
  ks_expire(s->core, start);
  unsigned n = 0;
  ks_task *kt;
  while ((kt = ks_next(s->core))) {
    ko_task *t = (ko_task *)kt->user;
    if (!t->started) {
      t->started = 1;
      if (kt->status == KO_ECANCELED) { /* cancelled before it ran: it never does */
        finish(s, t);
        continue;
      }
    }
    ko_resume(t->co, NULL, NULL);
    tls_task = NULL;
    if (ko_status(t->co) == KO_DONE) finish(s, t);
    if ((++n & 63) == 0) {
      ks_time now = now_us();
      ks_expire(s->core, now);
      if (now - start > PASS_BUDGET_US) break;
    }
  }
  s->in_pass = 0;
  update(s);
}

/* ------------------------------------------------------------- scheduler */

int ko_sched_new(ko_sched **out, uv_loop_t *loop, const ko_sched_options *opt) {
  if (!out || !loop) return KO_EINVAL;
  *out = NULL;
  ko_sched_options def = {0};
  if (!opt) opt = &def;
  const ko_backend *be = opt->backend ? opt->backend : ko_backend_default();
  if (!be || ko_backend_unavailable(be)) return KO_EBACKEND;
  ko_sched *s = (ko_sched *)calloc(1, sizeof *s);
  handles *h = (handles *)calloc(1, sizeof *h);
  ks_core *core = ks_core_new(opt->seed);
  if (!s || !h || !core) {
    free(s);
    free(h);
    ks_core_free(core);
    return KO_ENOMEM;
  }
  s->core = core;
  ks_core_set_user(core, s);
  s->loop = loop;
  s->h = h;
  s->armed = UINT64_MAX;
  s->copt.backend = be;
  s->copt.stack_size = opt->stack_size;
  h->s = s;
  uv_idle_init(loop, &h->idle);
  uv_timer_init(loop, &h->timer);
  h->idle.data = h->timer.data = h;
  h->open = 2;
  *out = s;
  return KO_OK;
}

int ko_sched_run(ko_sched *s) {
  if (!s) return KO_EINVAL;
  if (self()) return KO_EBUSY;
  update(s);
  uv_run(s->loop, UV_RUN_DEFAULT);
  return (int)ks_live_count(s->core);
}

static void on_close(uv_handle_t *hd) {
  handles *h = (handles *)hd->data;
  if (--h->open == 0) free(h);
}

int ko_sched_free(ko_sched *s) {
  if (!s) return KO_EINVAL;
  if (self() || s->in_pass) return KO_EBUSY;
  while (s->tasks) task_free(s->tasks);
  ks_core_free(s->core);
  uv_close((uv_handle_t *)&s->h->idle, on_close);
  uv_close((uv_handle_t *)&s->h->timer, on_close);
  free(s);
  return KO_OK;
}

ko_sched *ko_sched_current(void) {
  ko_task *t = self();
  return t ? t->s : NULL;
}

/* ----------------------------------------------------------------- tasks */

static void *entry(ko_coro *co, void *arg) {
  (void)co;
  ko_task *t = (ko_task *)arg;
  tls_task = t;
  t->result = t->fn(t->arg);
  return NULL;
}

int ko_spawn(ko_sched *s, ko_task **out, ko_task_fn fn, void *arg, const char *name) {
  if (!s || !fn) return KO_EINVAL;
  ko_task *t = (ko_task *)calloc(1, sizeof *t);
  if (!t) return KO_ENOMEM;
  int err = ko_create(&t->co, &s->copt, entry, t);
  if (err) {
    free(t);
    return err;
  }
  t->kt = ks_spawn(s->core);
  if (!t->kt) {
    ko_destroy(t->co);
    free(t);
    return KO_ENOMEM;
  }
  t->kt->user = t;
  t->s = s;
  t->fn = fn;
  t->arg = arg;
  if (name) {
    t->name = strdup(name);
  } else {
    char buf[32];
    snprintf(buf, sizeof buf, "task-%llu", (unsigned long long)t->kt->o.serial);
    t->name = strdup(buf);
  }
  t->next = s->tasks;
  if (s->tasks) s->tasks->prev = t;
  s->tasks = t;
  if (out) *out = t;
  update(s);
  return KO_OK;
}

ko_task *ko_task_current(void) { return self(); }
uint64_t ko_task_id(const ko_task *t) { return t->kt->o.serial; }
const char *ko_task_name(const ko_task *t) { return t->name ? t->name : ""; }
const char *ko_task_state(const ko_task *t) { return ks_state_name(t->kt); }
void *ko_task_data(const ko_task *t) { return t->data; }
uint64_t ko_task_deadline(const ko_task *t) { return t->kt->deadline == UINT64_MAX ? 0 : t->kt->deadline; }
void ko_task_set_data(ko_task *t, void *data) { t->data = data; }

int ko_task_describe(const ko_task *t, char *buf, size_t size) {
  return ks_describe(t->s->core, t->kt, now_us(), buf, size);
}

int ko_join(ko_task *t, int64_t timeout_ms, void **result) {
  if (!t || t->detached) return KO_EINVAL;
  ko_task *me = self();
  if (t == me) return KO_EINVAL;
  if (t->kt->state != KS_DONE) {
    if (!me) return KO_ENOTCORO;
    if (me->s != t->s) return KO_EINVAL;
    if (ks_has_joiners(t->kt)) return KO_EBUSY; /* one joiner: it frees t */
    int r = finish_op(me, ks_join(t->s->core, me->kt, t->kt, now_us(), to_us(timeout_ms)));
    if (r != KO_OK) return r;
  }
  int cancelled = t->kt->end == KS_END_CANCELLED;
  if (result) *result = t->result;
  ks_release(t->s->core, t->kt);
  task_free(t);
  return cancelled ? KO_ECANCELED : KO_OK;
}

int ko_detach(ko_task *t) {
  if (!t || t->detached) return KO_EINVAL;
  if (ks_has_joiners(t->kt)) return KO_EBUSY; /* its joiner will free it */
  t->detached = 1;
  int done = t->kt->state == KS_DONE;
  ks_release(t->s->core, t->kt);
  if (done) task_free(t);
  return KO_OK;
}

int ko_cancel(ko_task *t) {
  if (!t) return KO_EINVAL;
  int r = ks_cancel(t->s->core, t->kt);
  update(t->s);
  return r;
}

static int need_self(ko_task **me) {
  *me = self();
  return *me ? KO_OK : KO_ENOTCORO;
}

int ko_sleep(int64_t ms) {
  ko_task *me;
  if (need_self(&me)) return KO_ENOTCORO;
  return finish_op(me, ks_sleep(me->s->core, me->kt, now_us(), ms < 0 ? 0 : ms * 1000));
}

int ko_wakeup(ko_task *t) {
  if (!t) return KO_EINVAL;
  int r = ks_wakeup(t->s->core, t->kt);
  update(t->s);
  return r;
}

int ko_yield_now(void) {
  ko_task *me;
  if (need_self(&me)) return KO_ENOTCORO;
  return finish_op(me, ks_yield(me->s->core, me->kt));
}

/* ------------------------------------------------------------- fd waits */

typedef struct fdwait {
  uv_poll_t poll;
  ko_task *t;
  uint32_t seq;
  int revents;
} fdwait;

static void on_poll(uv_poll_t *p, int status, int events) {
  fdwait *w = (fdwait *)p->data;
  uv_poll_stop(p);
  if (!w->t) return;
  w->revents = status < 0 ? 0 : events;
  ko_sched *s = w->t->s;
  ks_wake_external(s->core, w->t->kt, w->seq, status < 0 ? KO_EINVAL : KO_OK, 0);
  update(s);
}

static void on_poll_close(uv_handle_t *h) { free(h->data); }

static void fdwait_abandon(struct fdwait *w) {
  w->t->fw = NULL;
  w->t = NULL;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_poll_close);
}

int ko_wait_fd(int fd, int events, int64_t timeout_ms, int *revents) {
  ko_task *me;
  if (need_self(&me)) return KO_ENOTCORO;
  if (!(events & (KO_READABLE | KO_WRITABLE)) || (events & ~(KO_READABLE | KO_WRITABLE))) return KO_EINVAL;
  fdwait *w = (fdwait *)calloc(1, sizeof *w);
  if (!w) return KO_ENOMEM;
  if (uv_poll_init(me->s->loop, &w->poll, fd) != 0) {
    free(w);
    return KO_EINVAL;
  }
  w->poll.data = w;
  w->t = me;
  me->fw = w;
  int r = ks_block_external(me->s->core, me->kt, now_us(), to_us(timeout_ms), KS_EXT_FD, fd, &w->seq);
  if (r == KS_BLOCK) {
    if (uv_poll_start(&w->poll, events, on_poll) != 0)
      ks_wake_external(me->s->core, me->kt, w->seq, KO_EINVAL, 0);
    r = suspend(me);
  }
  if (r == KO_OK && revents) *revents = w->revents;
  fdwait_abandon(w);
  return r;
}

/* -------------------------------------------------------------- channels */

#define SCHED_OF(obj) ((ko_sched *)ks_core_user(((ks_obj *)(obj))->core))

int ko_chan_new(ko_sched *s, ko_chan **out, size_t capacity) {
  if (!s || !out || capacity > UINT32_MAX) return KO_EINVAL;
  ks_chan *ch = ks_chan_new(s->core, (uint32_t)capacity);
  *out = (ko_chan *)ch;
  return ch ? KO_OK : KO_ENOMEM;
}

int ko_chan_free(ko_chan *ch) {
  if (!ch) return KO_EINVAL;
  return ks_chan_free(((ks_obj *)ch)->core, (ks_chan *)ch);
}

/* The calling task, which must belong to obj's scheduler. */
static int task_for(const void *obj, ko_task **me) {
  if (!obj) return KO_EINVAL;
  *me = self();
  if (!*me) return KO_ENOTCORO;
  return (*me)->s == SCHED_OF(obj) ? KO_OK : KO_EINVAL;
}

int ko_chan_send(ko_chan *ch, void *v, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(ch, &me);
  if (err) return err;
  return finish_op(me, ks_chan_send(me->s->core, me->kt, (ks_chan *)ch, (uint64_t)(uintptr_t)v, now_us(),
                                    to_us(timeout_ms)));
}

int ko_chan_recv(ko_chan *ch, void **v, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(ch, &me);
  if (err) return err;
  uint64_t got = 0;
  int r = ks_chan_recv(me->s->core, me->kt, (ks_chan *)ch, &got, now_us(), to_us(timeout_ms));
  if (r == KS_BLOCK) {
    r = suspend(me);
    got = me->kt->value;
  }
  if (v) *v = r == KO_OK ? (void *)(uintptr_t)got : NULL;
  return r;
}

int ko_chan_try_send(ko_chan *ch, void *v) {
  if (!ch) return KO_EINVAL;
  ko_sched *s = SCHED_OF(ch);
  int r = ks_chan_try_send(s->core, (ks_chan *)ch, (uint64_t)(uintptr_t)v);
  update(s);
  return r;
}

int ko_chan_try_recv(ko_chan *ch, void **v) {
  if (!ch) return KO_EINVAL;
  ko_sched *s = SCHED_OF(ch);
  uint64_t got = 0;
  int r = ks_chan_try_recv(s->core, (ks_chan *)ch, &got);
  if (v) *v = r == KO_OK ? (void *)(uintptr_t)got : NULL;
  update(s);
  return r;
}

int ko_chan_close(ko_chan *ch) {
  if (!ch) return KO_EINVAL;
  ko_sched *s = SCHED_OF(ch);
  int r = ks_chan_close(s->core, (ks_chan *)ch);
  update(s);
  return r;
}

size_t ko_chan_len(const ko_chan *ch) { return ch ? ((const ks_chan *)ch)->len : 0; }

static int select_impl(ko_case *cases, int n, int64_t timeout_ms, int nonblock, int *fired) {
  if (!cases || n <= 0 || n > 4096) return KO_EINVAL;
  ks_case buf[16];
  ks_case *k = n <= 16 ? buf : (ks_case *)malloc((size_t)n * sizeof *k);
  if (!k) return KO_ENOMEM;
  ko_sched *s = NULL;
  int err = KO_OK;
  for (int i = 0; i < n && !err; i++) {
    if (!cases[i].ch || (cases[i].op != KO_CASE_RECV && cases[i].op != KO_CASE_SEND)) err = KO_EINVAL;
    else if (s && SCHED_OF(cases[i].ch) != s) err = KO_EINVAL;
    else {
      s = SCHED_OF(cases[i].ch);
      k[i].op = cases[i].op == KO_CASE_RECV ? KS_OP_RECV : KS_OP_SEND;
      k[i].ch = (ks_chan *)cases[i].ch;
      k[i].value = (uint64_t)(uintptr_t)cases[i].value;
    }
  }
  ko_task *me = self();
  if (!err && !nonblock && !me) err = KO_ENOTCORO;
  if (!err && me && me->s != s) err = KO_EINVAL;
  int32_t which = -1;
  uint64_t got = 0;
  int r = err;
  if (!err) {
    r = ks_select(s->core, me ? me->kt : NULL, k, (uint32_t)n, now_us(), to_us(timeout_ms), nonblock, &which, &got);
    if (r == KS_BLOCK) {
      r = suspend(me);
      which = me->kt->fired;
      got = me->kt->value;
    }
    if (which >= 0 && fired) *fired = which;
    if (which >= 0 && r == KO_OK && cases[which].op == KO_CASE_RECV) cases[which].value = (void *)(uintptr_t)got;
    if (nonblock) update(s);
  }
  if (k != buf) free(k);
  return r;
}

int ko_select(ko_case *cases, int n, int64_t timeout_ms, int *fired) {
  return select_impl(cases, n, timeout_ms, 0, fired);
}

int ko_select_try(ko_case *cases, int n, int *fired) { return select_impl(cases, n, -1, 1, fired); }

/* ------------------------------------------------------------------ sync */

int ko_mutex_new(ko_sched *s, ko_mutex **out) {
  if (!s || !out) return KO_EINVAL;
  *out = (ko_mutex *)ks_mutex_new(s->core);
  return *out ? KO_OK : KO_ENOMEM;
}

int ko_mutex_free(ko_mutex *m) { return m ? ks_obj_free(((ks_obj *)m)->core, m) : KO_EINVAL; }

int ko_mutex_lock(ko_mutex *m, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(m, &me);
  if (err) return err;
  return finish_op(me, ks_mutex_lock(me->s->core, me->kt, (ks_mutex *)m, now_us(), to_us(timeout_ms)));
}

int ko_mutex_trylock(ko_mutex *m) {
  ko_task *me;
  int err = task_for(m, &me);
  if (err) return err;
  return ks_mutex_trylock(me->s->core, me->kt, (ks_mutex *)m);
}

int ko_mutex_unlock(ko_mutex *m) {
  ko_task *me;
  int err = task_for(m, &me);
  if (err) return err;
  return ks_mutex_unlock(me->s->core, me->kt, (ks_mutex *)m);
}

int ko_cond_new(ko_sched *s, ko_cond **out) {
  if (!s || !out) return KO_EINVAL;
  *out = (ko_cond *)ks_cond_new(s->core);
  return *out ? KO_OK : KO_ENOMEM;
}

int ko_cond_free(ko_cond *c) { return c ? ks_obj_free(((ks_obj *)c)->core, c) : KO_EINVAL; }

int ko_cond_wait(ko_cond *c, ko_mutex *m, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(c, &me);
  if (err) return err;
  return finish_op(me, ks_cond_wait(me->s->core, me->kt, (ks_cond *)c, (ks_mutex *)m, now_us(), to_us(timeout_ms)));
}

int ko_cond_signal(ko_cond *c) {
  if (!c) return KO_EINVAL;
  ko_sched *s = SCHED_OF(c);
  int n = (int)ks_cond_signal(s->core, (ks_cond *)c);
  update(s);
  return n;
}

int ko_cond_broadcast(ko_cond *c) {
  if (!c) return KO_EINVAL;
  ko_sched *s = SCHED_OF(c);
  int n = (int)ks_cond_broadcast(s->core, (ks_cond *)c);
  update(s);
  return n;
}

int ko_sem_new(ko_sched *s, ko_sem **out, int64_t count) {
  if (!s || !out || count < 0) return KO_EINVAL;
  *out = (ko_sem *)ks_sem_new(s->core, count);
  return *out ? KO_OK : KO_ENOMEM;
}

int ko_sem_free(ko_sem *sem) { return sem ? ks_obj_free(((ks_obj *)sem)->core, sem) : KO_EINVAL; }

int ko_sem_acquire(ko_sem *sem, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(sem, &me);
  if (err) return err;
  return finish_op(me, ks_sem_acquire(me->s->core, me->kt, (ks_sem *)sem, now_us(), to_us(timeout_ms)));
}

int ko_sem_try_acquire(ko_sem *sem) {
  if (!sem) return KO_EINVAL;
  return ks_sem_try_acquire(((ks_obj *)sem)->core, (ks_sem *)sem);
}

int ko_sem_release(ko_sem *sem, int64_t n) {
  if (!sem) return KO_EINVAL;
  ko_sched *s = SCHED_OF(sem);
  int r = ks_sem_release(s->core, (ks_sem *)sem, n);
  update(s);
  return r;
}

int ko_wg_new(ko_sched *s, ko_wg **out) {
  if (!s || !out) return KO_EINVAL;
  *out = (ko_wg *)ks_wg_new(s->core);
  return *out ? KO_OK : KO_ENOMEM;
}

int ko_wg_free(ko_wg *wg) { return wg ? ks_obj_free(((ks_obj *)wg)->core, wg) : KO_EINVAL; }

int ko_wg_add(ko_wg *wg, int64_t delta) {
  if (!wg) return KO_EINVAL;
  ko_sched *s = SCHED_OF(wg);
  int r = ks_wg_add(s->core, (ks_wg *)wg, delta);
  update(s);
  return r;
}

int ko_wg_done(ko_wg *wg) { return ko_wg_add(wg, -1); }

int ko_wg_wait(ko_wg *wg, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(wg, &me);
  if (err) return err;
  return finish_op(me, ks_wg_wait(me->s->core, me->kt, (ks_wg *)wg, now_us(), to_us(timeout_ms)));
}
