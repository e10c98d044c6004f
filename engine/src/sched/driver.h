/*
 * driver.h - what the C driver's files share: the scheduler and task
 * records, and the steps they all take. uv_driver.c runs tasks from a libuv
 * loop (passes, the scheduler, tasks); wait_fd.c waits for descriptors;
 * objects.c has channels, select and sync; compute.c moves a task's
 * coroutine to a compute thread and back (ko_compute_begin/end).
 */
#ifndef KO_SCHED_DRIVER_H
#define KO_SCHED_DRIVER_H

#include "korutin.h"
#include "core.h"

#include <uv.h>

/* The scheduler's libuv handles; freed when the last one has closed. */
typedef struct drv_handles {
  uv_idle_t idle;       /* active while tasks are ready */
  uv_timer_t timer;     /* armed for the earliest deadline */
  uv_async_t computed;  /* compute threads hand tasks back through it */
  int open;
  struct ko_sched *s;
} drv_handles;

struct ko_sched {
  ks_core *core;
  uv_loop_t *loop;
  drv_handles *h;
  ko_options copt;
  ks_time armed; /* the deadline the timer is set for; UINT64_MAX: none */
  int in_pass;         /* run_pass() is under way (the core keeps the pass itself) */
  int transfer;        /* tasks switch to each other (ko__can_transfer) */
  ko_task *tasks; /* every task not freed yet */
  /* compute sections (compute.c) */
  unsigned computing;   /* tasks away on compute threads (loop thread only) */
  uv_mutex_t back_lock; /* guards `back` */
  ko_task *back;        /* tasks whose section ended, for the loop to take */
};

/* Where a task is. */
typedef enum drv_where {
  DRV_HOME = 0,     /* on its scheduler */
  DRV_LEAVING = 1,  /* ko_compute_begin() yielded: the pass hands it over */
  DRV_AWAY = 2      /* in a compute section, on a compute thread */
} drv_where;

struct ko_task {
  ks_task *kt;
  ks_core *core; /* s->core, a load fewer on every task operation */
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
  /* compute sections */
  int where;         /* drv_where */
  int back_status;   /* what ko_compute_end() returns */
  ko_task *qnext;    /* in the compute queue, then in s->back */
};

/* Initial-exec TLS where there is ELF (no __tls_get_addr call in a shared
 * library), as in coro.c. */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define DRV_TLS __thread __attribute__((tls_model("initial-exec")))
#else
#define DRV_TLS _Thread_local
#endif
extern DRV_TLS ko_task *drv_tls_task;

/* The task whose coroutine runs on this OS thread, or NULL. Out of line, so
 * that a coroutine that changed OS thread across a switch reads its new
 * thread's value and not one the compiler kept from before. */
ko_task *drv_task_here(void);
void drv_set_task_here(ko_task *t);

/* Refuses a scheduler call made from a compute section. (At the top of a
 * call, before any switch, drv_tls_task can be read directly.) */
#define NOT_IN_COMPUTE()                                                     \
  do {                                                                       \
    if (drv_tls_task && drv_tls_task->where != DRV_HOME) return KO_ENOTCORO; \
  } while (0)

static inline ks_time drv_now(void) { return (ks_time)(uv_hrtime() / 1000); }
/* `now` for a wait with this timeout: the core reads it only for a
 * deadline, so a wait without one skips the clock (a read costs ~25 ns). */
static inline ks_time drv_now_for(int64_t timeout_ms) { return timeout_ms < 0 ? 0 : drv_now(); }
static inline int64_t drv_us(int64_t ms) { return ms < 0 ? -1 : ms * 1000; }

/* The calling task, on its scheduler (not in a compute section), or NULL. */
static inline ko_task *drv_self(void) {
  ko_task *t = drv_tls_task;
  return t && t->where == DRV_HOME && t->co && ko_current() == t->co ? t : NULL;
}

/* Suspends the calling task until the core wakes it; returns the outcome. */
int drv_suspend(ko_task *t);
static inline int drv_finish_op(ko_task *t, int r) { return r == KS_BLOCK ? drv_suspend(t) : r; }

/* wait_fd.c: ends the fd wait of a task being freed. */
struct fdwait;
void drv_fdwait_abandon(struct fdwait *w);

/* Keeps the idle handle and the timer in step with the core. */
void drv_update(ko_sched *s);
/* A task whose body returned: ends it in the core, frees it if detached. */
void drv_finish(ko_sched *s, ko_task *t);

/* compute.c */
/* Sets up (the `computed` handle among them) and frees (once the handles
 * are closed) a scheduler's side of compute sections. */
void compute_sched_init(ko_sched *s);
void compute_sched_close(ko_sched *s);
/* From the pass, on the loop thread: t yielded in ko_compute_begin(). */
void compute_hand_over(ko_task *t);

#endif
