/*
 * compute.c - compute sections (lthread's compute schedulers): between
 * ko_compute_begin() and ko_compute_end() a task runs on a compute thread,
 * so CPU work or a blocking call stalls no other task.
 *
 * The way out: ko_compute_begin() marks the task LEAVING and yields to the
 * pass that runs it; the pass (on the loop thread) queues the task for the
 * compute threads; one of them resumes its coroutine, which so continues
 * inside ko_compute_begin() on that thread. The way back: ko_compute_end()
 * yields to that compute thread, which puts the task on its scheduler's
 * `back` list and wakes the loop through a uv_async; the loop puts it on
 * the run queue, and the next pass resumes it on the loop thread.
 *
 * To the core the task stays RUNNING throughout: a cancel is kept pending
 * and delivered by ko_compute_end() (or the next blocking call).
 *
 * One pool of compute threads serves every scheduler of the process.
 * Threads start on demand, up to a limit (the CPUs), and one that has been
 * idle for a while (60 s, lthread's figure) exits.
 */
#include "driver.h"

#include <stdlib.h>

#ifndef _WIN32
#include <pthread.h>
#endif

/* A compute thread only resumes coroutines: their frames are on the
 * coroutines' own stacks. */
#define COMPUTE_THREAD_STACK (256 * 1024)

static struct {
  uv_once_t once;
  uv_mutex_t lock;
  uv_cond_t work;      /* a task was queued, or the limits changed */
  ko_task *head, *tail;
  unsigned queued;
  unsigned threads;    /* alive */
  unsigned idle;       /* waiting for work */
  unsigned max;        /* 0: the number of CPUs */
  uint64_t idle_ns;
} pool = {UV_ONCE_INIT};

static void pool_init(void) {
  uv_mutex_init(&pool.lock);
  uv_cond_init(&pool.work);
  pool.idle_ns = (uint64_t)60 * 1000 * 1000 * 1000;
}

static unsigned pool_max(void) {
  unsigned n = pool.max ? pool.max : uv_available_parallelism();
  return n ? n : 1;
}

/* On the compute thread: t's section ended (or its body returned). */
static void hand_back(ko_task *t) {
  ko_sched *s = t->s;
  /* The send happens under the lock: the loop takes t (and may then free
   * the scheduler) only after the lock is released. */
  uv_mutex_lock(&s->back_lock);
  t->qnext = s->back;
  s->back = t;
  uv_async_send(&s->h->computed);
  uv_mutex_unlock(&s->back_lock);
}

static void compute_thread(void *arg) {
  (void)arg;
  uv_mutex_lock(&pool.lock);
  for (;;) {
    while (!pool.head) {
      pool.idle++;
      int r = uv_cond_timedwait(&pool.work, &pool.lock, pool.idle_ns);
      pool.idle--;
      if (r == UV_ETIMEDOUT && !pool.head) {
        pool.threads--;
        uv_mutex_unlock(&pool.lock);
        return;
      }
    }
    ko_task *t = pool.head;
    pool.head = t->qnext;
    if (!pool.head) pool.tail = NULL;
    pool.queued--;
    uv_mutex_unlock(&pool.lock);

    ko_resume(t->co, NULL, NULL); /* until ko_compute_end(), or its body returns */
    drv_set_task_here(NULL);
    hand_back(t);

    uv_mutex_lock(&pool.lock);
  }
}

/* With pool.lock held: one more thread, unless at the limit. */
static void pool_grow(void) {
  if (pool.threads >= pool_max()) return;
  uv_thread_t tid;
  uv_thread_options_t o = {UV_THREAD_HAS_STACK_SIZE, COMPUTE_THREAD_STACK};
  if (uv_thread_create_ex(&tid, &o, compute_thread, NULL) != 0) return; /* the others will do */
#ifdef _WIN32
  CloseHandle(tid);
#else
  pthread_detach(tid);
#endif
  pool.threads++;
}

void compute_hand_over(ko_task *t) {
  ko_sched *s = t->s;
  t->where = DRV_AWAY;
  if (s->computing++ == 0) uv_ref((uv_handle_t *)&s->h->computed); /* keeps ko_sched_run() going */
  uv_once(&pool.once, pool_init);
  uv_mutex_lock(&pool.lock);
  t->qnext = NULL;
  if (pool.tail) pool.tail->qnext = t;
  else pool.head = t;
  pool.tail = t;
  pool.queued++;
  if (pool.queued > pool.idle) pool_grow();
  if (pool.threads == 0) { /* not even one could start: t stays home */
    pool.head = pool.tail = NULL; /* t alone: earlier ones met the same */
    pool.queued = 0;
    uv_mutex_unlock(&pool.lock);
    t->where = DRV_HOME;
    if (--s->computing == 0) uv_unref((uv_handle_t *)&s->h->computed);
    t->back_status = KO_ENOMEM;
    ks_yield(s->core, t->kt); /* no cancel can be pending: it was just checked */
    return;
  }
  uv_cond_signal(&pool.work);
  uv_mutex_unlock(&pool.lock);
}

/* On the loop thread: the tasks back from compute threads. */
static void on_computed(uv_async_t *a) {
  ko_sched *s = ((drv_handles *)a->data)->s;
  uv_mutex_lock(&s->back_lock);
  ko_task *list = s->back;
  s->back = NULL;
  uv_mutex_unlock(&s->back_lock);
  while (list) {
    ko_task *t = list;
    list = t->qnext;
    t->qnext = NULL;
    t->where = DRV_HOME;
    if (--s->computing == 0) uv_unref((uv_handle_t *)&s->h->computed);
    if (ko_status(t->co) == KO_DONE) { /* its body returned inside the section */
      drv_finish(s, t);
      continue;
    }
    /* Queued to run; a cancel that came meanwhile is what ko_compute_end()
     * returns (and, consumed, ks_yield queues it the second time). */
    int r = ks_yield(s->core, t->kt);
    if (r == KO_ECANCELED) {
      t->back_status = KO_ECANCELED;
      ks_yield(s->core, t->kt);
    }
  }
  drv_update(s);
}

void compute_sched_init(ko_sched *s) {
  uv_mutex_init(&s->back_lock);
  uv_async_init(s->loop, &s->h->computed, on_computed);
  s->h->computed.data = s->h;
  uv_unref((uv_handle_t *)&s->h->computed);
  s->h->open++;
}

void compute_sched_close(ko_sched *s) {
  uv_mutex_lock(&s->back_lock); /* a compute thread's last hand_back has let go */
  uv_mutex_unlock(&s->back_lock);
  uv_mutex_destroy(&s->back_lock);
}

/* ------------------------------------------------------------------ API */

int ko_compute_begin(void) {
  ko_task *t = drv_task_here();
  if (!t || !t->co || ko_current() != t->co) return KO_ENOTCORO;
  if (t->where != DRV_HOME) return KO_EBUSY;
  int r = ks_check_cancel(t->core, t->kt);
  if (r) return r;
  t->back_status = KO_OK;
  t->where = DRV_LEAVING;
  ko_yield(t);         /* the pass hands us over; we wake on a compute thread */
  drv_set_task_here(t); /* (or at home, with KO_ENOMEM) */
  return t->back_status; /* KO_ENOMEM: no compute thread could start, still home */
}

int ko_compute_end(void) {
  ko_task *t = drv_task_here();
  if (!t || !t->co || ko_current() != t->co) return KO_ENOTCORO;
  if (t->where != DRV_AWAY) return KO_EINVAL;
  ko_yield(NULL);      /* to the compute thread, which hands us back */
  drv_set_task_here(t);
  return t->back_status;
}

int ko_compute_limits(unsigned max_threads, int64_t idle_ms) {
  if (idle_ms < 0) return KO_EINVAL;
  uv_once(&pool.once, pool_init);
  uv_mutex_lock(&pool.lock);
  pool.max = max_threads;
  pool.idle_ns = (uint64_t)idle_ms * 1000 * 1000;
  uv_cond_broadcast(&pool.work); /* idle threads wait again with the new figure */
  uv_mutex_unlock(&pool.lock);
  return KO_OK;
}

int ko_compute_threads(void) {
  uv_once(&pool.once, pool_init);
  uv_mutex_lock(&pool.lock);
  int n = (int)pool.threads;
  uv_mutex_unlock(&pool.lock);
  return n;
}
