/*
 * backend.h - the one interface every switch backend implements.
 *
 * A backend knows how to start a context on a given stack and how to switch
 * between two contexts. It never allocates on the switch path, never passes
 * values (the engine does) and knows nothing of coroutines.
 *
 * A context is `ctx_size` bytes owned by the engine (16-byte aligned). Each
 * coroutine has two: its own, and a "back" context (`back_size` bytes) into
 * which ko_resume() saves whoever resumed it. A zero-filled context is a
 * valid "back" context.
 */
#ifndef KO_BACKEND_H
#define KO_BACKEND_H

#include <stddef.h>

#include "korutin.h" /* KO_BACKEND_MAP */

/* Each context runs on an OS thread of its own (the threads backend). */
#define KO_BACKEND_OWN_THREAD 1u
/* A copy of a back context holding a suspended resumer (its back_size
 * bytes: a saved stack pointer, an fcontext handle) is as good as the
 * original: the engine may move a resumer from one coroutine's
 * back context to another's (ko__transfer). */
#define KO_BACKEND_COPYABLE 2u

struct ko_backend {
  const char *name;
  unsigned flags;
  size_t ctx_size;
  /* The bytes of a back context that hold a suspended resumer, when fewer
   * than ctx_size (the engine reserves and copies only these); 0: all. */
  size_t back_size;
  /* NULL when usable; else why not (set by the build or by probe()). */
  const char *unavailable;
  /* The smallest stack this backend can start a context on, or NULL when
   * the engine's own minimum will do. */
  size_t (*min_stack)(void);
  /* Prepares `ctx` so that the first switch into it runs entry(arg) on the
   * stack [lo, lo + size). entry must never return. Returns 0 or ko_err. */
  int (*make)(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg);
  /* Saves the running context into `from` and continues in `to`, handing
   * it `value`: the jump() that `to` is suspended in returns `value`. This
   * one returns when some later jump() continues in `from`, with that
   * jump's value. The engine does all its bookkeeping before the switch and
   * calls jump() last (a tail call), so whatever a backend's jump returns
   * to after the switch is the engine's caller: a backend must not expect
   * anything of the engine to run after it. A new context ignores the
   * value of the jump that starts it. */
  void *(*jump)(void *from, void *to, void *value);
  /* jump() for the two directions the engine uses most, which a backend
   * may save differently (asm on x86-64 System V keeps a coroutine's
   * registers in its context and a resumer's on its stack); most set both
   * to jump(). resume(back, ctx, value) goes from whoever runs into a
   * coroutine's own context, saving the runner into a back context;
   * yield(ctx, back, value) goes back. jump() itself goes from one
   * coroutine's own context into another's (ko__transfer). */
  void *(*resume)(void *back, void *ctx, void *value);
  void *(*yield)(void *ctx, void *back, void *value);
  /* Releases what make() acquired (for a context that is not running).
   * A context suspended in jump() is never returned into: none of its
   * frames run again (the engine may destroy a coroutine suspended
   * mid-body, e.g. at a Node environment's teardown), and whatever the
   * context holds (an OS thread: it leaves from its wait straight back to
   * its start routine) is gone when destroy() returns. */
  void (*destroy)(void *ctx);
};

static inline size_t ko_backend_back_size(const struct ko_backend *be) {
  return be->back_size ? be->back_size : be->ctx_size;
}

/* Each backend folder defines one of these (even when not built: then with
 * `unavailable` set and the function pointers NULL). */
/* ko_backend_asm, ko_backend_boost...: one per row of KO_BACKEND_MAP. */
#define KO_XX(name) extern const struct ko_backend ko_backend_##name;
KO_BACKEND_MAP(KO_XX)
#undef KO_XX

#endif
