/*
 * t_fpu.c - the floating-point control state is per coroutine.
 *
 * Coroutine A sets the rounding mode upward (fesetround) and, on x86, the
 * x87 control word to round toward zero, so that MXCSR and the x87 word
 * differ; coroutine B sets downward. Each must keep its own mode across
 * switches, and neither may leak into the other or into the main context.
 * The mode is checked both by reading it back and by its effect: 0.1 as a
 * double rounds to a different float upward and downward. (A conversion,
 * not a division: valgrind honours the rounding mode for conversions only.)
 */
#include "kt.h"

#include <fenv.h>

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_X87 1
static unsigned x87_cw(void) {
  unsigned short cw;
  __asm__ __volatile__("fnstcw %0" : "=m"(cw));
  return cw;
}
static inline void set_x87_rounding(unsigned rc) { /* rc: 0 nearest .. 3 toward zero */
  unsigned short cw = (unsigned short)((x87_cw() & ~0xC00u) | (rc << 10));
  __asm__ __volatile__("fldcw %0" : : "m"(cw));
}
/* MXCSR's control bits; its low six bits are sticky exception flags. */
static unsigned mxcsr(void) {
  unsigned m;
  __asm__ __volatile__("stmxcsr %0" : "=m"(m));
  return m & ~0x3Fu;
}
#endif

/* What 0.1 (a double) narrows to as a float now. */
static float narrow(void) {
  volatile double tenth = 0.1;
  return (float)tenth;
}

typedef struct fpstate {
  int round;
#ifdef HAVE_X87
  unsigned cw, csr;
#endif
  float q;
} fpstate;

static void snap(fpstate *s) {
  s->round = fegetround();
#ifdef HAVE_X87
  s->cw = x87_cw();
  s->csr = mxcsr();
#endif
  s->q = narrow();
}

static void same(kt *t, const char *where, const fpstate *want) {
  fpstate now;
  snap(&now);
  KT_CHECK(t, now.round == want->round, "%s: rounding mode %d, want %d", where, now.round, want->round);
#ifdef HAVE_X87
  KT_CHECK(t, now.cw == want->cw, "%s: x87 control word 0x%x, want 0x%x", where, now.cw, want->cw);
  KT_CHECK(t, now.csr == want->csr, "%s: MXCSR 0x%x, want 0x%x", where, now.csr, want->csr);
#endif
  KT_CHECK(t, now.q == want->q, "%s: 0.1 narrows to %a, want %a", where, (double)now.q,
           (double)want->q);
}

typedef struct shared {
  kt *t;
  fpstate main;       /* the main context's state when the test began */
  fpstate a, b;       /* what A and B set */
} shared;

#if defined(FE_UPWARD) && defined(FE_DOWNWARD) && defined(FE_TONEAREST)
static void *body_a(ko_coro *co, void *arg) {
  (void)co;
  shared *s = (shared *)arg;
  same(s->t, "A at entry (inherits its creator's mode)", &s->main);
  KT_CHECK(s->t, fesetround(FE_UPWARD) == 0);
#if defined(__i386__) && !defined(__SSE_MATH__)
  /* fesetround set the x87 too, and the x87 does this build's arithmetic:
   * keep it upward so that the effect check below still holds. */
#elif defined(HAVE_X87)
  set_x87_rounding(3);
#endif
  snap(&s->a);
  for (int i = 0; i < 3; i++) {
    ko_yield(NULL);
    same(s->t, "A after a switch", &s->a);
  }
  return NULL;
}

static void *body_b(ko_coro *co, void *arg) {
  (void)co;
  shared *s = (shared *)arg;
  same(s->t, "B at entry", &s->main);
  KT_CHECK(s->t, fesetround(FE_DOWNWARD) == 0);
  snap(&s->b);
  for (int i = 0; i < 3; i++) {
    ko_yield(NULL);
    same(s->t, "B after a switch", &s->b);
  }
  return NULL;
}

static void fp_control(kt *t) {
  shared s = {.t = t};
  fesetround(FE_TONEAREST);
  snap(&s.main);
  ko_coro *a = kt_create(t, body_a, &s, 0), *b = kt_create(t, body_b, &s, 0);
  if (!a || !b) return;
  for (int i = 0; i < 4; i++) {
    KT_CHECK(t, ko_resume(a, NULL, NULL) == KO_OK);
    same(t, "main after A ran", &s.main);
    KT_CHECK(t, ko_resume(b, NULL, NULL) == KO_OK);
    same(t, "main after B ran", &s.main);
  }
  KT_CHECK(t, s.a.q > s.b.q, "0.1 upward (%a) should exceed 0.1 downward (%a)", (double)s.a.q,
           (double)s.b.q);
  KT_CHECK(t, s.a.q >= s.main.q && s.main.q >= s.b.q);
  KT_CHECK(t, ko_status(a) == KO_DONE && ko_status(b) == KO_DONE);
  ko_destroy(a);
  ko_destroy(b);
#ifndef HAVE_X87
  kt_note(t, "no x87 on this CPU: rounding mode checked through fenv only");
#endif
}
#else
static void fp_control(kt *t) { kt_skip(t, "this C library has no FE_UPWARD/FE_DOWNWARD rounding modes"); }
#endif

const kt_test kt_group_fpu[] = {
  {"fp-control", fp_control},
  {NULL, NULL},
};
