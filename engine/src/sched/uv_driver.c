/*
 * uv_driver.c - the C driver of the scheduler core: tasks are ko_coro
 * coroutines resumed from a libuv loop.
 *
 * A pass pops ready tasks from the core (which decides who runs next and
 * when the pass has had its time: ks_pass_next) and resumes each until it
 * blocks, yields or ends. A uv_idle handle is active while tasks are ready (so the
 * loop does not sleep in poll), a uv_timer is armed for the earliest
 * deadline, and compute threads hand tasks back through a uv_async. The
 * clock is uv_hrtime(), in microseconds for the core. The rest of the C
 * API is in wait_fd.c (fd waits), objects.c (channels, select, sync) and
 * compute.c (compute sections), on what driver.h shares.
 */
#include "driver.h"
#include "../transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* The task running on this OS thread (set inside the coroutine, so it also
 * holds on backends that give each coroutine a thread of its own). */
DRV_TLS ko_task *drv_tls_task;

#if defined(__GNUC__)
__attribute__((noinline))
#endif
ko_task *drv_task_here(void) {
  return drv_tls_task;
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
void drv_set_task_here(ko_task *t) {
  drv_tls_task = t;
}

static ks_task *pass_pop(ko_sched *s, ks_core *core);

/* Task to task where the backend allows (ko__transfer): the next ready
 * task of the pass runs at once, with one switch instead of two through
 * the pass. Otherwise, and when none is ready, back to the pass. A task
 * yields its own record, so that the pass knows who came back. A backend
 * that transfers keeps every task on the loop's OS thread (compute threads
 * resume only tasks inside ko_compute_begin), so the task can set its TLS
 * inline; on one that gives each coroutine its own thread the task must
 * read the thread it woke on, out of line. Never inlined: every task then
 * transfers from one call site, which lets the switch leave through a
 * predicted `ret` (see ko_asm_jump). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
int drv_suspend(ko_task *t) {
  ko_sched *s = t->s;
  if (s->transfer) {
    ks_task *next = pass_pop(s, t->core);
    if (!next) ko_yield(t);
    else if (next != t->kt) ko__transfer((ko_coro *)next->coro, NULL);
    /* (next is t: the task is its own successor; it just goes on) */
    drv_tls_task = t;
  } else {
    ko_yield(t);
    drv_set_task_here(t);
  }
  return t->kt->status;
}

/* ------------------------------------------------------------- the loop */

static void run_pass(ko_sched *s);

static ks_time core_clock(void *arg) {
  (void)arg;
  return drv_now();
}

static void on_idle(uv_idle_t *h) { run_pass(((drv_handles *)h->data)->s); }

static void on_timer(uv_timer_t *h) {
  ko_sched *s = ((drv_handles *)h->data)->s;
  s->armed = UINT64_MAX;
  run_pass(s);
}

void drv_update(ko_sched *s) {
  if (s->in_pass || !s->h) return;
  if (ks_ready_count(s->core)) uv_idle_start(&s->h->idle, on_idle);
  else uv_idle_stop(&s->h->idle);
  ks_time d = ks_next_deadline(s->core);
  if (d == UINT64_MAX) {
    uv_timer_stop(&s->h->timer);
    s->armed = UINT64_MAX;
  } else if (d != s->armed) {
    ks_time now = drv_now();
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

static void task_free(ko_task *t) {
  if (t->fw) drv_fdwait_abandon(t->fw); /* freed while waiting on a fd */
  task_unlist(t->s, t);
  if (t->co) ko_destroy(t->co);
  free(t->name);
  free(t);
}

void drv_finish(ko_sched *s, ko_task *t) {
  ks_task *kt = t->kt;
  if (t->co) {
    ko_destroy(t->co);
    t->co = NULL;
  }
  int detached = t->detached;
  ks_exit(s->core, kt, kt->cancelled ? KS_END_CANCELLED : KS_END_OK, (uint64_t)(uintptr_t)t->result);
  if (detached) task_free(t); /* the core freed kt (it was released) */
}

/* Task `t`, popped by the core to run: 0 when it was cancelled before it
 * ever ran, and is ended here instead. */
static int may_run(ko_sched *s, ko_task *t) {
  if (t->started) return 1;
  t->started = 1;
  if (t->kt->status != KO_ECANCELED) return 1;
  drv_finish(s, t); /* it never runs */
  return 0;
}

/* The next task of the pass for a task that suspends (the core decides:
 * ks_pass_next), or NULL when none is ready or the pass has used its time.
 * (The chain of loads from the running task to the next one's stack
 * pointer is what a task-to-task switch waits on: task -> core -> run
 * queue -> next -> its coroutine; korutin-sched-bench's yield, 11.3 ->
 * 8.7 ns, when `core` and `coro` took one load each out of it.) */
static ks_task *pass_pop(ko_sched *s, ks_core *core) {
  ks_task *kt;
  while ((kt = ks_pass_next(core, 0)))
    if (may_run(s, (ko_task *)kt->user)) return kt;
  return NULL;
}

/* The pass runs `kt` until it (or a task it passed the CPU on to) comes back. */
static int run_one(void *arg, ks_task *kt) {
  ko_sched *s = (ko_sched *)arg;
  ko_task *t = (ko_task *)kt->user;
  if (!may_run(s, t)) return 0;
  void *back = t;
  ko_resume(t->co, NULL, &back);
  drv_tls_task = NULL;
  t = (ko_task *)back; /* maybe another: tasks pass the CPU on among themselves */
  if (t->where == DRV_LEAVING) compute_hand_over(t);
  else if (ko_status(t->co) == KO_DONE) drv_finish(s, t);
  return 0;
}

static void run_pass(ko_sched *s) {
  if (s->in_pass) return;
  s->in_pass = 1;
  ks_pass_run(s->core, 1, run_one, s);
  s->in_pass = 0;
  drv_update(s);
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
  drv_handles *h = (drv_handles *)calloc(1, sizeof *h);
  ks_core *core = ks_core_new(opt->seed);
  if (!s || !h || !core) {
    free(s);
    free(h);
    ks_core_free(core);
    return KO_ENOMEM;
  }
  s->core = core;
  ks_core_set_user(core, s);
  ks_core_set_clock(core, core_clock, NULL);
  s->loop = loop;
  s->h = h;
  s->armed = UINT64_MAX;
  s->copt.backend = be;
  s->copt.stack_size = opt->stack_size;
  s->transfer = ko__can_transfer(be);
  h->s = s;
  uv_idle_init(loop, &h->idle);
  uv_timer_init(loop, &h->timer);
  h->idle.data = h->timer.data = h;
  h->open = 2;
  compute_sched_init(s);
  *out = s;
  return KO_OK;
}

int ko_sched_run(ko_sched *s) {
  if (!s) return KO_EINVAL;
  NOT_IN_COMPUTE();
  if (drv_self()) return KO_EBUSY;
  drv_update(s);
  uv_run(s->loop, UV_RUN_DEFAULT);
  return (int)ks_live_count(s->core);
}

static void on_close(uv_handle_t *hd) {
  drv_handles *h = (drv_handles *)hd->data;
  if (--h->open == 0) free(h);
}

int ko_sched_free(ko_sched *s) {
  if (!s) return KO_EINVAL;
  NOT_IN_COMPUTE();
  if (drv_self() || s->in_pass || s->computing) return KO_EBUSY;
  while (s->tasks) task_free(s->tasks);
  ks_core_free(s->core);
  uv_close((uv_handle_t *)&s->h->idle, on_close);
  uv_close((uv_handle_t *)&s->h->timer, on_close);
  uv_close((uv_handle_t *)&s->h->computed, on_close);
  compute_sched_close(s);
  free(s);
  return KO_OK;
}

ko_sched *ko_sched_current(void) {
  ko_task *t = drv_self();
  return t ? t->s : NULL;
}

/* ----------------------------------------------------------------- tasks */

static void *entry(ko_coro *co, void *arg) {
  (void)co;
  ko_task *t = (ko_task *)arg;
  drv_tls_task = t;
  t->result = t->fn(t->arg);
  return t; /* to the pass: who ended */
}

int ko_spawn(ko_sched *s, ko_task **out, ko_task_fn fn, void *arg, const char *name) {
  NOT_IN_COMPUTE();
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
  t->kt->coro = t->co;
  t->core = s->core;
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
  drv_update(s);
  return KO_OK;
}

/* Also in a compute section: the task stays the caller's own. */
ko_task *ko_task_current(void) {
  ko_task *t = drv_tls_task;
  return t && t->co && ko_current() == t->co ? t : NULL;
}
uint64_t ko_task_id(const ko_task *t) { return t->kt->o.serial; }
const char *ko_task_name(const ko_task *t) { return t->name ? t->name : ""; }
const char *ko_task_state(const ko_task *t) { return ks_state_name(t->kt); }
void *ko_task_data(const ko_task *t) { return t->data; }
uint64_t ko_task_deadline(const ko_task *t) { return t->kt->deadline == UINT64_MAX ? 0 : t->kt->deadline; }
void ko_task_set_data(ko_task *t, void *data) { t->data = data; }

int ko_task_describe(const ko_task *t, char *buf, size_t size) {
  if (t->where != DRV_HOME) return snprintf(buf, size, "compute");
  return ks_describe(t->core, t->kt, drv_now(), buf, size);
}

int ko_join(ko_task *t, int64_t timeout_ms, void **result) {
  NOT_IN_COMPUTE();
  if (!t || t->detached) return KO_EINVAL;
  ko_task *me = drv_self();
  if (t == me) return KO_EINVAL;
  if (t->kt->state != KS_DONE) {
    if (!me) return KO_ENOTCORO;
    if (me->s != t->s) return KO_EINVAL;
    if (ks_has_joiners(t->kt)) return KO_EBUSY; /* one joiner: it frees t */
    int r = drv_finish_op(me, ks_join(t->core, me->kt, t->kt, drv_now_for(timeout_ms), drv_us(timeout_ms)));
    if (r != KO_OK) return r;
  }
  int cancelled = t->kt->end == KS_END_CANCELLED;
  if (result) *result = t->result;
  ks_release(t->core, t->kt);
  task_free(t);
  return cancelled ? KO_ECANCELED : KO_OK;
}

int ko_detach(ko_task *t) {
  NOT_IN_COMPUTE();
  if (!t || t->detached) return KO_EINVAL;
  if (ks_has_joiners(t->kt)) return KO_EBUSY; /* its joiner will free it */
  t->detached = 1;
  int done = t->kt->state == KS_DONE;
  ks_release(t->core, t->kt);
  if (done) task_free(t);
  return KO_OK;
}

int ko_cancel(ko_task *t) {
  NOT_IN_COMPUTE();
  if (!t) return KO_EINVAL;
  int r = ks_cancel(t->core, t->kt);
  drv_update(t->s);
  return r;
}

int ko_sleep(int64_t ms) {
  ko_task *me;
  if (!(me = drv_self())) return KO_ENOTCORO;
  return drv_finish_op(me, ks_sleep(me->core, me->kt, drv_now(), ms < 0 ? 0 : ms * 1000));
}

int ko_wakeup(ko_task *t) {
  NOT_IN_COMPUTE();
  if (!t) return KO_EINVAL;
  int r = ks_wakeup(t->core, t->kt);
  drv_update(t->s);
  return r;
}

int ko_yield_now(void) {
  ko_task *me;
  if (!(me = drv_self())) return KO_ENOTCORO;
  return drv_finish_op(me, ks_yield(me->core, me->kt));
}

