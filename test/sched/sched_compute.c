/*
 * sched_compute.c - compute sections: a task computing on a compute thread
 * while another keeps its timers on the loop; where each part runs (the
 * loop's OS thread or not); more sections than compute threads, with exact
 * results; the scheduler's calls refused inside a section; cancel before
 * and during a section; a body that returns inside one; idle threads exit.
 */
#include <stdatomic.h>

#include "check.h"

#define V(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

static uv_thread_t loop_thread;

static int on_loop_thread(void) {
  uv_thread_t me = uv_thread_self();
  return uv_thread_equal(&me, &loop_thread);
}

/* ------------------------------------------ the loop goes on meanwhile */

static atomic_int ticks;

static void *ticker(void *arg) {
  (void)arg;
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(ko_sleep(10), KO_OK);
    atomic_fetch_add(&ticks, 1);
  }
  return NULL;
}

/* Spins in a section until the ticker, on the loop, has ticked 5 times:
 * that can only happen if the section left the loop's thread. */
static void *spinner(void *arg) {
  (void)arg;
  CHECK(on_loop_thread() || ko_backend_own_thread(test_backend));
  ko_task *me = ko_task_current();
  CHECK_EQ(ko_compute_begin(), KO_OK);
  CHECK(!on_loop_thread());
  CHECK(ko_task_current() == me);
  char what[32];
  ko_task_describe(me, what, sizeof what);
  CHECK(strcmp(what, "compute") == 0);
  uint64_t start = uv_hrtime();
  while (atomic_load(&ticks) < 5) CHECK(uv_hrtime() - start < (uint64_t)10 * 1000 * 1000 * 1000);
  CHECK_EQ(ko_compute_end(), KO_OK);
  CHECK(on_loop_thread() || ko_backend_own_thread(test_backend));
  CHECK_EQ(ko_sleep(1), KO_OK); /* a task again */
  return V(7);
}

static void test_loop_goes_on(void) {
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  loop_thread = uv_thread_self();
  ko_sched *s = test_sched(&loop, 1);
  ko_task *a, *b;
  atomic_store(&ticks, 0);
  CHECK_EQ(ko_spawn(s, &a, spinner, NULL, "spinner"), KO_OK);
  CHECK_EQ(ko_spawn(s, &b, ticker, NULL, "ticker"), KO_OK);
  CHECK_EQ(ko_sched_run(s), 0);
  void *r;
  CHECK_EQ(ko_join(a, 0, &r), KO_OK);
  CHECK_EQ(I(r), 7);
  CHECK_EQ(ko_join(b, 0, NULL), KO_OK);
  CHECK_EQ(ko_sched_free(s), KO_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  printf("ok  %-28s [%s]\n", "the loop goes on", test_backend_name);
}

/* ------------------------------------ more sections than compute threads */

static atomic_int inside, most_inside;

static uint64_t work(uint64_t n) { /* a sum the compiler cannot fold away */
  volatile uint64_t acc = 0;
  for (uint64_t i = 1; i <= n; i++) acc += i * i % 7;
  return acc;
}

static void *summer(void *arg) {
  uint64_t n = (uint64_t)I(arg);
  CHECK_EQ(ko_compute_begin(), KO_OK);
  int now = atomic_fetch_add(&inside, 1) + 1;
  int seen = atomic_load(&most_inside);
  while (now > seen && !atomic_compare_exchange_weak(&most_inside, &seen, now)) {
  }
  uint64_t sum = work(n);
  atomic_fetch_sub(&inside, 1);
  CHECK_EQ(ko_compute_end(), KO_OK);
  return V(sum);
}

static void test_many_sections(void) {
  enum { N = 8 };
  CHECK_EQ(ko_compute_limits(2, 60000), KO_OK);
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  loop_thread = uv_thread_self();
  ko_sched *s = test_sched(&loop, 2);
  ko_task *t[N];
  atomic_store(&inside, 0);
  atomic_store(&most_inside, 0);
  for (int i = 0; i < N; i++) CHECK_EQ(ko_spawn(s, &t[i], summer, V(200000 + i), NULL), KO_OK);
  CHECK_EQ(ko_sched_run(s), 0);
  for (int i = 0; i < N; i++) {
    void *r;
    CHECK_EQ(ko_join(t[i], 0, &r), KO_OK);
    CHECK_EQ((uint64_t)I(r), work(200000 + i));
  }
  CHECK(atomic_load(&most_inside) <= 2); /* the limit holds */
  CHECK(ko_compute_threads() <= 2);
  CHECK_EQ(ko_sched_free(s), KO_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  CHECK_EQ(ko_compute_limits(0, 60000), KO_OK);
  printf("ok  %-28s [%s]\n", "more sections than threads", test_backend_name);
}

/* ------------------------------------------------------------- misuse */

static ko_sched *misuse_sched;

static void *misuse(void *arg) {
  ko_chan *ch = (ko_chan *)arg;
  CHECK(ko_sched_current() == misuse_sched);
  CHECK_EQ(ko_compute_end(), KO_EINVAL); /* not in a section */
  CHECK_EQ(ko_compute_begin(), KO_OK);
  CHECK_EQ(ko_compute_begin(), KO_EBUSY);
  CHECK_EQ(ko_sleep(1), KO_ENOTCORO);
  CHECK_EQ(ko_yield_now(), KO_ENOTCORO);
  CHECK_EQ(ko_chan_send(ch, V(1), 0), KO_ENOTCORO);
  CHECK_EQ(ko_chan_try_send(ch, V(1)), KO_ENOTCORO);
  CHECK_EQ(ko_chan_close(ch), KO_ENOTCORO);
  CHECK_EQ(ko_spawn(misuse_sched, NULL, misuse, NULL, NULL), KO_ENOTCORO);
  CHECK(ko_sched_current() == NULL);
  CHECK_EQ(ko_compute_end(), KO_OK);
  CHECK_EQ(ko_chan_try_send(ch, V(5)), KO_OK); /* home: all allowed again */
  return NULL;
}

static void test_misuse(void) {
  CHECK_EQ(ko_compute_begin(), KO_ENOTCORO);
  CHECK_EQ(ko_compute_end(), KO_ENOTCORO);
  CHECK_EQ(ko_compute_limits(1, -1), KO_EINVAL);
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  ko_sched *s = test_sched(&loop, 3);
  misuse_sched = s;
  ko_chan *ch;
  CHECK_EQ(ko_chan_new(s, &ch, 1), KO_OK);
  ko_task *t;
  CHECK_EQ(ko_spawn(s, &t, misuse, ch, "misuse"), KO_OK);
  CHECK_EQ(ko_sched_run(s), 0);
  CHECK_EQ(ko_join(t, 0, NULL), KO_OK);
  void *v;
  CHECK_EQ(ko_chan_try_recv(ch, &v), KO_OK);
  CHECK_EQ(I(v), 5);
  CHECK_EQ(ko_sched_free(s), KO_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  printf("ok  %-28s [%s]\n", "misuse is refused", test_backend_name);
}

/* -------------------------------------------------------------- cancel */

static atomic_int cancel_sent;

static void *cancelled_inside(void *arg) {
  (void)arg;
  CHECK_EQ(ko_compute_begin(), KO_OK);
  uint64_t start = uv_hrtime();
  while (!atomic_load(&cancel_sent)) CHECK(uv_hrtime() - start < (uint64_t)10 * 1000 * 1000 * 1000);
  int r = ko_compute_end();
  CHECK_EQ(ko_sleep(1), KO_OK); /* delivered once, by ko_compute_end */
  return V(r);
}

static void *canceller(void *arg) {
  CHECK_EQ(ko_sleep(20), KO_OK);
  CHECK_EQ(ko_cancel((ko_task *)arg), KO_OK);
  atomic_store(&cancel_sent, 1);
  return NULL;
}

static void *cancelled_before(void *arg) {
  (void)arg;
  CHECK_EQ(ko_cancel(ko_task_current()), KO_OK);
  return V(ko_compute_begin());
}

static void *returns_inside(void *arg) {
  CHECK_EQ(ko_compute_begin(), KO_OK);
  return V(I(arg) * 2); /* no ko_compute_end: the task ends all the same */
}

static void test_cancel_and_return(void) {
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  ko_sched *s = test_sched(&loop, 4);
  ko_task *a, *b, *c, *d;
  atomic_store(&cancel_sent, 0);
  CHECK_EQ(ko_spawn(s, &a, cancelled_inside, NULL, NULL), KO_OK);
  CHECK_EQ(ko_spawn(s, &b, canceller, a, NULL), KO_OK);
  CHECK_EQ(ko_spawn(s, &c, cancelled_before, NULL, NULL), KO_OK);
  CHECK_EQ(ko_spawn(s, &d, returns_inside, V(21), NULL), KO_OK);
  CHECK_EQ(ko_sched_run(s), 0);
  void *r;
  CHECK_EQ(ko_join(a, 0, &r), KO_ECANCELED);
  CHECK_EQ(I(r), KO_ECANCELED);
  CHECK_EQ(ko_join(b, 0, NULL), KO_OK);
  CHECK_EQ(ko_join(c, 0, &r), KO_ECANCELED);
  CHECK_EQ(I(r), KO_ECANCELED);
  CHECK_EQ(ko_join(d, 0, &r), KO_OK);
  CHECK_EQ(I(r), 42);
  CHECK_EQ(ko_sched_free(s), KO_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  printf("ok  %-28s [%s]\n", "cancel; return inside", test_backend_name);
}

/* --------------------------------------------------- idle threads exit */

static void *one_section(void *arg) {
  (void)arg;
  CHECK_EQ(ko_compute_begin(), KO_OK);
  CHECK_EQ(ko_compute_end(), KO_OK);
  return NULL;
}

static void test_idle_exit(void) {
  CHECK_EQ(ko_compute_limits(0, 50), KO_OK);
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  ko_sched *s = test_sched(&loop, 5);
  ko_task *t;
  CHECK_EQ(ko_spawn(s, &t, one_section, NULL, NULL), KO_OK);
  CHECK_EQ(ko_sched_run(s), 0);
  CHECK_EQ(ko_join(t, 0, NULL), KO_OK);
  CHECK(ko_compute_threads() >= 1);
  uint64_t start = uv_hrtime();
  while (ko_compute_threads() > 0) {
    CHECK(uv_hrtime() - start < (uint64_t)10 * 1000 * 1000 * 1000);
    uv_sleep(10);
  }
  CHECK_EQ(ko_sched_free(s), KO_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  CHECK_EQ(ko_compute_limits(0, 60000), KO_OK);
  printf("ok  %-28s [%s]\n", "idle threads exit", test_backend_name);
}

int main(int argc, char **argv) {
  test_init(argc, argv);
  test_loop_goes_on();
  test_many_sections();
  test_misuse();
  test_cancel_and_return();
  test_idle_exit();
  return 0;
}
