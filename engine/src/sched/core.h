/*
 * core.h - the scheduler core: one state machine for the C and the JS API.
 *
 * The core decides who runs, who blocks and who wakes: a FIFO run queue, a
 * timer heap, wait queues for channels, mutexes, conditions, semaphores,
 * wait groups and joins, and select with a fair (random) choice among ready
 * cases. It never switches stacks and never reads a clock: a driver does
 * both. The C driver (uv_driver.c) runs ko_coro tasks on a libuv loop; the
 * JS driver (engine/node/sched_binding.cc + ts/scheduler.ts) runs JS
 * coroutines from the Node event loop.
 *
 * Protocol. A driver pops a task with ks_next() and runs it. The task calls
 * an operation (ks_chan_recv, ks_sleep, ...) naming itself; the operation
 * either completes at once (KO_OK or an error) or returns KS_BLOCK, in which
 * case the task must suspend back to its driver. When the task is popped
 * again, the outcome of its wait is in t->status (a ko_err, or KO_WOKEN),
 * t->fired (which select case) and t->value.
 *
 * Time is opaque to the core: drivers pass `now` in microseconds of any
 * monotonic clock, and timeouts in microseconds (negative: none).
 *
 * A "proxy" is a task without a stack: plain async code (a Promise in JS)
 * waits through it. It runs no body: when ks_next() pops it, the driver
 * settles whatever stood behind it.
 *
 * Values carried by channels are 64-bit words: a pointer in C, a slot number
 * in JS (the JS values themselves stay in JavaScript).
 */
#ifndef KO_SCHED_CORE_H
#define KO_SCHED_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "korutin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t ks_time;

/* Returned by an operation when the calling task must suspend; never a
 * wait's outcome (those are ko_err codes and KO_WOKEN: the sleep was ended
 * early by ks_wakeup()). */
#define KS_BLOCK 2

typedef enum ks_kind {
  KS_TASK = 1, KS_CHAN, KS_MUTEX, KS_COND, KS_SEM, KS_WG, KS_KIND_COUNT
} ks_kind;

/* The tables below are mirrored into ts/vocab.ts by scripts/gen-vocab.js.
 * A task's states: name, value, word (ko_task_state(), Task.state). */
#define KS_STATE_MAP(XX) XX(READY, 0, "ready") XX(RUNNING, 1, "running") XX(BLOCKED, 2, "blocked") XX(DONE, 3, "done")
/* How a task ended: name, value, the word for its state once done. */
#define KS_END_MAP(XX) XX(OK, 0, "done") XX(ERROR, 1, "failed") XX(CANCELLED, 2, "cancelled")
/* Kinds of external waits (for descriptions): name, value. */
#define KS_EXT_MAP(XX) XX(AWAIT, 1) XX(FD, 2) XX(OTHER, 3)
/* Select case operations: name, value. */
#define KS_OP_MAP(XX) XX(RECV, 1) XX(SEND, 2) XX(AFTER, 3)

typedef enum ks_state {
#define KS_XX(name, value, word) KS_##name = value,
  KS_STATE_MAP(KS_XX)
#undef KS_XX
} ks_state;

typedef enum ks_end {
#define KS_XX(name, value, word) KS_END_##name = value,
  KS_END_MAP(KS_XX)
#undef KS_XX
} ks_end;

/* What a blocked task waits for. */
typedef enum ks_wait {
  KS_W_NONE = 0, KS_W_YIELD, KS_W_SLEEP, KS_W_JOIN, KS_W_SEND, KS_W_RECV, KS_W_SELECT,
  KS_W_LOCK, KS_W_RELOCK, KS_W_COND, KS_W_SEM, KS_W_WG, KS_W_EXTERNAL
} ks_wait;

typedef enum ks_ext {
#define KS_XX(name, value) KS_EXT_##name = value,
  KS_EXT_MAP(KS_XX)
#undef KS_XX
} ks_ext;

typedef enum ks_op {
#define KS_XX(name, value) KS_OP_##name = value,
  KS_OP_MAP(KS_XX)
#undef KS_XX
} ks_op;

typedef struct ks_core ks_core;
typedef struct ks_task ks_task;
typedef struct ks_chan ks_chan;
typedef struct ks_mutex ks_mutex;
typedef struct ks_cond ks_cond;
typedef struct ks_sem ks_sem;
typedef struct ks_wg ks_wg;

typedef struct ks_node { struct ks_node *prev, *next; } ks_node;

/* Every object has a small integer handle (for the JS binding) and a serial
 * number per kind (for people: "channel#3"). */
typedef struct ks_obj {
  ks_core *core;
  uint32_t handle;
  uint8_t kind;
  uint64_t serial;
} ks_obj;

/* A task's presence in one wait queue. */
typedef struct ks_waiter {
  ks_node link;
  ks_task *task;
  ks_obj *obj;
  uint8_t op;      /* ks_op for channels; KS_W_* otherwise */
  int32_t index;   /* select case index */
  uint64_t value;  /* send: the value */
} ks_waiter;

struct ks_task {
  ks_obj o;
  uint8_t state;       /* ks_state */
  uint8_t wait;        /* ks_wait while blocked */
  uint8_t end;         /* ks_end once done */
  uint8_t proxy;
  uint8_t started;     /* popped at least once */
  uint8_t cancel_pending;
  uint8_t cancelled;   /* cancel() was called at least once */
  uint8_t released;    /* its owner let go; freed once done */
  uint32_t seq;        /* bumped at every wake: stale external wakes are ignored */
  ks_node run;         /* run queue */
  /* the driver's: its record of the task, and what it switches to for it
   * (one load from the run queue's node: on the path of every switch) */
  void *user;
  void *coro;
  ks_node live;        /* list of tasks not done */
  /* the current wait */
  ks_waiter one;
  ks_waiter *w;        /* &one, or wheap for a select */
  ks_waiter *wheap;
  uint32_t nw, wcap;
  ks_obj *wait_obj;
  ks_time since, deadline; /* deadline: of the current or last timed wait */
  uint64_t tseq;
  uint32_t heap_pos;   /* UINT32_MAX: not in the timer heap */
  int32_t timeout_case;
  int32_t ext_kind;
  int64_t ext_arg;
  ks_mutex *relock;    /* cond wait: the mutex to take back */
  int pending;         /* status delivered once the mutex is back */
  /* the outcome of the last wait */
  int status;
  int32_t fired;
  uint64_t value;
  /* done */
  ks_node joiners;
  uint64_t result;
};

struct ks_chan {
  ks_obj o;
  uint32_t cap, len, head;
  int closed;
  uint64_t *buf;
  ks_node recvq, sendq;
};

struct ks_mutex { ks_obj o; ks_task *owner; ks_node q; };
struct ks_cond { ks_obj o; ks_node q; };
struct ks_sem { ks_obj o; int64_t count; ks_node q; };
struct ks_wg { ks_obj o; int64_t count; ks_node q; };

/* One case of a select. */
typedef struct ks_case {
  uint8_t op;      /* ks_op */
  ks_chan *ch;     /* RECV, SEND */
  uint64_t value;  /* SEND: the value; AFTER: the delay in microseconds */
} ks_case;

/* ------------------------------------------------------------------ core */
ks_core *ks_core_new(uint64_t seed);
/* Frees the core and every object still in it. */
void ks_core_free(ks_core *c);
/* A pointer the driver keeps in the core. */
void *ks_core_user(const ks_core *c);
void ks_core_set_user(ks_core *c, void *user);
/* Tasks ready to run. */
uint32_t ks_ready_count(const ks_core *c);
/* Tasks not done (proxies excluded). */
uint32_t ks_live_count(const ks_core *c);
/* An object by handle (NULL when the handle is free or of another kind). */
void *ks_lookup(const ks_core *c, uint32_t handle, ks_kind kind);
/* Iterates over tasks not done: pass NULL first. */
ks_task *ks_live_next(const ks_core *c, ks_task *prev);

/* ----------------------------------------------------------------- tasks */
/* A new task, ready to run (at the tail of the run queue). */
ks_task *ks_spawn(ks_core *c);
/* A proxy in the running state: it can call operations at once. */
ks_task *ks_proxy(ks_core *c);
/* The next task to run (now RUNNING), or NULL. */
ks_task *ks_next(ks_core *c);
/* Puts a task ks_next() returned back at the head of the run queue, its
 * wait's outcome kept (a driver that popped it early and cannot run it). */
void ks_unnext(ks_core *c, ks_task *t);
/* The task's body has ended: wakes its joiners. Frees it if released. */
void ks_exit(ks_core *c, ks_task *t, ks_end end, uint64_t result);
/* The owner lets go of the task; it is freed now if done (or a proxy), else
 * when it ends. */
void ks_release(ks_core *c, ks_task *t);
/* Non-zero while some task (or proxy) waits in ks_join() for t. */
int ks_has_joiners(const ks_task *t);
/* Cancels: a blocked task wakes with KO_ECANCELED; a ready or running one
 * gets it at its next blocking operation. KO_EDONE when already done. */
int ks_cancel(ks_core *c, ks_task *t);
/* Ends a sleep early (the sleep returns KO_WOKEN); KO_EINVAL if not asleep. */
int ks_wakeup(ks_core *c, ks_task *t);
/* A description of what the task waits on ("sleep 50ms", "recv channel#3",
 * "join task#2", ...), or of its state; returns the length (snprintf-like). */
int ks_describe(const ks_core *c, const ks_task *t, ks_time now, char *buf, size_t size);
const char *ks_state_name(const ks_task *t);

/* --------------------------------------------- blocking task operations */
/* Every one returns KS_BLOCK (suspend; the outcome is in t->status) or a
 * final status. A pending cancel makes it return KO_ECANCELED at once. */
int ks_yield(ks_core *c, ks_task *t);
int ks_sleep(ks_core *c, ks_task *t, ks_time now, int64_t dur);
int ks_join(ks_core *c, ks_task *t, ks_task *target, ks_time now, int64_t timeout);
/* For what is not a wait but takes a task away from its driver for a while
 * (the C driver's compute sections): KO_OK, or KO_ECANCELED when a cancel
 * was pending (it is consumed), or KO_EINVAL when t is not running. */
int ks_check_cancel(ks_core *c, ks_task *t);
/* Waits for something the driver watches (a promise, a fd); the driver ends
 * it with ks_wake_external(..., t->seq as returned in *seq, ...). */
int ks_block_external(ks_core *c, ks_task *t, ks_time now, int64_t timeout, int kind, int64_t arg,
                      uint32_t *seq);
/* KO_EINVAL when the wait it names has already ended. */
int ks_wake_external(ks_core *c, ks_task *t, uint32_t seq, int status, uint64_t value);

/* ---------------------------------------------------------------- timers */
/* Wakes every task whose deadline is <= now; returns how many. */
uint32_t ks_expire(ks_core *c, ks_time now);
/* The earliest deadline, or UINT64_MAX when none. */
ks_time ks_next_deadline(const ks_core *c);
/* Waits with a deadline (0: no timer to arm or expire). */
uint32_t ks_timed_count(const ks_core *c);

/* ---------------------------------------------------------------- passes */
/* Drivers run ready tasks in passes, and who runs next is decided here, for
 * every driver (engine/src/sched/uv_driver.c and engine/node/sched_binding.cc,
 * both with ks_pass_run): a pass pops ready tasks until none is ready or it
 * has run KS_PASS_BUDGET_US, so that the event loop gets its turn. It expires timers when it begins (if
 * any is pending) and, with the budget, every KS_PASS_CHECK pops; a pass
 * that began with no timer pending reads the clock first there (most
 * passes run a task or two), and its budget counts from then. */
#define KS_PASS_BUDGET_US 10000
#define KS_PASS_CHECK 64
/* The driver's clock, in the microseconds of its deadlines. */
void ks_core_set_clock(ks_core *c, ks_time (*now)(void *arg), void *arg);
/* The next task of the pass, popped as by ks_next(). `begin`: the first pop
 * of a new pass (so is any pop while no pass is under way). NULL when none
 * is ready or the pass's time is up; once it is up, NULL until a new pass
 * begins. The task a blocking task hands the turn to comes from here too. */
ks_task *ks_pass_next(ks_core *c, int begin);
/* A pass, the one loop of every driver: hands each task ks_pass_next()
 * pops to `run`, until none is ready or the pass's time is up (returns 0),
 * or until `run` returns non-zero, which it returns: the driver has to do
 * something itself first, and a later call goes on with the same pass.
 * `begin`: this call begins the pass. */
typedef int (*ks_run_fn)(void *arg, ks_task *t);
int ks_pass_run(ks_core *c, int begin, ks_run_fn run, void *arg);

/* -------------------------------------------------------------- channels */
ks_chan *ks_chan_new(ks_core *c, uint32_t cap);
/* KO_EBUSY if a task waits on it. Buffered values are dropped: take them
 * first with ks_chan_try_recv() when they own something. */
int ks_chan_free(ks_core *c, ks_chan *ch);
int ks_chan_send(ks_core *c, ks_task *t, ks_chan *ch, uint64_t v, ks_time now, int64_t timeout);
/* KO_OK with *v, KS_BLOCK, KO_ECLOSED (closed and drained), ... */
int ks_chan_recv(ks_core *c, ks_task *t, ks_chan *ch, uint64_t *v, ks_time now, int64_t timeout);
int ks_chan_try_send(ks_core *c, ks_chan *ch, uint64_t v);
int ks_chan_try_recv(ks_core *c, ks_chan *ch, uint64_t *v);
int ks_chan_close(ks_core *c, ks_chan *ch);
/* Picks one ready case at random; when none is ready, blocks on all of
 * them (unless nonblock: KO_EAGAIN). An AFTER case fires when its delay
 * has passed; `timeout` (if >= 0) ends the wait with KO_ETIMEDOUT. Returns
 * KO_OK or KO_ECLOSED (a recv case saw the end, or a send case found the
 * channel closed) with *fired and *value set, or KS_BLOCK. */
int ks_select(ks_core *c, ks_task *t, const ks_case *cases, uint32_t n, ks_time now, int64_t timeout,
              int nonblock, int32_t *fired, uint64_t *value);

/* --------------------------------------------------------------- sync */
ks_mutex *ks_mutex_new(ks_core *c);
int ks_mutex_lock(ks_core *c, ks_task *t, ks_mutex *m, ks_time now, int64_t timeout);
int ks_mutex_trylock(ks_core *c, ks_task *t, ks_mutex *m);
/* KO_EINVAL unless t holds it. Hands it to the first waiter. */
int ks_mutex_unlock(ks_core *c, ks_task *t, ks_mutex *m);

ks_cond *ks_cond_new(ks_core *c);
/* Waits for a signal (KO_OK) or the timeout (KO_ETIMEDOUT). With a mutex
 * (which t must hold), it is released while waiting and held again when the
 * wait returns, whatever the outcome. */
int ks_cond_wait(ks_core *c, ks_task *t, ks_cond *cv, ks_mutex *m, ks_time now, int64_t timeout);
/* Wake one / every waiter; return how many were woken. */
uint32_t ks_cond_signal(ks_core *c, ks_cond *cv);
uint32_t ks_cond_broadcast(ks_core *c, ks_cond *cv);

ks_sem *ks_sem_new(ks_core *c, int64_t count);
int ks_sem_acquire(ks_core *c, ks_task *t, ks_sem *s, ks_time now, int64_t timeout);
int ks_sem_try_acquire(ks_core *c, ks_sem *s);
int ks_sem_release(ks_core *c, ks_sem *s, int64_t n);

ks_wg *ks_wg_new(ks_core *c);
/* KO_EINVAL when the counter would go negative. */
int ks_wg_add(ks_core *c, ks_wg *wg, int64_t delta);
int ks_wg_wait(ks_core *c, ks_task *t, ks_wg *wg, ks_time now, int64_t timeout);

/* Frees a mutex, cond, semaphore or wait group; KO_EBUSY while waited on. */
int ks_obj_free(ks_core *c, void *obj);

#ifdef __cplusplus
}
#endif
#endif
