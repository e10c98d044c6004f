/*
 * threads_win.c - the threads backend on Windows (threads.c is the POSIX
 * one; the build takes one of the two, engine/sources.json lists threads.c).
 *
 * As on POSIX, each context is an OS thread that runs on the coroutine's own
 * stack, and a switch hands a baton over (here with WaitOnAddress and
 * WakeByAddressSingle, the futex of Windows: no kernel object per context,
 * so a zero-filled back context needs nothing either).
 *
 * winpthreads (mingw-w64's pthread) is not enough: its pthread_create takes
 * a stack size but ignores pthread_attr_setstack's address, and no Win32
 * call starts a thread on a caller's stack. So the thread starts on a small
 * stack of its own (64 KiB reserved), and its start routine moves onto the
 * coroutine's stack: it gives the TIB that stack's bounds (StackBase,
 * StackLimit, DeallocationStack; an empty ExceptionList, as the asm switch
 * does for a new context) and jumps to the entry with a null return address
 * above it, where stack walks end. A dying context leaves the coroutine's
 * stack with __builtin_longjmp (no SEH unwinding, which msvcrt's longjmp
 * would do through the abandoned frames) back to the start routine, which
 * restores the thread's own TIB fields before the thread exits (ExitThread
 * frees the stack DeallocationStack names).
 *
 * A new context starts with the x87 control word and MXCSR of the thread
 * that made it, as with the asm switch (a new Windows thread would get the
 * system's defaults: 53-bit x87 precision, where mingw's startup code sets
 * 64-bit).
 */
#include "backend.h"
#include "stack.h"

#include <stdint.h>
#include <string.h>

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

typedef struct tib_stack {
  void *except, *base, *limit, *dealloc;
} tib_stack;

typedef struct tctx {
  volatile LONG baton;      /* 1: this context may run */
  int dying;
  int has_thread;
  HANDLE thread;
  void (*entry)(void *);
  void *arg;
  void *value;              /* handed in by the jump that wakes this one */
  void *lo, *top, *dealloc; /* the coroutine's stack */
  unsigned mxcsr;
  unsigned short x87cw;
  tib_stack own;            /* the thread's own stack, while on the other */
  intptr_t leave[5];        /* __builtin_setjmp's buffer */
} tctx;

static void wait_baton(tctx *c) {
  LONG zero = 0;
  while (InterlockedCompareExchange(&c->baton, 0, 0) == 0) WaitOnAddress(&c->baton, &zero, sizeof zero, INFINITE);
}

static void pass_baton(tctx *c) {
  InterlockedExchange(&c->baton, 1);
  WakeByAddressSingle((PVOID)&c->baton);
}


/* The TIB's stack fields (ExceptionList, StackBase, StackLimit, then the
 * TEB's DeallocationStack), read and written through the segment register
 * (mingw's __readgsqword trips GCC 12's -Warray-bounds). */
#if defined(_WIN64)
#define TIB_GET(off, v) __asm__ volatile("movq %%gs:" #off ", %0" : "=r"(v))
#define TIB_SET(off, v) __asm__ volatile("movq %0, %%gs:" #off : : "r"(v) : "memory")
#define TIB_FIELDS(X) X(0x00, except) X(0x08, base) X(0x10, limit) X(0x1478, dealloc)
#else
#define TIB_GET(off, v) __asm__ volatile("movl %%fs:" #off ", %0" : "=r"(v))
#define TIB_SET(off, v) __asm__ volatile("movl %0, %%fs:" #off : : "r"(v) : "memory")
#define TIB_FIELDS(X) X(0x00, except) X(0x04, base) X(0x08, limit) X(0xE0C, dealloc)
#endif
#define GET_ONE(off, f) TIB_GET(off, t->f);
#define SET_ONE(off, f) TIB_SET(off, t->f);
static void tib_get(tib_stack *t) { TIB_FIELDS(GET_ONE) }
static void tib_set(const tib_stack *t) { TIB_FIELDS(SET_ONE) }

/* Continues on the coroutine's stack in entry(arg), never to come back. */
__attribute__((noinline, noreturn)) static void run_on_stack(tctx *c) {
  tib_stack co = {(void *)~(uintptr_t)0, c->top, c->lo, c->dealloc};
  tib_get(&c->own);
  __asm__ volatile("fldcw %0\n\tldmxcsr %1" : : "m"(c->x87cw), "m"(c->mxcsr));
  tib_set(&co);
#if defined(_WIN64)
  /* entry's return address (null) at sp, its 32 bytes of home space above,
   * sp = 8 mod 16 as after a call. */
  __asm__ volatile("leaq -0x28(%%rax), %%rsp\n\t"
                   "movq $0, (%%rsp)\n\t"
                   "jmpq *%%rdx"
                   : : "a"(c->top), "d"(c->entry), "c"(c->arg) : "memory");
#else
  /* cdecl: the null return address, then the argument, 16-byte aligned. */
  __asm__ volatile("leal -0x14(%%eax), %%esp\n\t"
                   "movl %%ecx, 4(%%esp)\n\t"
                   "movl $0, (%%esp)\n\t"
                   "jmp *%%edx"
                   : : "a"(c->top), "d"(c->entry), "c"(c->arg) : "memory");
#endif
  __builtin_unreachable();
}

static DWORD WINAPI thread_main(LPVOID p) {
  tctx *c = (tctx *)p;
  wait_baton(c);
  if (!c->dying) {
    if (__builtin_setjmp(c->leave) == 0) run_on_stack(c);
    tib_set(&c->own); /* back on our own stack: see t_jump */
  }
  return 0;
}

static int t_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  tctx *c = (tctx *)ctx;
  memset(c, 0, sizeof *c);
  c->entry = entry;
  c->arg = arg;
  c->lo = lo;
  c->top = (void *)(((uintptr_t)lo + size) & ~(uintptr_t)15);
  c->dealloc = ko_stack_reservation(lo);
  __asm__ volatile("fnstcw %0\n\tstmxcsr %1" : "=m"(c->x87cw), "=m"(c->mxcsr));
  c->thread = CreateThread(NULL, 64 * 1024, thread_main, c, STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
  if (!c->thread) return -2; /* KO_ENOMEM */
  c->has_thread = 1;
  return 0;
}

static void *t_jump(void *from, void *to, void *value) {
  tctx *f = (tctx *)from, *t = (tctx *)to;
  InterlockedExchange(&f->baton, 0);
  t->value = value;
  pass_baton(t);
  wait_baton(f);
  if (f->dying) __builtin_longjmp(f->leave, 1);
  return f->value;
}

static void t_destroy(void *ctx) {
  tctx *c = (tctx *)ctx;
  if (!c->has_thread) return;
  c->dying = 1;
  pass_baton(c);
  WaitForSingleObject(c->thread, INFINITE);
  CloseHandle(c->thread);
  c->has_thread = 0;
}

const struct ko_backend ko_backend_threads = {
  .name = "threads",
  .flags = KO_BACKEND_OWN_THREAD,
  .ctx_size = sizeof(tctx),
  .make = t_make,
  .jump = t_jump,
  .resume = t_jump,
  .yield = t_jump,
  .destroy = t_destroy,
};
