/*
 * ucontext.c - the ucontext backend: getcontext/makecontext/swapcontext.
 *
 * Portable wherever the C library still has them (glibc, musl with
 * libucontext, the BSDs). swapcontext also saves the signal mask, which
 * costs a system call per switch: correct and slow, a fallback.
 *
 * glibc's i386 swapcontext keeps the x87 state but not MXCSR, so there the
 * backend carries MXCSR itself: each context holds its own, a new one
 * starts with its creator's.
 */
#include "backend.h"

#if defined(KO_HAVE_UCONTEXT)

#include <stdint.h>
#include <ucontext.h>

typedef struct uctx {
  ucontext_t uc;
  void *value;    /* handed in by the jump that continues in this context */
  unsigned mxcsr; /* i386 only: see above */
} uctx;

#if defined(__i386__)
static unsigned get_mxcsr(void) {
  unsigned m;
  __asm__ __volatile__("stmxcsr %0" : "=m"(m));
  return m;
}
static void set_mxcsr(unsigned m) { __asm__ __volatile__("ldmxcsr %0" : : "m"(m)); }
#define SAVE_MXCSR(c) ((c)->mxcsr = get_mxcsr())
#define LOAD_MXCSR(c) set_mxcsr((c)->mxcsr)
#else
#define SAVE_MXCSR(c) ((void)(c))
#define LOAD_MXCSR(c) ((void)(c))
#endif

/* makecontext passes only ints: a pointer travels as two halves. */
static void start(unsigned hi, unsigned lo, unsigned chi, unsigned clo) {
  uctx *self = (uctx *)(((uintptr_t)chi << 16 << 16) | clo);
  void (*entry)(void *) = (void (*)(void *))(((uintptr_t)hi << 16 << 16) | lo);
  LOAD_MXCSR(self);
  entry((void *)self->uc.uc_link);
}

static int uc_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  uctx *c = (uctx *)ctx;
  if (getcontext(&c->uc) != 0) return -1;
  c->uc.uc_stack.ss_sp = lo;
  c->uc.uc_stack.ss_size = size;
  /* entry never returns, so uc_link is free to carry its argument */
  c->uc.uc_link = (ucontext_t *)arg;
  SAVE_MXCSR(c);
  uintptr_t e = (uintptr_t)entry, s = (uintptr_t)c;
  makecontext(&c->uc, (void (*)(void))start, 4, (unsigned)(e >> 16 >> 16), (unsigned)e,
              (unsigned)(s >> 16 >> 16), (unsigned)s);
  return 0;
}

static void *uc_jump(void *from, void *to, void *value) {
  uctx *f = (uctx *)from, *t = (uctx *)to;
  t->value = value;
  SAVE_MXCSR(f);
  swapcontext(&f->uc, &t->uc);
  LOAD_MXCSR(f);
  return f->value;
}

const struct ko_backend ko_backend_ucontext = {
  .name = "ucontext",
  .ctx_size = sizeof(uctx),
  .make = uc_make,
  .jump = uc_jump,
  .resume = uc_jump,
  .yield = uc_jump,
};

#else

const struct ko_backend ko_backend_ucontext = {
  .name = "ucontext",
  .unavailable = "this C library has no ucontext (swapcontext) support",
};

#endif
