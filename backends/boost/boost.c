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

#if defined(__x86_64__) && defined(__ELF__) && !defined(KO_BOOST_C_JUMP)
/* b_jump in assembly, for one reason: it must not end in `ret`. The call of
 * jump_fcontext pushes a return-stack entry that the switch never pops, so
 * a `ret` after the switch is mispredicted every time (~8 ns here); a `pop`
 * and an indirect `jmp` go through the branch target predictor instead,
 * which learns the two call sites of a ping-pong. The hop lives in the
 * suspended side's frame until the receiver has read it.
 *
 *   rsp+0  from      the sender's bctx (the receiver stores its fctx there)
 *   rsp+8  to
 *   rsp+16 value
 *   rsp+24 the return address into the engine's caller (the engine tail-
 *          calls this, so rsp is 16-byte aligned at the call below)
 */
void *ko_boost_jump(void *from, void *to, void *value);
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".type ko_boost_jump,@function\n"
    "ko_boost_jump:\n"
    "  subq $24, %rsp\n"
    "  movq %rdi, 0(%rsp)\n"
    "  movq %rsi, 8(%rsp)\n"
    "  movq %rdx, 16(%rsp)\n"
    "  movq (%rsi), %rdi\n"         /* to->fctx */
    "  movq %rsp, %rsi\n"           /* &hop */
    "  call jump_fcontext@PLT\n"    /* rax: the sender's fctx, rdx: its hop */
    "  movq 0(%rdx), %rcx\n"
    "  movq %rax, (%rcx)\n"         /* back->from->fctx = t.fctx */
    "  movq 16(%rdx), %rax\n"       /* back->value */
    "  addq $24, %rsp\n"
    "  popq %rcx\n"
    "  jmp *%rcx\n"
    ".size ko_boost_jump, .-ko_boost_jump\n");
#define b_jump ko_boost_jump
#else
static void *b_jump(void *from, void *to, void *value) {
  hop h = { (bctx *)from, (bctx *)to, value };
  transfer_t t = jump_fcontext(h.to->fctx, &h);
  hop *back = (hop *)t.data;
  back->from->fctx = t.fctx;
  return back->value;
}
#endif

const struct ko_backend ko_backend_boost = {
  .name = "boost",
  .flags = KO_BACKEND_COPYABLE, /* only fctx matters in a back context */
  .ctx_size = sizeof(bctx),
  .make = b_make,
  .jump = b_jump,
  .resume = b_jump,
  .yield = b_jump,
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
