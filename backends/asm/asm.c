/*
 * asm.c - the asm backend: korutin's own context switch.
 *
 * The switch lives in one assembly file per ABI (switch_<arch>_<abi>_<fmt>.S);
 * the build picks the one for the target. Each exports the same two
 * functions, so this file is the same for all of them. A context is just
 * the saved stack pointer.
 */
#include "backend.h"
#include "stack.h"

#ifdef KO_ASM_SWITCH

void *ko_asm_jump(void **from, void **to, void *value);

#ifdef _WIN32
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

const struct ko_backend ko_backend_asm = {
  .name = "asm",
  .flags = KO_BACKEND_COPYABLE,
  .ctx_size = sizeof(void *),
  .make = asm_make,
  .jump = (void *(*)(void *, void *, void *))ko_asm_jump,
};

#else

const struct ko_backend ko_backend_asm = {
  .name = "asm",
  .unavailable = "no switch_*.S for this CPU/ABI was built into this binary",
};

#endif
