/*
 * stack.c - coroutine stacks.
 *
 * Each stack is one mapping: `guard` bytes at the bottom that fault when
 * touched, then the usable part. On Linux 6.13+ the guard is a guard region
 * (MADV_GUARD_INSTALL) inside the mapping, so a stack is a single VMA that
 * may even merge with its neighbours, and vm.max_map_count (65,530 by
 * default) stops limiting how many there can be; elsewhere the guard is a
 * PROT_NONE page, a VMA of its own. Pages are only touched when used, so a
 * large stack costs address space, not memory. The mapping size is kept off powers of two so
 * that the tops of neighbouring stacks do not all fall in the same cache
 * sets. Freed stacks wait in a small pool for reuse (the pool is guarded by a
 * mutex; it is never touched on the switch path).
 */
#include "stack.h"
#include "korutin.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>) && __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define KO_HAVE_VALGRIND 1
#endif
#endif

#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#if defined(__linux__) && !defined(MADV_GUARD_INSTALL)
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static ko_stack *pool;          /* free stacks, chained through their lo */
static size_t pool_count;
static size_t pool_max = 64;

size_t ko_page_size(void) {
  static size_t page;
  if (!page) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static void vg_register(ko_stack *s) {
#ifdef KO_HAVE_VALGRIND
  /* valgrind wants the lowest and the highest addressable byte. */
  s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size - 1);
#else
  s->vg_id = 0;
#endif
}

/* A stack handed out again: whatever valgrind remembers of the frames that
 * ran there before (memcheck marks popped frames no-access) is stale. */
static void vg_reuse(ko_stack *s) {
#ifdef KO_HAVE_VALGRIND
  VALGRIND_MAKE_MEM_UNDEFINED(s->lo, s->size);
#endif
  (void)s;
}

static void vg_deregister(ko_stack *s) {
#ifdef KO_HAVE_VALGRIND
  VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
  (void)s;
}

/* A pooled stack keeps its header in its own lowest usable bytes. */
typedef struct pooled { ko_stack s; struct pooled *next; } pooled;

static int pool_take(ko_stack *s, size_t size, size_t guard) {
  pthread_mutex_lock(&pool_lock);
  pooled **pp = (pooled **)&pool;
  for (pooled *p = *pp; p; pp = &p->next, p = p->next) {
    if (p->s.size == size && p->s.map_size == size + guard) {
      *pp = p->next;
      pool_count--;
      pthread_mutex_unlock(&pool_lock);
      *s = p->s;
      vg_reuse(s);
      return 1;
    }
  }
  pthread_mutex_unlock(&pool_lock);
  return 0;
}

static int pool_put(ko_stack *s) {
  vg_reuse(s);
  pthread_mutex_lock(&pool_lock);
  if (pool_count >= pool_max) {
    pthread_mutex_unlock(&pool_lock);
    return 0;
  }
  pooled *p = (pooled *)s->lo;
  p->s = *s;
  p->next = (pooled *)pool;
  pool = (ko_stack *)p;
  pool_count++;
  pthread_mutex_unlock(&pool_lock);
  return 1;
}

static void unmap(ko_stack *s) {
  vg_deregister(s);
  munmap(s->map, s->map_size);
}

size_t ko_stack_pool_limit(size_t max) {
  pthread_mutex_lock(&pool_lock);
  size_t old = pool_max;
  pool_max = max;
  pooled *drop = NULL;
  while (pool_count > pool_max) {
    pooled *p = (pooled *)pool;
    pool = (ko_stack *)p->next;
    pool_count--;
    p->next = drop;
    drop = p;
  }
  pthread_mutex_unlock(&pool_lock);
  while (drop) {
    pooled *next = drop->next;
    ko_stack s = drop->s;
    unmap(&s);
    drop = next;
  }
  return old;
}

#ifdef MADV_GUARD_INSTALL
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int light_guards;

/* Does MADV_GUARD_INSTALL work here? An older kernel refuses it; an emulator
 * (qemu-user) may accept it and do nothing. So: install one, and check that
 * the kernel will not read through it (a write from it into a pipe must
 * fail with EFAULT). */
static void probe_light_guards(void) {
  size_t page = ko_page_size();
  char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  int fds[2];
  if (madvise(p, page, MADV_GUARD_INSTALL) == 0 && pipe(fds) == 0) {
    ssize_t n = write(fds[1], p, 1);
    light_guards = n < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
  }
  munmap(p, 2 * page);
}
#endif

/* Makes the lowest `guard` bytes of a fresh mapping fault when touched. */
static int install_guard(void *map, size_t guard) {
#ifdef MADV_GUARD_INSTALL
  pthread_once(&probe_once, probe_light_guards);
  if (light_guards && madvise(map, guard, MADV_GUARD_INSTALL) == 0) return 0;
#endif
  return mprotect(map, guard, PROT_NONE);
}

int ko_stack_alloc(ko_stack *s, size_t size, size_t guard) {
  size_t page = ko_page_size();
  size = round_up(size, page);
  guard = round_up(guard, page);
  /* Keep the stride between stacks off powers of two. */
  if (((size + guard) & (size + guard - 1)) == 0) size += page;
  if (pool_take(s, size, guard)) return KO_OK;

  void *map = mmap(NULL, size + guard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (map == MAP_FAILED) return KO_ENOMEM;
  if (guard && install_guard(map, guard) != 0) {
    munmap(map, size + guard);
    return KO_ENOMEM;
  }
  s->map = map;
  s->map_size = size + guard;
  s->lo = (char *)map + guard;
  s->size = size;
  vg_register(s);
  return KO_OK;
}

void ko_stack_wrap(ko_stack *s, void *lo, size_t size) {
  s->map = NULL;
  s->map_size = 0;
  s->lo = lo;
  s->size = size;
  vg_register(s);
}

void ko_stack_free(ko_stack *s) {
  if (!s->map) {
    vg_deregister(s);
    return;
  }
  if (!pool_put(s)) unmap(s);
}
