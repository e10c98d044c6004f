/*
 * stack.h - coroutine stacks: mmap'ed (stack.c; VirtualAlloc'ed on Windows,
 * stack_win.c), a guard region below, pooled.
 */
#ifndef KO_STACK_H
#define KO_STACK_H

#include <stddef.h>

typedef struct ko_stack {
  void *lo;          /* lowest usable byte */
  size_t size;       /* usable bytes */
  void *map;         /* the whole mapping, guard included; NULL if not ours */
  size_t map_size;
  unsigned vg_id;    /* valgrind's stack id */
  unsigned vmas;     /* mappings counted against vm.max_map_count (stack.c) */
} ko_stack;

/* A stack of at least `size` usable bytes with `guard` bytes of PROT_NONE
 * below it, from the pool when one of that shape is free. */
int ko_stack_alloc(ko_stack *s, size_t size, size_t guard);
/* Wraps a caller-supplied region (no guard, not pooled). */
void ko_stack_wrap(ko_stack *s, void *lo, size_t size);
/* Returns the stack to the pool, or unmaps it. */
void ko_stack_free(ko_stack *s);
size_t ko_page_size(void);
#ifdef _WIN32
/* The base of the reservation a stack whose lowest usable byte is `lo` lies
 * in, guard included (the TIB's DeallocationStack, as for a thread's own
 * stack), when a guard of that reservation lies right below `lo` (stacks
 * of stack_win.c); else `lo` itself (a caller's region). */
void *ko_stack_reservation(void *lo);
#endif
/* Forgets the last detail (ko_error_detail()); ko_create calls it first. */
void ko_error_detail_clear(void);
/* Says why the call under way fails (ko_error_detail() returns it). */
void ko_error_detail_set(const char *detail);

static inline size_t ko_round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

#endif
