/*
 * boost.c - the boost backend: Boost.Context's fcontext switch.
 *
 * Links libboost_context from the system (Debian: libboost-context-dev);
 * the build detects it and otherwise leaves this backend out with a reason.
 * fcontext hands the suspended side's handle to the side it switches to, so
 * every jump carries a small record telling the receiver where to store it
 * and the value it passes.
 *
 * The engine tail-calls b_jump, and jump_fcontext returns to the one call
 * site below in every context, so the CPU's return predictor is right about
 * that return; b_jump's own return lands in the engine's caller.
 */
#include "backend.h"

#if defined(KO_HAVE_BOOST)

#include <stddef.h>

/* Boost.Context's C-linkage entry points (boost/context/detail/fcontext.hpp). */
typedef void *fcontext_t;
typedef struct { fcontext_t fctx; void *data; } transfer_t;
extern transfer_t jump_fcontext(fcontext_t const to, void *vp);
extern fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

typedef struct bctx {
  fcontext_t fctx;
  void (*entry)(void *);
  void *arg;
} bctx;

typedef struct hop { bctx *from, *to; void *value; } hop;

static void start(transfer_t t) {
  hop *h = (hop *)t.data;
  h->from->fctx = t.fctx;
  bctx *self = h->to;
  self->entry(self->arg);
}

static int b_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  bctx *c = (bctx *)ctx;
  c->entry = entry;
  c->arg = arg;
  c->fctx = make_fcontext((char *)lo + size, size, start);
  return c->fctx ? 0 : -1;
}

static void *b_jump(void *from, void *to, void *value) {
  hop h = { (bctx *)from, (bctx *)to, value };
  transfer_t t = jump_fcontext(h.to->fctx, &h);
  hop *back = (hop *)t.data;
  back->from->fctx = t.fctx;
  return back->value;
}

const struct ko_backend ko_backend_boost = {
  .name = "boost",
  .flags = KO_BACKEND_COPYABLE, /* only fctx matters in a back context */
  .ctx_size = sizeof(bctx),
  .make = b_make,
  .jump = b_jump,
};

#else

#ifndef KO_BOOST_MISSING
#define KO_BOOST_MISSING "Boost.Context was not found for this target when this binary was configured (install libboost-context-dev for it)"
#endif

const struct ko_backend ko_backend_boost = {
  .name = "boost",
  .unavailable = KO_BOOST_MISSING,
};

#endif
