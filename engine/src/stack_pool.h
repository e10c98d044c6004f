/*
 * stack_pool.h - the pool of freed stacks, one for both platforms
 * (stack_pool.c). stack.c and stack_win.c make and unmap stacks; the pool
 * only keeps them, and asks the platform file to unmap what it drops.
 */
#ifndef KO_STACK_POOL_H
#define KO_STACK_POOL_H

#include "stack.h"

/* A free stack of exactly this shape (`size` usable bytes in a mapping of
 * `map_size`) moved into *s: 1, or 0 when there is none. */
int ko_stack_pool_take(ko_stack *s, size_t size, size_t map_size);
/* Keeps *s for reuse: 1, or 0 when the pool is full (the caller unmaps it). */
int ko_stack_pool_put(const ko_stack *s);
/* The platform's: gives a stack's mapping back to the OS. */
void ko_stack_unmap(ko_stack *s);

#endif
