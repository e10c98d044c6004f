/*
 * asm.c - the asm backend: korutin's own context switch.
 *
 * The switch lives in one assembly file per ABI (switch_<arch>_<abi>_<fmt>.S);
 * the build picks the one for the target. Each exports ko_asm_jump and
 * ko_asm_make. Most keep the switched-out state on the coroutine's stack, and
 * a context is just the saved stack pointer; x86-64 System V keeps the state
 * in the context and the resumer's on the resumer's stack (that file says
 * why), so it exports a resume and a yield too, its context is larger and
 * its make fills it.
 */
#include "backend.h"
#include "stack.h"

#ifdef KO_ASM_SWITCH

void *ko_asm_jump(void *from, void *to, void *value);

#if defined(__x86_64__) && !defined(_WIN32)
/* switch_x86_64_sysv_elf.S: a coroutine context holds rip, rsp, six
 * registers, MXCSR and the x87 CW; a resumer is saved on its own stack. */
#define KO_ASM_CTX_SIZE 80
void *ko_asm_resume(void *back, void *ctx, void *value);
void *ko_asm_yield(void *ctx, void *back, void *value);
#define KO_ASM_RESUME ko_asm_resume
#define KO_ASM_YIELD ko_asm_yield
void ko_asm_make(void *ctx, void *top, void *lo, void (*entry)(void *), void *arg);

static int asm_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  ko_asm_make(ctx, (char *)lo + size, lo, entry, arg);
  return 0;
}
#elif defined(_WIN32)
/* The Windows switch files keep the TIB's stack fields per context and
 * take one more argument: the stack's DeallocationStack (the base of the
 * reservation it lies in, guard included, as for a thread's own stack). */
void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg, void *dealloc);

static int asm_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  *(void **)ctx = ko_asm_make((char *)lo + size, lo, entry, arg, ko_stack_reservation(lo));
  return 0;
}
#else
void *ko_asm_make(void *top, void *lo, void (*entry)(void *), void *arg);

static int asm_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  *(void **)ctx = ko_asm_make((char *)lo + size, lo, entry, arg);
  return 0;
}
#endif

#ifndef KO_ASM_CTX_SIZE
#define KO_ASM_CTX_SIZE sizeof(void *) /* the saved stack pointer */
#define KO_ASM_RESUME ko_asm_jump     /* the same switch both ways */
#define KO_ASM_YIELD ko_asm_jump
#endif

const struct ko_backend ko_backend_asm = {
  .name = "asm",
  .flags = KO_BACKEND_COPYABLE,
  .ctx_size = KO_ASM_CTX_SIZE,
  .back_size = sizeof(void *), /* a resumer is a saved stack pointer on every ABI */
  .make = asm_make,
  .jump = ko_asm_jump,
  .resume = KO_ASM_RESUME,
  .yield = KO_ASM_YIELD,
};

#else

const struct ko_backend ko_backend_asm = {
  .name = "asm",
  .unavailable = "no switch_*.S for this CPU/ABI was built into this binary",
};

#endif
