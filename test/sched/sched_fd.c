/*
 * sched_fd.c - waiting for fd readiness with a timeout (uv_poll): a pipe
 * becomes readable when another task writes, a wait times out, a writable
 * end is ready at once, and many tasks each wait on a pipe of their own.
 */
#include "check.h"

#define V(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

static void *write_later(void *arg) {
  int fd = (int)I(arg);
  ko_sleep(5);
  CHECK_EQ(write(fd, "x", 1), 1);
  return NULL;
}

static void *fd_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  int p[2];
  CHECK_EQ(pipe(p), 0);
  int rev = -1;
  uint64_t t0 = ms_now();
  CHECK_EQ(ko_wait_fd(p[0], KO_READABLE, 10, &rev), KO_ETIMEDOUT);
  CHECK(ms_now() - t0 >= 9);
  CHECK_EQ(ko_wait_fd(p[1], KO_WRITABLE, 1000, &rev), KO_OK);
  CHECK(rev & KO_WRITABLE);
  CHECK_EQ(ko_wait_fd(p[0], 0, 10, &rev), KO_EINVAL);
  ko_task *t;
  ko_spawn(s, &t, write_later, V(p[1]), NULL);
  CHECK_EQ(ko_wait_fd(p[0], KO_READABLE, 5000, &rev), KO_OK);
  CHECK(rev & KO_READABLE);
  char c;
  CHECK_EQ(read(p[0], &c, 1), 1);
  CHECK_EQ(c, 'x');
  ko_join(t, KO_FOREVER, NULL);
  close(p[0]);
  close(p[1]);
  return NULL;
}

/* n tasks, each reading one byte from its own pipe, fed in reverse order */
static int pipes[64][2];
static void *reader(void *arg) {
  int i = (int)I(arg);
  int rev;
  if (ko_wait_fd(pipes[i][0], KO_READABLE, 5000, &rev) != KO_OK) return V(-1);
  char c;
  CHECK_EQ(read(pipes[i][0], &c, 1), 1);
  return V(c);
}

static void *many_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  int n = 64;
  ko_task *t[64];
  for (int i = 0; i < n; i++) {
    CHECK_EQ(pipe(pipes[i]), 0);
    ko_spawn(s, &t[i], reader, V(i), NULL);
  }
  ko_yield_now();
  char buf[64];
  ko_task_describe(t[3], buf, sizeof buf);
  CHECK(strstr(buf, "poll fd ") == buf);
  for (int i = n - 1; i >= 0; i--) {
    char c = (char)('A' + i % 26);
    CHECK_EQ(write(pipes[i][1], &c, 1), 1);
    if (i % 8 == 0) ko_sleep(1);
  }
  for (int i = 0; i < n; i++) {
    void *r;
    CHECK_EQ(ko_join(t[i], KO_FOREVER, &r), KO_OK);
    CHECK_EQ(I(r), 'A' + i % 26);
    close(pipes[i][0]);
    close(pipes[i][1]);
  }
  return NULL;
}

static int forever_pipe[2];
static void *wait_forever_on_fd(void *arg) {
  (void)arg;
  int rev;
  ko_wait_fd(forever_pipe[0], KO_READABLE, KO_FOREVER, &rev);
  return NULL;
}

/* A scheduler freed while a task waits on a fd closes that wait. */
static void test_free_while_polling(void) {
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(pipe(forever_pipe), 0);
  ko_sched *s = test_sched(&loop, 1);
  ko_task *t;
  CHECK_EQ(ko_spawn(s, &t, wait_forever_on_fd, NULL, NULL), KO_OK);
  /* one turn: the task starts and waits on the pipe */
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(strcmp(ko_task_state(t), "blocked") == 0);
  CHECK_EQ(ko_sched_free(s), KO_OK);
  CHECK_EQ(write(forever_pipe[1], "x", 1), 1); /* would wake a freed task */
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  close(forever_pipe[0]);
  close(forever_pipe[1]);
  printf("ok  %-28s [%s]\n", "free while a task polls", test_backend_name);
}

int main(int argc, char **argv) {
  test_init(argc, argv);
  run_test("fd readiness", fd_body, NULL);
  run_test("64 tasks on 64 pipes", many_body, NULL);
  test_free_while_polling();
  return 0;
}
