/*
 * sched_basic.c - tasks on a libuv loop: start order, join (and its
 * timeout), sleep in deadline order, fair yield, wakeup, cancel, detach,
 * descriptions, deadlock detection, passes that give the loop its turn,
 * hand-offs from any call depth with each task's FP control its own.
 */
#include "check.h"

#include <fenv.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

static int log_buf[64];
static int log_len;

static void *append(void *arg) {
  log_buf[log_len++] = (int)(intptr_t)arg;
  return arg;
}

static void test_start_order(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  ko_sched *s = test_sched(&loop, 1);
  ko_task *t[3];
  log_len = 0;
  for (int i = 0; i < 3; i++) CHECK_EQ(ko_spawn(s, &t[i], append, (void *)(intptr_t)(i + 1), NULL), KO_OK);
  CHECK_EQ(log_len, 0); /* tasks start when the loop runs, not in ko_spawn */
  CHECK(strcmp(ko_task_state(t[0]), "ready") == 0);
  CHECK(strcmp(ko_task_name(t[1]), "task-2") == 0 || ko_task_id(t[1]) == ko_task_id(t[0]) + 1);
  CHECK_EQ(ko_sched_run(s), 0);
  CHECK_EQ(log_len, 3);
  for (int i = 0; i < 3; i++) CHECK_EQ(log_buf[i], i + 1);
  for (int i = 0; i < 3; i++) {
    CHECK(strcmp(ko_task_state(t[i]), "done") == 0);
    void *r;
    CHECK_EQ(ko_join(t[i], 0, &r), KO_OK);
    CHECK_EQ((intptr_t)r, i + 1);
  }
  ko_sched_free(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  printf("ok  %-28s [%s]\n", "start order", test_backend_name);
}

static void *sleeper(void *arg) {
  CHECK_EQ(ko_sleep((int64_t)(intptr_t)arg), KO_OK);
  return (void *)(intptr_t)42;
}

static void *second_joiner(void *arg) { return (void *)(intptr_t)ko_join((ko_task *)arg, KO_FOREVER, NULL); }

static void *join_body(void *arg) {
  (void)arg;
  ko_task *t;
  CHECK_EQ(ko_spawn(ko_sched_current(), &t, sleeper, (void *)(intptr_t)60, "sleeper"), KO_OK);
  uint64_t t0 = ms_now();
  CHECK_EQ(ko_join(t, 10, NULL), KO_ETIMEDOUT); /* the timeout leaves t running */
  ko_task *second;
  CHECK_EQ(ko_spawn(ko_sched_current(), &second, second_joiner, t, NULL), KO_OK);
  CHECK_EQ(ko_yield_now(), KO_OK); /* second now joins t */
  CHECK_EQ(ko_join(t, 5, NULL), KO_EBUSY);
  CHECK_EQ(ko_detach(t), KO_EBUSY);
  CHECK_EQ(ko_cancel(second), KO_OK);
  CHECK_EQ(ko_join(second, KO_FOREVER, NULL), KO_ECANCELED);
  CHECK(ms_now() - t0 >= 9);
  CHECK(strcmp(ko_task_state(t), "blocked") == 0);
  char buf[64];
  ko_task_describe(t, buf, sizeof buf);
  CHECK(strcmp(buf, "sleep 60ms") == 0);
  void *r = NULL;
  CHECK_EQ(ko_join(t, KO_FOREVER, &r), KO_OK);
  CHECK_EQ((intptr_t)r, 42);
  CHECK(ms_now() - t0 >= 59);
  CHECK_EQ(ko_join(ko_task_current(), KO_FOREVER, NULL), KO_EINVAL); /* itself */
  return NULL;
}

/* 10,000 (fewer on threads) tasks sleep random times; they must wake in
 * deadline order, none early. */
typedef struct sleep_rec {
  uint64_t start_us, ms;
  uint64_t deadline_us; /* the scheduler's */
  uint64_t woke_us;
} sleep_rec;
static sleep_rec *recs;
static int *order;
static int norder;

static void *random_sleeper(void *arg) {
  int i = (int)(intptr_t)arg;
  uint64_t ms = (uint64_t)((i * 7919u) % 200);
  recs[i].start_us = uv_hrtime() / 1000;
  recs[i].ms = ms;
  CHECK_EQ(ko_sleep((int64_t)ms), KO_OK);
  recs[i].woke_us = uv_hrtime() / 1000;
  recs[i].deadline_us = ko_task_deadline(ko_task_current());
  order[norder++] = i;
  return NULL;
}

static void *sleep_order_body(void *arg) {
  int n = (int)(intptr_t)arg;
  ko_task **ts = (ko_task **)calloc((size_t)n, sizeof *ts);
  for (int i = 0; i < n; i++) CHECK_EQ(ko_spawn(ko_sched_current(), &ts[i], random_sleeper, (void *)(intptr_t)i, NULL), KO_OK);
  for (int i = 0; i < n; i++) CHECK_EQ(ko_join(ts[i], KO_FOREVER, NULL), KO_OK);
  free(ts);
  return NULL;
}

static void test_sleep_order(void) {
  int n = test_scale(10000);
  recs = (sleep_rec *)calloc((size_t)n, sizeof *recs);
  order = (int *)calloc((size_t)n, sizeof *order);
  norder = 0;
  run_test("sleep: deadline order", sleep_order_body, (void *)(intptr_t)n);
  CHECK_EQ(norder, n);
  for (int k = 0; k < n; k++) {
    const sleep_rec *r = &recs[order[k]];
    CHECK(r->deadline_us >= r->start_us + r->ms * 1000);
    CHECK(r->woke_us >= r->deadline_us); /* never early */
    if (k) CHECK(recs[order[k - 1]].deadline_us <= r->deadline_us); /* in deadline order */
  }
  free(recs);
  free(order);
}

static void *yielder(void *arg) {
  for (int i = 0; i < 4; i++) {
    log_buf[log_len++] = (int)(intptr_t)arg;
    CHECK_EQ(ko_yield_now(), KO_OK);
  }
  return NULL;
}

static void *yield_body(void *arg) {
  (void)arg;
  ko_task *t[3];
  log_len = 0;
  for (int i = 0; i < 3; i++) ko_spawn(ko_sched_current(), &t[i], yielder, (void *)(intptr_t)(i + 1), NULL);
  for (int i = 0; i < 3; i++) CHECK_EQ(ko_join(t[i], KO_FOREVER, NULL), KO_OK);
  CHECK_EQ(log_len, 12);
  for (int i = 0; i < 12; i++) CHECK_EQ(log_buf[i], i % 3 + 1); /* round robin */
  return NULL;
}

static int timer_fired;
static void on_timer_fired(uv_timer_t *h) {
  (void)h;
  timer_fired = 1;
}

/* The core ends a pass after KS_PASS_BUDGET_US: a task that never stops
 * yielding (it is its own successor) still lets the loop run its timers. */
static uv_timer_t busy_timer; /* not on the task's stack: it closes after the task ends */
static void *busy_yield_body(void *arg) {
  uv_timer_init((uv_loop_t *)arg, &busy_timer);
  timer_fired = 0;
  uv_timer_start(&busy_timer, on_timer_fired, 1, 0);
  long n = 0;
  while (!timer_fired && n < 50000000) {
    CHECK_EQ(ko_yield_now(), KO_OK);
    n++;
  }
  CHECK(timer_fired);
  uv_close((uv_handle_t *)&busy_timer, NULL);
  return NULL;
}

static void test_busy_yield(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  ko_sched *s = test_sched(&loop, 1);
  ko_task *t;
  CHECK_EQ(ko_spawn(s, &t, busy_yield_body, &loop, NULL), KO_OK);
  CHECK_EQ(ko_sched_run(s), 0);
  CHECK_EQ(ko_join(t, KO_FOREVER, NULL), KO_OK);
  CHECK_EQ(ko_sched_free(s), KO_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  printf("ok  %-28s [%s]\n", "a pass gives the loop a turn", test_backend_name);
}

static void *long_sleeper(void *arg) {
  (void)arg;
  uint64_t t0 = ms_now();
  int r = ko_sleep(10000);
  CHECK(ms_now() - t0 < 5000);
  return (void *)(intptr_t)r;
}

static void *wakeup_body(void *arg) {
  (void)arg;
  ko_task *t;
  ko_spawn(ko_sched_current(), &t, long_sleeper, NULL, NULL);
  CHECK_EQ(ko_wakeup(t), KO_EINVAL); /* not asleep yet: it has not run */
  CHECK_EQ(ko_sleep(2), KO_OK);
  CHECK_EQ(ko_wakeup(t), KO_OK);
  void *r;
  CHECK_EQ(ko_join(t, KO_FOREVER, &r), KO_OK);
  CHECK_EQ((intptr_t)r, KO_WOKEN);
  return NULL;
}

static int ran;
static void *mark_ran(void *arg) {
  ran = 1;
  return arg;
}

static void *sleep_then_report(void *arg) {
  (void)arg;
  int r = ko_sleep(10000);
  /* a cancelled task can still block (cleanup): the cancel is consumed */
  int r2 = ko_sleep(1);
  return (void *)(intptr_t)(r * 100 + r2);
}

static void *self_cancel(void *arg) {
  (void)arg;
  CHECK_EQ(ko_cancel(ko_task_current()), KO_OK);
  CHECK_EQ(ko_yield_now(), KO_ECANCELED); /* at the next blocking call */
  CHECK_EQ(ko_yield_now(), KO_OK);
  return NULL;
}

static void *cancel_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_task *t;
  ran = 0;
  CHECK_EQ(ko_spawn(s, &t, mark_ran, NULL, NULL), KO_OK);
  CHECK_EQ(ko_cancel(t), KO_OK);
  CHECK_EQ(ko_join(t, KO_FOREVER, NULL), KO_ECANCELED);
  CHECK_EQ(ran, 0); /* cancelled before it started: it never ran */

  CHECK_EQ(ko_spawn(s, &t, sleep_then_report, NULL, NULL), KO_OK);
  CHECK_EQ(ko_yield_now(), KO_OK);
  CHECK(strcmp(ko_task_state(t), "blocked") == 0);
  CHECK_EQ(ko_cancel(t), KO_OK);
  void *r;
  CHECK_EQ(ko_join(t, 1000, &r), KO_ECANCELED);
  CHECK_EQ((intptr_t)r, KO_ECANCELED * 100 + KO_OK);

  CHECK_EQ(ko_spawn(s, &t, self_cancel, NULL, NULL), KO_OK);
  CHECK_EQ(ko_join(t, KO_FOREVER, NULL), KO_ECANCELED);

  CHECK_EQ(ko_spawn(s, &t, mark_ran, NULL, NULL), KO_OK);
  CHECK_EQ(ko_sleep(1), KO_OK);
  CHECK_EQ(ko_cancel(t), KO_EDONE);
  CHECK_EQ(ko_join(t, KO_FOREVER, NULL), KO_OK);
  return NULL;
}

static void *detached_body(void *arg) {
  (void)arg;
  ko_task *t;
  ran = 0;
  CHECK_EQ(ko_spawn(ko_sched_current(), &t, mark_ran, NULL, NULL), KO_OK);
  CHECK_EQ(ko_detach(t), KO_OK);
  CHECK_EQ(ko_detach(t), KO_EINVAL);
  CHECK_EQ(ko_yield_now(), KO_OK);
  CHECK_EQ(ran, 1);
  return NULL;
}

static void *wait_forever(void *arg) {
  ko_chan *ch = (ko_chan *)arg;
  void *v;
  ko_chan_recv(ch, &v, KO_FOREVER);
  return NULL;
}

static void test_deadlock(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  ko_sched *s = test_sched(&loop, 1);
  ko_chan *ch;
  CHECK_EQ(ko_chan_new(s, &ch, 0), KO_OK);
  ko_task *t;
  CHECK_EQ(ko_spawn(s, &t, wait_forever, ch, "stuck"), KO_OK);
  CHECK_EQ(ko_sched_run(s), 1); /* one task left, blocked for good */
  char buf[64];
  ko_task_describe(t, buf, sizeof buf);
  CHECK(strcmp(buf, "recv channel#1") == 0);
  CHECK_EQ(ko_join(t, 0, NULL), KO_ENOTCORO);
  CHECK_EQ(ko_sched_free(s), KO_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  printf("ok  %-28s [%s]\n", "deadlock is reported", test_backend_name);
}

/* --- hand-offs from any depth and site, FP control per task ----------- */

/* A task switches to the next one straight (ko__transfer on asm and
 * boost), leaving through `ret` when that one is suspended where it is
 * called from and through `jmp` otherwise (a new task, one that went back
 * to the pass, one in a deeper frame). Three tasks block and yield from
 * different depths, each in its own rounding mode; every value arrives in
 * order and, after every switch, each task finds its own rounding mode
 * (x87 and, on x86, MXCSR) and its own locals. */
enum { HOPS = 2000 };
static int hops; /* HOPS, fewer on threads */
static ko_chan *hop_ch[2];
static int hop_done;

typedef struct hopper {
  int mode;      /* FE_* rounding */
  int which;     /* 0: sends on hop_ch[0], receives on hop_ch[1]; 1: the other way; 2: yields */
  long sum;      /* what it received */
} hopper;

static void check_mode(const hopper *h) {
  CHECK_EQ(fegetround(), h->mode);
#if defined(__SSE__)
  static const int mxcsr_rc[4] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
  CHECK_EQ(mxcsr_rc[(_mm_getcsr() >> 13) & 3], h->mode);
#endif
}

/* Does `op` at call depth `depth`, with a local per frame checked after. */
static int at_depth(hopper *h, int depth, int op, intptr_t v) {
  volatile intptr_t mine = v * 31 + depth;
  int r;
  if (depth > 0) {
    r = at_depth(h, depth - 1, op, v);
  } else {
    void *got = NULL;
    if (op == 0) CHECK_EQ(ko_chan_send(hop_ch[h->which], (void *)v, KO_FOREVER), KO_OK);
    else if (op == 1) CHECK_EQ(ko_chan_recv(hop_ch[1 - h->which], &got, KO_FOREVER), KO_OK);
    else CHECK_EQ(ko_yield_now(), KO_OK);
    r = (int)(intptr_t)got;
  }
  check_mode(h);
  CHECK_EQ(mine, v * 31 + depth);
  return r;
}

static void *hopper_body(void *arg) {
  hopper *h = (hopper *)arg;
  CHECK_EQ(fesetround(h->mode), 0);
  if (h->which == 2) {
    for (int i = 0; !hop_done; i++) at_depth(h, i % 5, 2, i);
    return NULL;
  }
  for (int i = 0; i < hops; i++) {
    if (h->which == 0) {
      at_depth(h, i % 4, 0, i);
      h->sum += at_depth(h, i % 3, 1, 0);
      if (i % 7 == 0) at_depth(h, i % 2, 2, 0);
    } else {
      int v = at_depth(h, i % 5, 1, 0);
      CHECK_EQ(v, i);
      h->sum += v;
      at_depth(h, i % 2, 0, 2 * v);
    }
  }
  return NULL;
}

static void *hop_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  hopper h[3] = {{FE_UPWARD, 0, 0}, {FE_DOWNWARD, 1, 0}, {FE_TOWARDZERO, 2, 0}};
  ko_task *t[3];
  hop_done = 0;
  hops = test_scale(HOPS);
  CHECK_EQ(ko_chan_new(s, &hop_ch[0], 0), KO_OK);
  CHECK_EQ(ko_chan_new(s, &hop_ch[1], 0), KO_OK);
  for (int i = 0; i < 3; i++) CHECK_EQ(ko_spawn(s, &t[i], hopper_body, &h[i], NULL), KO_OK);
  for (int i = 0; i < 2; i++) CHECK_EQ(ko_join(t[i], KO_FOREVER, NULL), KO_OK);
  hop_done = 1;
  CHECK_EQ(ko_join(t[2], KO_FOREVER, NULL), KO_OK);
  long n = hops;
  CHECK_EQ(h[1].sum, n * (n - 1) / 2);
  CHECK_EQ(h[0].sum, n * (n - 1));
  CHECK_EQ(fegetround(), FE_TONEAREST); /* the test body's own */
  ko_chan_free(hop_ch[0]);
  ko_chan_free(hop_ch[1]);
  return NULL;
}

int main(int argc, char **argv) {
  test_init(argc, argv);
  test_start_order();
  run_test("join and its timeout", join_body, NULL);
  test_sleep_order();
  run_test("yield is round robin", yield_body, NULL);
  run_test("wakeup ends a sleep", wakeup_body, NULL);
  run_test("cancel", cancel_body, NULL);
  run_test("detach", detached_body, NULL);
  test_deadlock();
  test_busy_yield();
  run_test("hand-offs from any depth", hop_body, NULL);
  return 0;
}
