/*
 * sched_sync.c - mutex, cond, semaphore, wait group: semantics, every
 * timeout, and cancel while blocked in each blocking call.
 */
#include "check.h"

#define V(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

static ko_mutex *M;
static int inside, max_inside, order[16], norder;

static void *locker(void *arg) {
  CHECK_EQ(ko_mutex_lock(M, KO_FOREVER), KO_OK);
  order[norder++] = (int)I(arg);
  inside++;
  if (inside > max_inside) max_inside = inside;
  ko_yield_now(); /* others run, but cannot get in */
  ko_sleep(1);
  inside--;
  CHECK_EQ(ko_mutex_unlock(M), KO_OK);
  return NULL;
}

static void *mutex_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_mutex_new(s, &M);
  inside = max_inside = norder = 0;
  CHECK_EQ(ko_mutex_unlock(M), KO_EINVAL); /* not held */
  CHECK_EQ(ko_mutex_lock(M, KO_FOREVER), KO_OK);
  CHECK_EQ(ko_mutex_lock(M, KO_FOREVER), KO_EBUSY); /* would wait for itself */
  CHECK_EQ(ko_mutex_trylock(M), KO_EBUSY);
  ko_task *t[4];
  for (int i = 0; i < 4; i++) ko_spawn(s, &t[i], locker, V(i), NULL);
  ko_yield_now(); /* all four queue up, in order */
  CHECK_EQ(ko_mutex_unlock(M), KO_OK);
  for (int i = 0; i < 4; i++) CHECK_EQ(ko_join(t[i], KO_FOREVER, NULL), KO_OK);
  CHECK_EQ(max_inside, 1);
  for (int i = 0; i < 4; i++) CHECK_EQ(order[i], i); /* FIFO hand-over */
  CHECK_EQ(ko_mutex_trylock(M), KO_OK);
  ko_mutex_unlock(M);
  ko_mutex_free(M);
  return NULL;
}

static void *hold_mutex(void *arg) {
  ko_mutex *m = (ko_mutex *)arg;
  ko_mutex_lock(m, KO_FOREVER);
  ko_sleep(20);
  ko_mutex_unlock(m);
  return NULL;
}

static void *mutex_timeout_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_mutex *m;
  ko_mutex_new(s, &m);
  ko_task *t;
  ko_spawn(s, &t, hold_mutex, m, NULL);
  ko_yield_now();
  CHECK_EQ(ko_mutex_trylock(m), KO_EAGAIN);
  CHECK_EQ(ko_mutex_lock(m, 2), KO_ETIMEDOUT);
  CHECK_EQ(ko_mutex_lock(m, KO_FOREVER), KO_OK);
  ko_mutex_unlock(m);
  ko_join(t, KO_FOREVER, NULL);
  ko_mutex_free(m);
  return NULL;
}

/* ---- cond */
static ko_cond *C;
static void *cond_waiter(void *arg) {
  int r = ko_cond_wait(C, NULL, KO_FOREVER);
  order[norder++] = (int)I(arg);
  return V(r);
}

static ko_mutex *CM;
static int shared_state;
static void *cond_mutex_waiter(void *arg) {
  (void)arg;
  CHECK_EQ(ko_mutex_lock(CM, KO_FOREVER), KO_OK);
  while (shared_state == 0) CHECK_EQ(ko_cond_wait(C, CM, KO_FOREVER), KO_OK);
  /* the mutex is held again here */
  CHECK_EQ(ko_mutex_trylock(CM), KO_EBUSY);
  shared_state++;
  ko_mutex_unlock(CM);
  return NULL;
}

static void *cond_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_cond_new(s, &C);
  norder = 0;
  CHECK_EQ(ko_cond_signal(C), 0);
  CHECK_EQ(ko_cond_wait(C, NULL, 3), KO_ETIMEDOUT); /* lthread: -2 on expiry */
  ko_task *t[3];
  for (int i = 0; i < 3; i++) ko_spawn(s, &t[i], cond_waiter, V(i), NULL);
  ko_yield_now();
  CHECK_EQ(ko_cond_signal(C), 1);
  ko_yield_now();
  CHECK_EQ(norder, 1);
  CHECK_EQ(order[0], 0); /* FIFO */
  CHECK_EQ(ko_cond_broadcast(C), 2);
  for (int i = 0; i < 3; i++) {
    void *r;
    ko_join(t[i], KO_FOREVER, &r);
    CHECK_EQ(I(r), KO_OK);
  }
  CHECK_EQ(norder, 3);

  /* with a mutex: released while waiting, held again on return */
  ko_mutex_new(s, &CM);
  shared_state = 0;
  ko_task *w[2];
  for (int i = 0; i < 2; i++) ko_spawn(s, &w[i], cond_mutex_waiter, NULL, NULL);
  ko_yield_now();
  CHECK_EQ(ko_mutex_lock(CM, KO_FOREVER), KO_OK); /* free: the waiters let go of it */
  shared_state = 1;
  CHECK_EQ(ko_cond_broadcast(C), 2);
  ko_yield_now(); /* they wake but must wait for the mutex */
  char buf[80];
  ko_task_describe(w[0], buf, sizeof buf);
  CHECK(strstr(buf, "lock mutex#") == buf);
  CHECK_EQ(shared_state, 1);
  ko_mutex_unlock(CM);
  for (int i = 0; i < 2; i++) ko_join(w[i], KO_FOREVER, NULL);
  CHECK_EQ(shared_state, 3);
  /* a timed-out wait takes the mutex back too */
  ko_mutex_lock(CM, KO_FOREVER);
  CHECK_EQ(ko_cond_wait(C, CM, 2), KO_ETIMEDOUT);
  CHECK_EQ(ko_mutex_unlock(CM), KO_OK);
  CHECK_EQ(ko_cond_wait(C, CM, 2), KO_EINVAL); /* not held */
  ko_mutex_free(CM);
  ko_cond_free(C);
  return NULL;
}

/* ---- semaphore and wait group */
static ko_sem *S;
static int holders, max_holders;
static void *sem_user(void *arg) {
  (void)arg;
  CHECK_EQ(ko_sem_acquire(S, KO_FOREVER), KO_OK);
  holders++;
  if (holders > max_holders) max_holders = holders;
  ko_sleep(1);
  holders--;
  ko_sem_release(S, 1);
  return NULL;
}

static void *sem_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_sem_new(s, &S, 2);
  holders = max_holders = 0;
  ko_task *t[6];
  for (int i = 0; i < 6; i++) ko_spawn(s, &t[i], sem_user, NULL, NULL);
  for (int i = 0; i < 6; i++) ko_join(t[i], KO_FOREVER, NULL);
  CHECK_EQ(max_holders, 2);
  CHECK_EQ(ko_sem_try_acquire(S), KO_OK);
  CHECK_EQ(ko_sem_try_acquire(S), KO_OK);
  CHECK_EQ(ko_sem_try_acquire(S), KO_EAGAIN);
  CHECK_EQ(ko_sem_acquire(S, 2), KO_ETIMEDOUT);
  CHECK_EQ(ko_sem_release(S, 0), KO_EINVAL);
  ko_sem_release(S, 2);
  ko_sem_free(S);
  return NULL;
}

static ko_wg *WG;
static int wg_done;
static void *wg_worker(void *arg) {
  ko_sleep((int64_t)I(arg));
  wg_done++;
  ko_wg_done(WG);
  return NULL;
}

static void *wg_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_wg_new(s, &WG);
  wg_done = 0;
  CHECK_EQ(ko_wg_wait(WG, KO_FOREVER), KO_OK); /* zero: no wait */
  CHECK_EQ(ko_wg_add(WG, -1), KO_EINVAL);
  ko_wg_add(WG, 5);
  ko_task *t[5];
  for (int i = 0; i < 5; i++) {
    ko_spawn(s, &t[i], wg_worker, V(i + 1), NULL);
    ko_detach(t[i]);
  }
  CHECK_EQ(ko_wg_wait(WG, 1), KO_ETIMEDOUT);
  CHECK_EQ(ko_wg_wait(WG, KO_FOREVER), KO_OK);
  CHECK_EQ(wg_done, 5);
  ko_wg_free(WG);
  return NULL;
}

/* ---- cancel while blocked in each primitive */
typedef struct blocker {
  const char *what;
  int (*block)(void);
} blocker;

static ko_chan *ch_empty, *ch_full;
static ko_mutex *held;
static ko_cond *cv;
static ko_mutex *cvm;
static ko_sem *sem0;
static ko_wg *wg1;
static ko_task *forever;
static int fds[2];

static int b_sleep(void) { return ko_sleep(100000); }
static int b_join(void) { return ko_join(forever, KO_FOREVER, NULL); }
static int b_send(void) { return ko_chan_send(ch_full, V(1), KO_FOREVER); }
static int b_recv(void) {
  void *v;
  return ko_chan_recv(ch_empty, &v, KO_FOREVER);
}
static int b_select(void) {
  ko_case cs[2] = {{KO_CASE_RECV, ch_empty, NULL}, {KO_CASE_SEND, ch_full, V(1)}};
  int fired;
  return ko_select(cs, 2, 100000, &fired);
}
static int b_lock(void) { return ko_mutex_lock(held, KO_FOREVER); }
static int b_cond(void) { return ko_cond_wait(cv, NULL, KO_FOREVER); }
static int b_cond_mutex(void) {
  CHECK_EQ(ko_mutex_lock(cvm, KO_FOREVER), KO_OK);
  int r = ko_cond_wait(cv, cvm, KO_FOREVER);
  CHECK_EQ(ko_mutex_unlock(cvm), KO_OK); /* held again, even when cancelled */
  return r;
}
static int b_sem(void) { return ko_sem_acquire(sem0, KO_FOREVER); }
static int b_wg(void) { return ko_wg_wait(wg1, KO_FOREVER); }
static int b_fd(void) {
  int rev;
  return ko_wait_fd(fds[0], KO_READABLE, KO_FOREVER, &rev);
}

static const blocker blockers[] = {
  {"sleep", b_sleep}, {"join", b_join}, {"send", b_send}, {"recv", b_recv},
  {"select", b_select}, {"mutex lock", b_lock}, {"cond wait", b_cond},
  {"cond wait + mutex", b_cond_mutex}, {"sem acquire", b_sem}, {"wg wait", b_wg},
  {"fd wait", b_fd},
};
#define NBLOCKERS ((int)(sizeof blockers / sizeof blockers[0]))

static void *run_blocker(void *arg) {
  const blocker *b = (const blocker *)arg;
  return V(b->block());
}

static void *hold_forever(void *arg) {
  ko_mutex_lock(held, KO_FOREVER);
  ko_sleep(100000); /* cancelled at the end */
  ko_mutex_unlock(held);
  return arg;
}

static void *cancel_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_chan_new(s, &ch_empty, 0);
  ko_chan_new(s, &ch_full, 1);
  ko_chan_try_send(ch_full, V(0));
  ko_mutex_new(s, &held);
  ko_cond_new(s, &cv);
  ko_mutex_new(s, &cvm);
  ko_sem_new(s, &sem0, 0);
  ko_wg_new(s, &wg1);
  ko_wg_add(wg1, 1);
  CHECK_EQ(pipe(fds), 0);
  ko_spawn(s, &forever, hold_forever, NULL, "holder");
  ko_yield_now();
  for (int i = 0; i < NBLOCKERS; i++) {
    ko_task *t;
    ko_spawn(s, &t, run_blocker, (void *)&blockers[i], blockers[i].what);
    ko_yield_now();
    ko_yield_now();
    if (strcmp(ko_task_state(t), "blocked") != 0) {
      fprintf(stderr, "%s: not blocked (%s)\n", blockers[i].what, ko_task_state(t));
      exit(1);
    }
    if (blockers[i].block == b_cond_mutex) {
      /* take the mutex so that the cancelled waiter must wait for it */
      CHECK_EQ(ko_mutex_lock(cvm, KO_FOREVER), KO_OK);
      CHECK_EQ(ko_cancel(t), KO_OK);
      ko_yield_now();
      CHECK(strcmp(ko_task_state(t), "blocked") == 0);
      ko_mutex_unlock(cvm);
    } else {
      CHECK_EQ(ko_cancel(t), KO_OK);
    }
    void *r;
    CHECK_EQ(ko_join(t, 1000, &r), KO_ECANCELED);
    if (I(r) != KO_ECANCELED) {
      fprintf(stderr, "%s: returned %d, not KO_ECANCELED\n", blockers[i].what, (int)I(r));
      exit(1);
    }
  }
  /* the primitives still work afterwards (no stale waiter is left) */
  void *v;
  CHECK_EQ(ko_chan_try_recv(ch_full, &v), KO_OK);
  CHECK_EQ(ko_chan_try_send(ch_full, V(3)), KO_OK);
  CHECK_EQ(ko_cond_signal(cv), 0);
  ko_sem_release(sem0, 1);
  CHECK_EQ(ko_sem_try_acquire(sem0), KO_OK);
  ko_wg_done(wg1);
  ko_cancel(forever);
  CHECK_EQ(ko_join(forever, KO_FOREVER, NULL), KO_ECANCELED);
  CHECK_EQ(ko_mutex_trylock(held), KO_OK);
  ko_mutex_unlock(held);
  close(fds[0]);
  close(fds[1]);
  ko_chan_free(ch_empty);
  ko_chan_free(ch_full);
  ko_mutex_free(held);
  ko_cond_free(cv);
  ko_mutex_free(cvm);
  ko_sem_free(sem0);
  ko_wg_free(wg1);
  return NULL;
}

int main(int argc, char **argv) {
  test_init(argc, argv);
  run_test("mutex", mutex_body, NULL);
  run_test("mutex timeout", mutex_timeout_body, NULL);
  run_test("cond", cond_body, NULL);
  run_test("semaphore", sem_body, NULL);
  run_test("wait group", wg_body, NULL);
  run_test("cancel in every primitive", cancel_body, NULL);
  return 0;
}
