/*
 * t_align.c - the stack is 16-byte aligned at entry and after switches.
 *
 * A misaligned stack shows in three ways, each checked: a 16-aligned local
 * lands on an odd address (the compiler assumes the ABI alignment and does
 * not realign), printf of doubles through varargs breaks or crashes (the
 * C library saves SSE registers with aligned stores), and our own varargs
 * function reads wrong doubles.
 */
#include "kt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static double sum_doubles(int n, ...) {
  va_list ap;
  va_start(ap, n);
  double s = 0;
  for (int i = 0; i < n; i++) s += va_arg(ap, double);
  va_end(ap);
  return s;
}

/* noinline: a frame of its own, entered with whatever alignment the caller
 * has. volatile: the values really go through memory and varargs. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void check_alignment(kt *t, const char *where) {
  _Alignas(16) volatile unsigned char local[16];
  local[0] = 1;
  KT_CHECK(t, ((uintptr_t)local & 15) == 0, "%s: a 16-aligned local is at %p", where, (void *)local);
  volatile double a = 1.5, b = -2.25, c = 1e10 / 3;
  char buf[128];
  snprintf(buf, sizeof buf, "%f %.2f %.3e %g", a, b, c, a * b);
  KT_CHECK(t, strcmp(buf, "1.500000 -2.25 3.333e+09 -3.375") == 0, "%s: snprintf gave \"%s\"", where, buf);
  double s = sum_doubles(4, (double)a, (double)b, 0.25, 8.0);
  KT_CHECK(t, s == 7.5, "%s: varargs sum %g, want 7.5", where, s);
}

static void *align_body(ko_coro *co, void *arg) {
  (void)co;
  kt *t = (kt *)arg;
  check_alignment(t, "coroutine entry");
  for (int i = 0; i < 4; i++) {
    ko_yield(NULL);
    check_alignment(t, "coroutine after a switch");
  }
  return NULL;
}

static void align_entry(kt *t) {
  ko_coro *co = kt_create(t, align_body, t, 0);
  if (!co) return;
  KT_CHECK(t, ko_resume(co, NULL, NULL) == KO_OK);
  ko_destroy(co);
}

static void align_switches(kt *t) {
  ko_coro *co = kt_create(t, align_body, t, 0);
  if (!co) return;
  while (ko_status(co) != KO_DONE) {
    KT_CHECK(t, ko_resume(co, NULL, NULL) == KO_OK);
    check_alignment(t, "main after a switch");
  }
  ko_destroy(co);
}

/* Caller-supplied stacks at every offset mod 16: the engine must align. */
static void align_odd_stack(kt *t) {
  static _Alignas(64) unsigned char area[256 * 1024 + 64]; /* above any backend minimum */
  for (size_t off = 0; off < 16; off += 1) {
    ko_options opt = {0};
    opt.backend = t->be;
    opt.stack = area + off;
    opt.stack_size = 256 * 1024;
    ko_coro *co;
    int err = ko_create(&co, &opt, align_body, t);
    if (!KT_CHECK(t, err == KO_OK, "offset %zu: %s", off, ko_strerror(err))) return;
    while (ko_status(co) != KO_DONE) ko_resume(co, NULL, NULL);
    ko_destroy(co);
  }
}

const kt_test kt_group_align[] = {
  {"align-entry", align_entry},
  {"align-switches", align_switches},
  {"align-odd-stack", align_odd_stack},
  {NULL, NULL},
};
