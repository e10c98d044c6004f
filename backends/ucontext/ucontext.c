/*
 * ucontext.c - the ucontext backend: getcontext/makecontext/swapcontext.
 *
 * Portable wherever the C library still has them (glibc, musl with
 * libucontext, the BSDs). swapcontext also saves the signal mask, which
 * costs a system call per switch: correct and slow, a fallback.
 */
#include "backend.h"

#if defined(KO_HAVE_UCONTEXT)

#include <stdint.h>
#include <ucontext.h>

/* makecontext passes only ints: a pointer travels as two halves. */
static void start(unsigned hi, unsigned lo, unsigned ehi, unsigned elo) {
  void *arg = (void *)(((uintptr_t)hi << 16 << 16) | lo);
  void (*entry)(void *) = (void (*)(void *))(((uintptr_t)ehi << 16 << 16) | elo);
  entry(arg);
}

static int uc_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  ucontext_t *uc = (ucontext_t *)ctx;
  if (getcontext(uc) != 0) return -1;
  uc->uc_stack.ss_sp = lo;
  uc->uc_stack.ss_size = size;
  uc->uc_link = NULL;
  uintptr_t a = (uintptr_t)arg, e = (uintptr_t)entry;
  makecontext(uc, (void (*)(void))start, 4, (unsigned)(a >> 16 >> 16), (unsigned)a,
              (unsigned)(e >> 16 >> 16), (unsigned)e);
  return 0;
}

static void uc_jump(void *from, void *to) { swapcontext((ucontext_t *)from, (ucontext_t *)to); }

const struct ko_backend ko_backend_ucontext = {
  .name = "ucontext",
  .ctx_size = sizeof(ucontext_t),
  .make = uc_make,
  .jump = uc_jump,
};

#else

const struct ko_backend ko_backend_ucontext = {
  .name = "ucontext",
  .unavailable = "this C library has no ucontext (swapcontext) support",
};

#endif
