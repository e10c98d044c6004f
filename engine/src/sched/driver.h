/*
 * driver.h - what the C driver's two files share: the scheduler and task
 * records, and the steps both take. uv_driver.c runs tasks from a libuv
 * loop (the loop, tasks, waits, objects); compute.c moves a task's
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
  int in_pass;
  int transfer;        /* tasks switch to each other (ko__can_transfer) */
  ks_time pass_start;  /* the running pass: when it began, */
  unsigned pass_ops;   /* how many tasks it popped, */
  int pass_over;       /* and whether its time is up */
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

/* The task whose coroutine runs on this OS thread, or NULL. Out of line, so
 * that a coroutine that changed OS thread across a switch reads its new
 * thread's value and not one the compiler kept from before. */
ko_task *drv_task_here(void);
void drv_set_task_here(ko_task *t);

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
