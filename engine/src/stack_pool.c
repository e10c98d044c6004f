/*
 * stack_pool.c - freed stacks wait here for reuse (see stack_pool.h).
 *
 * At most pool_max (64 unless ko_stack_pool_limit says otherwise) are kept,
 * of any shape; ko_stack_alloc takes one of the exact shape it would map.
 * A pooled stack keeps its own header in its lowest usable bytes, so the
 * pool allocates nothing.
 */
#include "stack_pool.h"
#include "korutin.h"

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
static SRWLOCK pool_lock = SRWLOCK_INIT;
static void lock(void) { AcquireSRWLockExclusive(&pool_lock); }
static void unlock(void) { ReleaseSRWLockExclusive(&pool_lock); }
#else
#include <pthread.h>
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static void lock(void) { pthread_mutex_lock(&pool_lock); }
static void unlock(void) { pthread_mutex_unlock(&pool_lock); }
#endif

typedef struct pooled { ko_stack s; struct pooled *next; } pooled;

static pooled *pool; /* free stacks, chained through their lo */
static size_t pool_count;
static size_t pool_max = 64;

int ko_stack_pool_take(ko_stack *s, size_t size, size_t map_size) {
  lock();
  for (pooled **pp = &pool, *p = pool; p; pp = &p->next, p = p->next) {
    if (p->s.size == size && p->s.map_size == map_size) {
      *pp = p->next;
      pool_count--;
      unlock();
      *s = p->s;
      return 1;
    }
  }
  unlock();
  return 0;
}

int ko_stack_pool_put(const ko_stack *s) {
  lock();
  if (pool_count >= pool_max) {
    unlock();
    return 0;
  }
  pooled *p = (pooled *)s->lo;
  p->s = *s;
  p->next = pool;
  pool = p;
  pool_count++;
  unlock();
  return 1;
}

size_t ko_stack_pool_limit(size_t max) {
  lock();
  size_t old = pool_max;
  pool_max = max;
  pooled *drop = NULL;
  while (pool_count > pool_max) {
    pooled *p = pool;
    pool = p->next;
    pool_count--;
    p->next = drop;
    drop = p;
  }
  unlock();
  while (drop) { /* unmapped outside the lock */
    pooled *next = drop->next;
    ko_stack s = drop->s;
    ko_stack_unmap(&s);
    drop = next;
  }
  return old;
}

/* The pool belongs to this copy of the library: when it is unloaded (Node
 * unloads an addon loaded only by Workers once the last of them is gone),
 * nothing would find its stacks again, so they are unmapped then (and at
 * exit). The pool stays usable: a stack freed later is pooled as before. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((destructor)) static void drain_pool_at_unload(void) {
  lock();
  size_t max = pool_max;
  unlock();
  ko_stack_pool_limit(0);
  ko_stack_pool_limit(max);
}
#endif
