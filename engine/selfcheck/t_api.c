/*
 * t_api.c - the API's contract: nesting, states, error codes, caller-
 * supplied stacks, destroying a suspended coroutine, a backend that cannot
 * start one.
 */
#include "kt.h"
#include "backend.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- nested-resume */

typedef struct nest {
  kt *t;
  ko_coro *outer, *inner;
} nest;

static void *inner_body(ko_coro *co, void *arg) {
  nest *n = (nest *)arg;
  kt *t = n->t;
  KT_CHECK(t, ko_current() == co && co == n->inner);
  KT_CHECK(t, ko_status(n->inner) == KO_RUNNING);
  KT_CHECK(t, ko_status(n->outer) == KO_NORMAL, "the resumer is waiting: state %d", ko_status(n->outer));
  intptr_t v = (intptr_t)ko_yield((void *)(intptr_t)10);
  KT_CHECK(t, v == 11, "inner got %ld", (long)v);
  v = (intptr_t)ko_yield((void *)(intptr_t)20);
  return (void *)(v + 1);
}

static void *outer_body(ko_coro *co, void *arg) {
  nest *n = (nest *)arg;
  kt *t = n->t;
  void *out = NULL;
  KT_CHECK(t, ko_resume(n->inner, NULL, &out) == KO_OK && (intptr_t)out == 10);
  KT_CHECK(t, ko_current() == co, "back in outer after inner yielded");
  KT_CHECK(t, ko_status(n->inner) == KO_SUSPENDED && ko_status(co) == KO_RUNNING);
  intptr_t v = (intptr_t)ko_yield((void *)(intptr_t)1); /* to main, inner still suspended */
  KT_CHECK(t, ko_resume(n->inner, (void *)(v + 1), &out) == KO_OK && (intptr_t)out == 20);
  KT_CHECK(t, ko_resume(n->inner, (void *)(intptr_t)41, &out) == KO_OK && (intptr_t)out == 42);
  KT_CHECK(t, ko_status(n->inner) == KO_DONE);
  return (void *)(intptr_t)100;
}

static void nested_resume(kt *t) {
  nest n = {t, NULL, NULL};
  n.outer = kt_create(t, outer_body, &n, 0);
  n.inner = kt_create(t, inner_body, &n, 0);
  if (!n.outer || !n.inner) return;
  void *out = NULL;
  KT_CHECK(t, ko_current() == NULL);
  KT_CHECK(t, ko_resume(n.outer, NULL, &out) == KO_OK && (intptr_t)out == 1);
  KT_CHECK(t, ko_current() == NULL && ko_status(n.outer) == KO_SUSPENDED);
  KT_CHECK(t, ko_resume(n.outer, (void *)(intptr_t)10, &out) == KO_OK && (intptr_t)out == 100);
  KT_CHECK(t, ko_status(n.outer) == KO_DONE);
  ko_destroy(n.inner);
  ko_destroy(n.outer);
}

/* --------------------------------------------------------- error-codes */

typedef struct errs {
  kt *t;
  ko_coro *a, *b;
} errs;

static void *errs_b(ko_coro *co, void *arg) {
  errs *e = (errs *)arg;
  kt *t = e->t;
  KT_CHECK(t, ko_resume(co, NULL, NULL) == KO_EBUSY, "resuming itself");
  KT_CHECK(t, ko_resume(e->a, NULL, NULL) == KO_EBUSY, "resuming its resumer");
  KT_CHECK(t, ko_destroy(co) == KO_EBUSY, "destroying itself");
  KT_CHECK(t, ko_destroy(e->a) == KO_EBUSY, "destroying its resumer");
  return NULL;
}

static void *errs_a(ko_coro *co, void *arg) {
  errs *e = (errs *)arg;
  KT_CHECK(e->t, ko_resume(co, NULL, NULL) == KO_EBUSY, "resuming itself");
  KT_CHECK(e->t, ko_resume(e->b, NULL, NULL) == KO_OK);
  return NULL;
}

static void *noop(ko_coro *co, void *arg) {
  (void)co;
  return arg;
}

static void error_codes(kt *t) {
  errs e = {t, NULL, NULL};
  e.a = kt_create(t, errs_a, &e, 0);
  e.b = kt_create(t, errs_b, &e, 0);
  if (!e.a || !e.b) return;
  KT_CHECK(t, ko_resume(e.a, NULL, NULL) == KO_OK);
  KT_CHECK(t, ko_resume(e.a, NULL, NULL) == KO_EDONE, "resuming a finished coroutine");
  KT_CHECK(t, ko_resume(e.b, NULL, NULL) == KO_EDONE);
  KT_CHECK(t, ko_destroy(e.a) == KO_OK && ko_destroy(e.b) == KO_OK);

  KT_CHECK(t, ko_yield((void *)1) == NULL, "ko_yield outside a coroutine returns NULL");
  KT_CHECK(t, ko_current() == NULL);
  KT_CHECK(t, ko_resume(NULL, NULL, NULL) == KO_EINVAL);
  KT_CHECK(t, ko_destroy(NULL) == KO_EINVAL);

  ko_options opt = {0};
  opt.backend = t->be;
  ko_coro *co = (ko_coro *)&opt;
  KT_CHECK(t, ko_create(&co, &opt, NULL, NULL) == KO_EINVAL && co == NULL, "no function");
  KT_CHECK(t, ko_create(NULL, &opt, noop, NULL) == KO_EINVAL, "no out pointer");
  opt.stack_size = KO_MIN_STACK_SIZE - 1;
  KT_CHECK(t, ko_create(&co, &opt, noop, NULL) == KO_EINVAL, "stack below KO_MIN_STACK_SIZE");
  for (int i = 0; i < ko_backend_count(); i++) {
    const ko_backend *be = ko_backend_at(i);
    if (!ko_backend_unavailable(be)) continue;
    opt.backend = be;
    opt.stack_size = 0;
    KT_CHECK(t, ko_create(&co, &opt, noop, NULL) == KO_EBACKEND, "an unavailable backend (%s)",
             ko_backend_name(be));
  }
  KT_CHECK(t, strcmp(ko_strerror(KO_EDONE), ko_strerror(KO_EBUSY)) != 0);
  KT_CHECK(t, ko_strerror(12345) != NULL);
  KT_CHECK(t, strcmp(ko_err_name(KO_ECANCELED), "ECANCELED") == 0 && ko_err_name(12345) == NULL);
}

/* -------------------------------------------------------- caller-stack */

typedef struct region { kt *t; uintptr_t lo, hi; } region;

static uint64_t recurse(unsigned n) {
  volatile uint64_t x[8];
  for (unsigned i = 0; i < 8; i++) x[i] = n * 8 + i;
  return n ? recurse(n - 1) + x[n % 8] : x[0];
}

static void *inside_body(ko_coro *co, void *arg) {
  region *r = (region *)arg;
  /* The frame, not a local's address: ASan may move locals to a fake stack. */
  uintptr_t here = (uintptr_t)__builtin_frame_address(0);
  KT_CHECK(r->t, here >= r->lo && here < r->hi, "the frame at %p is outside the supplied stack",
           (void *)here);
  void *lo;
  size_t size;
  ko_coro_stack(co, &lo, &size);
  KT_CHECK(r->t, (uintptr_t)lo >= r->lo && (uintptr_t)lo + size <= r->hi, "ko_coro_stack is outside it");
  uint64_t v = recurse(200);
  ko_yield((void *)(uintptr_t)v);
  return (void *)(uintptr_t)recurse(100);
}

static void caller_stack(kt *t) {
  size_t size = 256 * 1024; /* above any backend minimum (threads: glibc wants 128 KiB on aarch64) */
  unsigned char *mem = (unsigned char *)malloc(size);
  if (!KT_CHECK(t, mem != NULL)) return;
  memset(mem, 0xA5, size);
  region r = {t, (uintptr_t)mem, (uintptr_t)mem + size};
  ko_options opt = {0};
  opt.backend = t->be;
  opt.stack = mem;
  opt.stack_size = size;
  for (int round = 0; round < 3; round++) { /* the same memory, reused */
    ko_coro *co;
    int err = ko_create(&co, &opt, inside_body, &r);
    if (!KT_CHECK(t, err == KO_OK, "%s", ko_strerror(err))) break;
    void *out = NULL;
    KT_CHECK(t, ko_resume(co, NULL, &out) == KO_OK && (uintptr_t)out == (uintptr_t)recurse(200));
    if (round == 1) { /* destroyed while suspended: the memory is the caller's again */
      KT_CHECK(t, ko_destroy(co) == KO_OK);
      continue;
    }
    KT_CHECK(t, ko_resume(co, NULL, &out) == KO_OK && (uintptr_t)out == (uintptr_t)recurse(100));
    KT_CHECK(t, ko_status(co) == KO_DONE && ko_destroy(co) == KO_OK);
  }
  memset(mem, 0, size); /* ours again: under ASan/valgrind, no stale state */
  free(mem);
}

/* --------------------------------------------------- destroy-suspended */

typedef struct susp { int after_yield; int cleanups; } susp;

static void *susp_body(ko_coro *co, void *arg) {
  (void)co;
  susp *s = (susp *)arg;
  volatile uint64_t v = recurse(50);
  ko_yield((void *)(uintptr_t)v);
  s->after_yield++; /* must never run: the coroutine is dropped in ko_yield */
  return NULL;
}

static void destroy_suspended(kt *t) {
  susp s = {0, 0};
  for (int i = 0; i < 50; i++) {
    ko_coro *co = kt_create(t, susp_body, &s, 0);
    if (!co) return;
    if (i % 5 != 0) KT_CHECK(t, ko_resume(co, NULL, NULL) == KO_OK && ko_status(co) == KO_SUSPENDED);
    KT_CHECK(t, ko_destroy(co) == KO_OK, "destroying a %s coroutine", i % 5 ? "suspended" : "new");
  }
  KT_CHECK(t, s.after_yield == 0, "code after ko_yield ran %d times", s.after_yield);
  /* the stacks are fine for the next ones */
  ko_coro *co = kt_create(t, noop, (void *)7, 0);
  if (!co) return;
  void *out = NULL;
  KT_CHECK(t, ko_resume(co, NULL, &out) == KO_OK && (uintptr_t)out == 7);
  ko_destroy(co);
}

/* ---------------------------------------------------------- data-state */

static void *state_body(ko_coro *co, void *arg) {
  kt *t = (kt *)arg;
  KT_CHECK(t, ko_get_data(co) == (void *)t, "data set before the first resume");
  ko_set_data(co, (void *)&ko_set_data);
  KT_CHECK(t, ko_status(co) == KO_RUNNING && ko_current() == co);
  ko_yield(NULL);
  return NULL;
}

static void data_state(kt *t) {
  ko_coro *co = kt_create(t, state_body, t, 0);
  if (!co) return;
  KT_CHECK(t, ko_coro_backend(co) == t->be);
  KT_CHECK(t, ko_status(co) == KO_SUSPENDED);
  KT_CHECK(t, ko_get_data(co) == NULL);
  ko_set_data(co, t);
  KT_CHECK(t, ko_resume(co, NULL, NULL) == KO_OK && ko_status(co) == KO_SUSPENDED);
  KT_CHECK(t, ko_get_data(co) == (void *)&ko_set_data);
  KT_CHECK(t, ko_resume(co, NULL, NULL) == KO_OK && ko_status(co) == KO_DONE);
  void *lo;
  size_t size;
  ko_coro_stack(co, &lo, &size);
  KT_CHECK(t, lo != NULL && size >= KO_DEFAULT_STACK_SIZE, "default stack: %zu usable bytes", size);
  ko_destroy(co);
}

/* ------------------------------------------------------- make-fails */

/* The backend under test, except that it cannot start a context (as the
 * threads backend when the system has no thread left to give). */
static int failing_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  (void)ctx, (void)lo, (void)size, (void)entry, (void)arg;
  return KO_ENOMEM;
}

/* ko_create gives the failure back and frees what it took (the stack: its
 * record lies inside it), with the pool off (the stack is unmapped) and on
 * (it is pooled), and leaves a caller's stack to the caller. */
static void make_fails(kt *t) {
  struct ko_backend broken = *t->be;
  broken.make = failing_make;
  ko_options opt = {0};
  opt.backend = &broken;
  size_t limit = ko_stack_pool_limit(0);
  size_t maps0 = kt_map_count();
  for (int pooled = 0; pooled < 2; pooled++) {
    ko_stack_pool_limit(pooled ? limit : 0);
    for (int i = 0; i < 200; i++) {
      ko_coro *co = (ko_coro *)&opt; /* must come back NULL */
      int err = ko_create(&co, &opt, noop, NULL);
      if (!KT_CHECK(t, err == KO_ENOMEM && co == NULL, "ko_create: %d (%s), coroutine %p", err, ko_err_name(err),
                    (void *)co))
        break;
    }
  }
  ko_stack_pool_limit(0); /* the pooled stacks are unmapped now */
  size_t maps = kt_map_count();
  if (maps0 && maps) KT_CHECK(t, maps <= maps0, "mappings %zu -> %zu after 400 failed creates", maps0, maps);
  ko_stack_pool_limit(limit);

  size_t size = 256 * 1024, least = t->be->min_stack ? t->be->min_stack() : 0; /* threads: glibc's minimum */
  if (size < least) size = least;
  unsigned char *mine = (unsigned char *)malloc(size);
  if (!KT_CHECK(t, mine != NULL)) return;
  opt.stack = mine;
  opt.stack_size = size;
  ko_coro *co = NULL;
  KT_CHECK(t, ko_create(&co, &opt, noop, NULL) == KO_ENOMEM && co == NULL, "on a caller's stack");
  free(mine); /* still the caller's: not freed by ko_create */

  /* the real backend still works */
  co = kt_create(t, noop, (void *)5, 0);
  if (!co) return;
  void *out = NULL;
  KT_CHECK(t, ko_resume(co, NULL, &out) == KO_OK && (uintptr_t)out == 5);
  ko_destroy(co);
}

const kt_test kt_group_api[] = {
  {"nested-resume", nested_resume},
  {"error-codes", error_codes},
  {"caller-stack", caller_stack},
  {"destroy-suspended", destroy_suspended},
  {"data-state", data_state},
  {"make-fails", make_fails},
  {NULL, NULL},
};
