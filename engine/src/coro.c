/*
 * coro.c - coroutine objects on top of a backend.
 *
 * A coroutine's record lives at the top of its own stack, so creating one
 * costs one mapping (or one pooled stack) and nothing else:
 *
 *   lo                                                            top
 *   | guard | ..... stack grows down ..... | cold | ko_coro | ctx | back | gap |
 *
 * `ctx` is the coroutine's backend context, `back` the context of whoever
 * resumed it. What a switch touches (ko_coro, ctx and back: 128 bytes with
 * the asm backend on x86-64, whose ctx holds the registers and whose back
 * is a stack pointer; 64 where a ctx is a stack pointer too) lies in one
 * 128-byte-aligned pair of cache lines, which the L2 fetches together; what
 * a switch does not touch lives in `cold`, just below. The switch path
 * allocates nothing.
 *
 * Stacks are whole pages, so without care every coroutine's record and
 * top frames would sit at the same offset in a page, and so in the same
 * few sets of the caches (the L1's sets are chosen by the offset in the
 * page alone, the L2's partly). Round-robin over 1,024 coroutines then
 * thrashed a sliver of the L2: 26-29 ns per round trip on x86-64, against
 * 9.4 ns for one coroutine. Each new record is therefore moved down by a
 * "colour" (`gap`, above the record), one of COLOURS steps of COLOUR_STEP
 * bytes in turn: 12-13 ns (korutin-bench: 36 M -> 80 M round trips/s; at
 * 16,384 coroutines, where TLB misses dominate, 30-34 M either way). Steps
 * of 512 B to 1 KiB measured alike; 512 B keeps a record and the first
 * frames in the stack's top page even with Windows' larger frames (with
 * 1 KiB steps the selfcheck's RSS-leak test grew past its slack there).
 *
 * One way through a switch, for every backend: ko_resume() and ko_yield()
 * end in a tail call of the backend's resume() or yield(), which carries a
 * value into the other side's pending call. The side that switches away does the
 * bookkeeping for the side it wakes (hand_back), so nothing of the engine
 * runs after a switch and no engine frame is returned into across one: the
 * jump returns straight to ko_resume's or ko_yield's caller. (A backend
 * whose switch is a C function, like boost's, still returns across the
 * switch once; the asm backend leaves with a jump and not even that.)
 *
 * Two things need work after each switch and so take the "after" path,
 * which returns into resume_after()/yield_after(): ASan builds (fiber
 * switch annotations), and backends whose contexts are threads of their own
 * (KO_BACKEND_OWN_THREAD: `current` is per OS thread, so it must be set on
 * the thread that wakes up). It is chosen by that flag, never by name
 * (AFTER below).
 */
#include "korutin.h"
#include "backend.h"
#include "stack.h"
#include "transfer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define KO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KO_ASAN 1
#endif
#endif

#ifdef KO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* The hot part: 32 bytes, then the two contexts. */
struct ko_coro {
  const ko_backend *be;
  void **out;               /* where the resumer wants the value */
  ko_coro *parent;          /* the resumer, while it runs */
  ko_state state;
  unsigned back_off;        /* offset of `back` from ctx */
  _Alignas(16) unsigned char ctx[];
};

/* The cold part, just below the hot one. */
typedef struct cold {
  ko_fn fn;
  void *arg;
  ko_stack stack;
  int owns_stack;
  const void *back_lo;      /* resumer's stack, for ASan */
  size_t back_size;
  void *fake_stack;         /* ASan's fake stack of this coroutine */
  int started;              /* its body was entered */
  int dying;                /* ASan: switched in only to drop its fake stack */
  void *data;               /* ko_set_data() */
} cold;

#define COLD(co) ((cold *)(co) - 1)

/* Colours: how far below its stack's top a record is moved (see the top). */
#define COLOURS 4
#define COLOUR_STEP 512
#define BACK(co) ((void *)((co)->ctx + (co)->back_off))

/* Initial-exec TLS: one load off the thread pointer instead of a call to
 * __tls_get_addr when built into a shared object (the Node addon). */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define KO_TLS __thread __attribute__((tls_model("initial-exec")))
#else
#define KO_TLS _Thread_local
#endif
static KO_TLS ko_coro *current;
static KO_TLS unsigned next_colour; /* ko_create's, in turn */

/* The "after" path (see the top of this file). */
#define BE(co) ((co)->be)
#ifdef KO_ASAN
#define AFTER(co) 1
#else
#define AFTER(co) (BE(co)->flags & KO_BACKEND_OWN_THREAD)
#endif

/* Leaving a coroutine: what ko_resume() would do on its return. */
static inline void hand_back(ko_coro *co, void *value) {
  ko_coro *parent = co->parent;
  current = parent;
  if (parent) parent->state = KO_RUNNING;
  if (co->out) *co->out = value;
}

#define ALIGN_UP(n, a) (((n) + (a) - 1) & ~(size_t)((a) - 1))

/* Sanitizer bookkeeping; compiled out unless built with ASan. A backend
 * whose contexts own OS threads needs none. */
static inline void asan_start(const ko_coro *co, void **save, const void *lo, size_t size) {
#ifdef KO_ASAN
  if (!(BE(co)->flags & KO_BACKEND_OWN_THREAD)) __sanitizer_start_switch_fiber(save, lo, size);
#else
  (void)co, (void)save, (void)lo, (void)size;
#endif
}

static inline void asan_finish(const ko_coro *co, void *save, const void **lo, size_t *size) {
#ifdef KO_ASAN
  if (!(BE(co)->flags & KO_BACKEND_OWN_THREAD)) __sanitizer_finish_switch_fiber(save, lo, size);
#else
  (void)co, (void)save, (void)lo, (void)size;
#endif
}

static void co_main(void *p) {
  ko_coro *co = (ko_coro *)p;
  cold *c = COLD(co);
  asan_finish(co, NULL, &c->back_lo, &c->back_size);
  c->started = 1;
  current = co;
  void *result = c->fn(co, c->arg);
  co->state = KO_DONE;
  if (AFTER(co)) {
    /* NULL: this fiber ends, ASan may drop its fake stack. */
    asan_start(co, NULL, c->back_lo, c->back_size);
    BE(co)->yield(co->ctx, BACK(co), result);
  } else {
    hand_back(co, result);
    BE(co)->yield(co->ctx, BACK(co), NULL);
  }
  abort(); /* a dead coroutine is never switched to */
}

/* Why the last call on this thread failed, when the code alone does not say
 * (stack.c: the mapping budget). */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define KO_DETAIL_TLS __thread __attribute__((tls_model("initial-exec")))
#else
#define KO_DETAIL_TLS _Thread_local
#endif
static KO_DETAIL_TLS const char *error_detail;

const char *ko_error_detail(void) { return error_detail; }
void ko_error_detail_clear(void) { error_detail = NULL; }
void ko_error_detail_set(const char *detail) { error_detail = detail; }

int ko_create(ko_coro **out, const ko_options *opt, ko_fn fn, void *arg) {
  ko_options def = {0};
  ko_error_detail_clear();
  if (!opt) opt = &def;
  if (out) *out = NULL;
  if (!out || !fn) return KO_EINVAL;
  const ko_backend *be = opt->backend ? opt->backend : ko_backend_default();
  if (!be || be->unavailable) return KO_EBACKEND;

  size_t ctx_size = ALIGN_UP(be->ctx_size, 16);
  size_t hot = sizeof(ko_coro) + ctx_size + ALIGN_UP(ko_backend_back_size(be), 16);
  size_t record = ALIGN_UP(sizeof(cold) + hot, 128) + 128;
  /* A coroutine on an OS thread of its own switches in microseconds, and
   * its thread's stack is not this one: no colour. */
  size_t colours = be->flags & KO_BACKEND_OWN_THREAD ? 1 : COLOURS;
  size_t gap = (size_t)(next_colour++ % colours) * COLOUR_STEP;
  size_t size = opt->stack_size ? opt->stack_size : KO_DEFAULT_STACK_SIZE;
  if (size < KO_MIN_STACK_SIZE) return KO_EINVAL;
  size_t backend_min = be->min_stack ? be->min_stack() : 0;
  if (!opt->stack && size < backend_min) size = backend_min; /* e.g. glibc's thread minimum */

  ko_stack st;
  if (opt->stack) {
    /* Backends and tools (ASan's thread stacks) expect an aligned bottom. */
    uintptr_t lo = ALIGN_UP((uintptr_t)opt->stack, 16);
    size -= lo - (uintptr_t)opt->stack;
    if (size < KO_MIN_STACK_SIZE || size < backend_min) return KO_EINVAL;
    ko_stack_wrap(&st, (void *)lo, size);
    if (size - gap < KO_MIN_STACK_SIZE + record || size - gap < backend_min + record) gap = 0;
  } else {
    size_t guard = opt->guard_size ? opt->guard_size : ko_page_size();
    int err = ko_stack_alloc(&st, size + record + (colours - 1) * COLOUR_STEP, guard); /* one size: pooled */
    if (err) return err;
  }
  uintptr_t top = (uintptr_t)st.lo + st.size - gap;
  ko_coro *co = (ko_coro *)((top - hot) & ~(uintptr_t)127);
  cold *c = COLD(co);
  memset(c, 0, sizeof *c + hot);
  co->be = be;
  co->state = KO_SUSPENDED;
  co->back_off = (unsigned)ctx_size;
  c->fn = fn;
  c->arg = arg;
  c->owns_stack = !opt->stack;
  c->stack = st;

  size_t usable = ((uintptr_t)c & ~(uintptr_t)15) - (uintptr_t)st.lo;
  int err = be->make(co->ctx, st.lo, usable, co_main, co);
  if (err) {
    ko_stack_free(&st); /* not &c->stack: the record lies in the stack it frees */
    return err < 0 ? err : KO_ENOMEM;
  }
  *out = co;
  return KO_OK;
}

/* The "after" path: switch, then finish the bookkeeping here. Kept out of
 * line so that ko_resume() and ko_yield() need no stack frame. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int resume_after(ko_coro *co, ko_coro *self, void *in, void **out) {
  void *fake = NULL;
#ifdef KO_ASAN
  asan_start(co, &fake, COLD(co)->stack.lo, COLD(co)->stack.size);
#endif
  void *value = BE(co)->resume(BACK(co), co->ctx, in);
  asan_finish(co, fake, NULL, NULL);
  current = self;
  if (self) self->state = KO_RUNNING;
  if (out) *out = value;
  return KO_OK;
}

int ko_resume(ko_coro *co, void *in, void **out) {
  if (!co) return KO_EINVAL;
  if (co->state != KO_SUSPENDED) return co->state == KO_DONE ? KO_EDONE : KO_EBUSY;
  ko_coro *self = current;
  if (self) self->state = KO_NORMAL;
  co->state = KO_RUNNING;
  if (AFTER(co)) return resume_after(co, self, in, out);
  co->parent = self;
  co->out = out;
  current = co;
  /* A tail call: the coroutine switches back straight to our caller with
   * a null value, after doing hand_back() for us. The jump is called as
   * returning int so that the compiler need not truncate its result after
   * it (which would cost the tail call): on every ABI korutin supports an
   * int comes back in the low part of the pointer return register, so the
   * null value reads as KO_OK. */
  int (*jump_int)(void *, void *, void *) = (int (*)(void *, void *, void *))(void (*)(void))BE(co)->resume;
  return jump_int(BACK(co), co->ctx, in);
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void *yield_after(ko_coro *co, void *out) {
#ifdef KO_ASAN
  cold *c = COLD(co);
  asan_start(co, &c->fake_stack, c->back_lo, c->back_size);
#endif
  void *in = BE(co)->yield(co->ctx, BACK(co), out);
#ifdef KO_ASAN
  asan_finish(co, c->fake_stack, &c->back_lo, &c->back_size);
  if (c->dying) { /* see ko_destroy: drop the fake stack and go straight back */
    asan_start(co, NULL, c->back_lo, c->back_size);
    BE(co)->yield(co->ctx, BACK(co), NULL);
  }
#endif
  current = co;
  return in;
}

void *ko_yield(void *out) {
  ko_coro *co = current;
  if (!co) return NULL;
  co->state = KO_SUSPENDED;
  if (AFTER(co)) return yield_after(co, out);
  hand_back(co, out);
  /* A tail call: the next ko_resume() lands in our caller with its `in`. */
  return BE(co)->yield(co->ctx, BACK(co), NULL);
}

int ko__can_transfer(const ko_backend *be) {
#ifdef KO_ASAN
  (void)be;
  return 0;
#else
  return (be->flags & KO_BACKEND_COPYABLE) && !(be->flags & KO_BACKEND_OWN_THREAD);
#endif
}

void *ko__transfer(ko_coro *to, void *value) {
  ko_coro *co = current;
  co->state = KO_SUSPENDED;
  to->state = KO_RUNNING;
  to->parent = co->parent;
  to->out = co->out;
  /* the resumer (KO_BACKEND_COPYABLE), a word or a few */
  void **dst = (void **)BACK(to), **src = (void **)BACK(co);
  for (size_t i = 0, n = ko_backend_back_size(BE(co)) / sizeof(void *); i < n; i++) dst[i] = src[i];
  current = to;
  /* A tail call, as in ko_yield(): whoever wakes co does its bookkeeping. */
  return BE(co)->jump(co->ctx, to->ctx, value);
}

ko_coro *ko_current(void) { return current; }
ko_state ko_status(const ko_coro *co) { return co->state; }
void *ko_get_data(const ko_coro *co) { return COLD(co)->data; }
void ko_set_data(ko_coro *co, void *data) { COLD(co)->data = data; }
const ko_backend *ko_coro_backend(const ko_coro *co) { return BE(co); }

void ko_coro_stack(const ko_coro *co, void **lo, size_t *size) {
  const cold *c = COLD(co);
  if (lo) *lo = c->stack.lo;
  if (size) *size = (size_t)(((uintptr_t)c & ~(uintptr_t)15) - (uintptr_t)c->stack.lo);
}

int ko_destroy(ko_coro *co) {
  if (!co) return KO_EINVAL;
  if (co->state == KO_RUNNING || co->state == KO_NORMAL) return KO_EBUSY;
#ifdef KO_ASAN
  /* A coroutine suspended in ko_yield owns an ASan fake stack (with
   * detect_stack_use_after_return) that only it can free: switch in once
   * more; ko_yield sees `dying`, frees it and switches straight back. */
  cold *c = COLD(co);
  if (co->state == KO_SUSPENDED && c->started && !(BE(co)->flags & KO_BACKEND_OWN_THREAD)) {
    void *fake = NULL;
    c->dying = 1;
    asan_start(co, &fake, c->stack.lo, c->stack.size);
    BE(co)->resume(BACK(co), co->ctx, NULL);
    asan_finish(co, fake, NULL, NULL);
  }
#endif
  if (BE(co)->destroy) BE(co)->destroy(co->ctx);
  ko_stack st = COLD(co)->stack;
#ifdef KO_ASAN
  /* Frames abandoned on this stack (a suspended coroutine, or the entry
   * frame of a finished one) leave their redzones poisoned; whoever uses
   * the memory next (the pool, or the caller who supplied it) must not
   * inherit that. */
  ASAN_UNPOISON_MEMORY_REGION(st.lo, st.size);
#endif
  ko_stack_free(&st);
  return KO_OK;
}

const char *ko_strerror(int err) {
  switch (err) {
#define KO_XX(name, value, text, js) \
  case KO_##name: return text;
    KO_ERRNO_MAP(KO_XX)
#undef KO_XX
    default: return "unknown error";
  }
}

const char *ko_err_name(int err) {
  switch (err) {
#define KO_XX(name, value, text, js) \
  case KO_##name: return #name;
    KO_ERRNO_MAP(KO_XX)
#undef KO_XX
    default: return NULL;
  }
}
