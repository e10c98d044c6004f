/*
 * check.h - the little harness of the native scheduler tests. Each program
 * takes a backend name; it exits 77 (CTest: skipped) when that backend is
 * not built into this binary.
 */
#ifndef KO_TEST_SCHED_CHECK_H
#define KO_TEST_SCHED_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "korutin.h"

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

#define CHECK_EQ(a, b)                                                                         \
  do {                                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                                        \
    if (a_ != b_) {                                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, \
              #b, a_, b_);                                                                     \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

static const ko_backend *test_backend;
static const char *test_backend_name = "";

/* Picks the backend named on the command line (or the default). */
static inline void test_init(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  test_backend = argc > 1 ? ko_backend_find(argv[1]) : ko_backend_default();
  if (!test_backend || ko_backend_unavailable(test_backend)) {
    printf("skip: backend %s: %s\n", argc > 1 ? argv[1] : "(default)",
           test_backend ? ko_backend_unavailable(test_backend) : "unknown");
    exit(77);
  }
  test_backend_name = ko_backend_name(test_backend);
}

/* The threads backend gives each task an OS thread: tests scale down. */
static inline int test_scale(int n) { return ko_backend_own_thread(test_backend) ? (n / 20 > 0 ? n / 20 : 1) : n; }

static inline ko_sched *test_sched(uv_loop_t *loop, uint64_t seed) {
  ko_sched_options opt = {0};
  opt.backend = test_backend;
  opt.stack_size = 64 * 1024;
  opt.seed = seed;
  ko_sched *s = NULL;
  CHECK_EQ(ko_sched_new(&s, loop, &opt), KO_OK);
  return s;
}

/* Runs one test body as a task on a fresh loop and scheduler; every task
 * must have ended when the loop runs out of work. */
static inline void run_test(const char *name, void *(*body)(void *), void *arg) {
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  ko_sched *s = test_sched(&loop, 12345);
  ko_task *t;
  CHECK_EQ(ko_spawn(s, &t, body, arg, name), KO_OK);
  CHECK_EQ(ko_sched_run(s), 0);
  void *res = NULL;
  CHECK_EQ(ko_join(t, KO_FOREVER, &res), KO_OK);
  CHECK_EQ(ko_sched_free(s), KO_OK);
  uv_run(&loop, UV_RUN_DEFAULT); /* lets the scheduler's handles close */
  CHECK_EQ(uv_loop_close(&loop), 0);
  printf("ok  %-28s [%s]\n", name, test_backend_name);
}

static inline uint64_t ms_now(void) { return uv_hrtime() / 1000000; }

#endif
