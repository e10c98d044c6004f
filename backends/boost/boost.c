/*
 * boost.c - the boost backend: Boost.Context's fcontext switch.
 *
 * Links libboost_context from the system (Debian: libboost-context-dev);
 * the build detects it and otherwise leaves this backend out with a reason.
 * fcontext hands the suspended side's handle to the side it switches to, so
 * every jump carries a small record telling the receiver where to store it
 * and the value it passes.
 *
 * The engine tail-calls the switch, and jump_fcontext lands at one place
 * in it in every context; the switch then returns straight into the
 * engine's caller (on x86-64 ELF, in assembly, so that this keeps the
 * CPU's return predictor in step: see below).
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
/* The switch in assembly, to keep the CPU's return-address predictor (a
 * stack of the addresses `call`s pushed) in step across it:
 * - jump_fcontext is entered with a pushed return address and a `jmp`, not
 *   a `call`: it leaves with an indirect jump to that address, so a call's
 *   entry would never be popped. Its jump lands at 1: below in every
 *   context, one target the branch predictor always gets right.
 * - back in the engine's caller: ko_boost_switch (resume and yield, whose
 *   two sides are at different call sites) pops the return address and
 *   jumps, as a `ret` would miss every time; ko_boost_jump (a transfer
 *   between tasks, usually suspended at the same call site) uses `ret`
 *   when the sender's return address is the receiver's, which is then
 *   predicted right and pops the entry the caller's `call` pushed (see
 *   the asm backend's switch_x86_64_sysv_elf.S for the figures).
 * The hop lives in the suspended side's frame until the receiver has read it:
 *
 *   rsp+0  from      the sender's bctx (the receiver stores its fctx there)
 *   rsp+8  to
 *   rsp+16 value
 *   rsp+24 the sender's return address into the engine's caller
 *   rsp+32 (padding: rsp is 16-byte aligned where a call would have been)
 *   rsp+40 that return address (the engine tail-calls these)
 */
void *ko_boost_jump(void *from, void *to, void *value);
void *ko_boost_switch(void *from, void *to, void *value);
#define KO_BOOST_SWITCH(name, leave)                                                    \
  __asm__(".text\n"                                                                      \
          ".p2align 4\n"                                                                 \
          ".type " #name ",@function\n" #name ":\n"                                     \
          "  subq $40, %rsp\n"                                                           \
          "  movq %rdi, 0(%rsp)\n"                                                       \
          "  movq %rsi, 8(%rsp)\n"                                                       \
          "  movq %rdx, 16(%rsp)\n"                                                      \
          "  movq 40(%rsp), %rax\n"                                                      \
          "  movq %rax, 24(%rsp)\n"                                                      \
          "  movq (%rsi), %rdi\n"       /* to->fctx */                                   \
          "  movq %rsp, %rsi\n"         /* &hop */                                       \
          "  leaq 1f(%rip), %rax\n"                                                      \
          "  pushq %rax\n"                                                               \
          "  jmp jump_fcontext@PLT\n"                                                    \
          "1:\n"                        /* rax: the sender's fctx, rdx: its hop */       \
          "  movq 0(%rdx), %rcx\n"                                                       \
          "  movq %rax, (%rcx)\n"       /* back->from->fctx = t.fctx */                  \
          "  movq 16(%rdx), %rax\n"     /* back->value */                                \
          "  addq $40, %rsp\n" leave ".size " #name ", .-" #name "\n")
#define KO_BOOST_LEAVE_JMP "  popq %rcx\n  jmp *%rcx\n"
#define KO_BOOST_LEAVE_RET "  movq 24(%rdx), %rcx\n  cmpq (%rsp), %rcx\n  jne 2f\n  ret\n2:  popq %rcx\n  jmp *%rcx\n"
KO_BOOST_SWITCH(ko_boost_jump, KO_BOOST_LEAVE_RET);
KO_BOOST_SWITCH(ko_boost_switch, KO_BOOST_LEAVE_JMP);
#define b_jump ko_boost_jump
#define b_switch ko_boost_switch
#else
static void *b_jump(void *from, void *to, void *value) {
  hop h = { (bctx *)from, (bctx *)to, value };
  transfer_t t = jump_fcontext(h.to->fctx, &h);
  hop *back = (hop *)t.data;
  back->from->fctx = t.fctx;
  return back->value;
}
#define b_switch b_jump
#endif

const struct ko_backend ko_backend_boost = {
  .name = "boost",
  .flags = KO_BACKEND_COPYABLE, /* only fctx matters in a back context */
  .ctx_size = sizeof(bctx),
  .make = b_make,
  .jump = b_jump,
  .resume = b_switch,
  .yield = b_switch,
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
