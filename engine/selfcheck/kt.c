/*
 * kt.c - helpers shared by the self-check tests.
 */
#include "kt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define KT_HAVE_VALGRIND 1
#endif
#endif

int kt_check(kt *t, int ok, const char *file, int line, const char *expr, const char *fmt, ...) {
  if (ok) return 1;
  if (!t->failed) {
    const char *base = strrchr(file, '/');
    size_t n = (size_t)snprintf(t->msg, sizeof t->msg, "%s:%d: %s", base ? base + 1 : file, line, expr);
    fmt++; /* the macro's leading space */
    if (fmt[0] && n + 4 < sizeof t->msg) {
      va_list ap;
      va_start(ap, fmt);
      strcpy(t->msg + n, " (");
      vsnprintf(t->msg + n + 2, sizeof t->msg - n - 3, fmt, ap);
      va_end(ap);
      strcat(t->msg, ")");
    }
  }
  t->failed = 1;
  return 0;
}

void kt_skip(kt *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->msg, sizeof t->msg, fmt, ap);
  va_end(ap);
  t->skipped = 1;
}

void kt_note(kt *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->note, sizeof t->note, fmt, ap);
  va_end(ap);
}

ko_coro *kt_create(kt *t, ko_fn fn, void *arg, size_t stack_size) {
  ko_options opt = {0};
  opt.backend = t->be;
  opt.stack_size = stack_size;
  ko_coro *co = NULL;
  int err = ko_create(&co, &opt, fn, arg);
  KT_CHECK(t, err == KO_OK, "ko_create: %s", ko_strerror(err));
  return err == KO_OK ? co : NULL;
}

int kt_under_valgrind(void) {
#ifdef KT_HAVE_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return 0;
#endif
}

int kt_under_asan(void) {
#if defined(__SANITIZE_ADDRESS__)
  return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return 1;
#else
  return 0;
#endif
#else
  return 0;
#endif
}

/* The rest is POSIX; kt_win.c has the Windows versions. */
#ifndef _WIN32

int kt_under_wine(void) { return 0; }

int kt_under_qemu(void) {
  static int known = -1;
  if (known < 0) {
    char name[32] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    if (f) {
      if (!fgets(name, sizeof name, f)) name[0] = 0;
      fclose(f);
    }
    known = strncmp(name, "qemu-", 5) == 0;
  }
  return known;
}

size_t kt_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

size_t kt_map_count(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  size_t lines = 0;
  int c;
  while ((c = getc(f)) != EOF) lines += c == '\n';
  fclose(f);
  return lines;
}

double kt_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

void kt_child_send(int fd, const char *text) {
  size_t n = strlen(text);
  while (n > 0) {
    ssize_t w = write(fd, text, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    text += w;
    n -= (size_t)w;
  }
}

static void exit_at_once(void *arg, int fd) {
  (void)arg, (void)fd;
  _exit(0);
}

const char *kt_fork_broken(void) {
  static int known = -1;
  if (known < 0) {
    char buf[4];
    size_t got;
    int timed_out;
    int st = kt_fork(exit_at_once, NULL, kt_under_valgrind() ? 60 : 5, buf, sizeof buf, &got, &timed_out);
    known = st == -1 ? 1 : timed_out ? 2 : 0;
  }
  return known == 1   ? "fork() failed"
         : known == 2 ? "a child process that only exits did not finish (fork() hangs here: qemu-user?)"
                      : NULL;
}

int kt_fork(void (*fn)(void *arg, int fd), void *arg, unsigned timeout_s,
            void *out, size_t cap, size_t *got, int *timed_out) {
  int fds[2];
  *got = 0;
  *timed_out = 0;
  if (pipe(fds) != 0) return -1;
  fflush(NULL); /* or the child would print what the parent buffered */
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    alarm(timeout_s);
    fn(arg, fds[1]);
    exit(0); /* exit, not _exit: leak checkers report at exit */
  }
  close(fds[1]);
  /* The alarm ends a hung child; the parent's own deadline covers a child
   * that blocked SIGALRM, with some slack for a slow exit under a tool. */
  double deadline = kt_now_ns() + ((double)timeout_s + (timeout_s > 10 ? 30 : 2)) * 1e9;
  char *buf = (char *)out;
  for (;;) {
    double left = (deadline - kt_now_ns()) / 1e6;
    if (left <= 0) {
      kill(pid, SIGKILL);
      *timed_out = 1;
      break;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    int r = poll(&p, 1, left > 1e6 ? 1000000 : (int)left + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[512];
    ssize_t n = read(fds[0], tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* EOF: the child closed it (it exited) */
    size_t take = (size_t)n < cap - *got ? (size_t)n : cap - *got;
    memcpy(buf + *got, tmp, take);
    *got += take;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) *timed_out = 1;
  return status;
}

#endif /* !_WIN32 */
