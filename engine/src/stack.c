/*
 * stack.c - coroutine stacks.
 *
 * Each stack is one mapping: `guard` bytes at the bottom that fault when
 * touched, then the usable part. On Linux 6.13+ the guard is a guard region
 * (MADV_GUARD_INSTALL) inside the mapping, so a stack is a single VMA that
 * may even merge with its neighbours, and vm.max_map_count (65,530 by
 * default) stops limiting how many there can be; elsewhere the guard is a
 * PROT_NONE page, a VMA of its own. Pages are only touched when used, so a
 * large stack costs address space, not memory. (Keeping neighbouring
 * stacks' tops out of the same cache sets is coro.c's record colours: any
 * mapping size is a whole number of pages, so the size alone cannot.)
 * Freed stacks wait in the pool for reuse (stack_pool.c, shared with
 * stack_win.c; never touched on the switch path).
 *
 * Without guard regions (older kernels; or KORUTIN_NO_GUARD_REGIONS=1 in the
 * environment, which forces this path for tests), a stack is two VMAs:
 * a PROT_NONE region can neither share a VMA with the usable part nor be a
 * hole (another mapping could land in it), so there is no one-VMA layout.
 * vm.max_map_count (65,530 by default) then caps the process at about
 * 32,000 stacks, and reaching it makes every later mmap in the process fail,
 * not only ours. So this path keeps a budget: before a mapping would leave
 * fewer than KO_MAP_RESERVE mappings for the rest of the process, it refuses
 * with KO_ENOMEM and says why (ko_error_detail()): vm.max_map_count, and the
 * figure to set it to.
 */
#include "stack.h"
#include "stack_pool.h"
#include "korutin.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

static void budget_give(long fewer);

size_t ko_page_size(void) {
  static size_t page;
  if (!page) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

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

void ko_stack_unmap(ko_stack *s) {
  unsigned vmas = s->vmas; /* read first: `s` may lie in the mapping */
  vg_deregister(s);
  munmap(s->map, s->map_size);
  if (vmas) budget_give(vmas);
}

/* --------------------------------------------- the mapping budget (above) */

/* Mappings left to the rest of the process: libraries, malloc, a JIT. */
#define KO_MAP_RESERVE 4096

static char detail_buf[512];
static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;
static long map_max = -1;      /* vm.max_map_count; 0: unknown */
static long map_used;          /* at the last count, plus those made since */
static long since_count;       /* mappings made since the last count */
static long recount_at = -1;   /* count again when since_count reaches it */

static long read_long(const char *path) {
  FILE *f = fopen(path, "r");
  long v = 0;
  if (!f) return 0;
  if (fscanf(f, "%ld", &v) != 1) v = 0;
  fclose(f);
  return v;
}

static long count_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  long n = 0;
  char buf[16384];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0)
    for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + got - p))) != NULL; p++) n++;
  fclose(f);
  return n;
}

/* May `more` mappings be made? Called only on the two-VMA path. */
static int budget_take(long more) {
  pthread_mutex_lock(&budget_lock);
  if (map_max < 0) map_max = read_long("/proc/sys/vm/max_map_count");
  /* Count again once we may have used half of what was left at the last
   * count (so counts get rarer the more room there is: a few per limit),
   * and before refusing. Others' mappings come out of KO_MAP_RESERVE. */
  if (map_max > 0 && (since_count >= recount_at || map_used + more + KO_MAP_RESERVE > map_max)) {
    map_used = count_maps();
    since_count = 0;
    recount_at = (map_max - map_used - KO_MAP_RESERVE) / 2;
    if (recount_at < 64) recount_at = 64;
  }
  int ok = map_max <= 0 || map_used + more + KO_MAP_RESERVE <= map_max;
  if (ok) {
    map_used += more;
    since_count += more;
  } else {
    long want = map_max * 2 > 2 * 1000000L + map_used ? map_max * 2 : 2 * 1000000L + map_used;
    snprintf(detail_buf, sizeof detail_buf,
             "no more coroutine stacks: this kernel has no guard regions (Linux 6.13+), so each stack "
             "with its guard page takes 2 memory mappings, and %ld of vm.max_map_count=%ld are in use "
             "(%d kept for the rest of the process); raise it, e.g. sysctl -w vm.max_map_count=%ld "
             "(2 per coroutine: that is enough for about 1,000,000 of them)",
             map_used, map_max, KO_MAP_RESERVE, want);
    ko_error_detail_set(detail_buf);
  }
  pthread_mutex_unlock(&budget_lock);
  return ok;
}

static void budget_give(long fewer) {
  pthread_mutex_lock(&budget_lock);
  map_used -= fewer;
  pthread_mutex_unlock(&budget_lock);
}

/* ------------------------------------------------------------------ guards */

#ifdef MADV_GUARD_INSTALL
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int light_guards;

/* Does MADV_GUARD_INSTALL work here? An older kernel refuses it; an emulator
 * (qemu-user) may accept it and do nothing. So: install one, and check that
 * the kernel will not read through it (a write from it into a pipe must
 * fail with EFAULT). */
static void probe_light_guards(void) {
  const char *off = getenv("KORUTIN_NO_GUARD_REGIONS");
  if (off && *off && strcmp(off, "0") != 0) return; /* forced off (tests) */
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

static int have_light_guards(void) {
#ifdef MADV_GUARD_INSTALL
  pthread_once(&probe_once, probe_light_guards);
  return light_guards;
#else
  return 0;
#endif
}

/* Makes the lowest `guard` bytes of a fresh mapping fault when touched. */
static int install_guard(void *map, size_t guard) {
#ifdef MADV_GUARD_INSTALL
  if (light_guards && madvise(map, guard, MADV_GUARD_INSTALL) == 0) return 0;
#endif
  return mprotect(map, guard, PROT_NONE);
}

int ko_stack_alloc(ko_stack *s, size_t size, size_t guard) {
  size_t page = ko_page_size();
  size = ko_round_up(size, page);
  guard = ko_round_up(guard, page);
  /* Keep the stride between stacks off powers of two. */
  if (((size + guard) & (size + guard - 1)) == 0) size += page;
  if (ko_stack_pool_take(s, size, size + guard)) {
    vg_reuse(s);
    return KO_OK;
  }

  /* Two mappings when the guard is a PROT_NONE one of its own (see top). */
  long vmas = guard && !have_light_guards() ? 2 : 0;
  if (vmas && !budget_take(vmas)) return KO_ENOMEM;
  void *map = mmap(NULL, size + guard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (map == MAP_FAILED || (guard && install_guard(map, guard) != 0)) {
    if (map != MAP_FAILED) munmap(map, size + guard);
    if (vmas) budget_give(vmas);
    return KO_ENOMEM;
  }
  s->vmas = (unsigned)vmas;
  s->map = map;
  s->map_size = size + guard;
  s->lo = (char *)map + guard;
  s->size = size;
  vg_register(s);
  return KO_OK;
}

void ko_stack_wrap(ko_stack *s, void *lo, size_t size) {
  s->vmas = 0;
  s->map = NULL;
  s->map_size = 0;
  s->lo = lo;
  s->size = size;
  vg_register(s);
  vg_reuse(s); /* the caller's bytes: earlier coroutines' popped frames included */
}

void ko_stack_free(ko_stack *s) {
  if (!s->map) {
    vg_reuse(s); /* back to the caller, addressable again */
    vg_deregister(s);
    return;
  }
  vg_reuse(s);
  if (!ko_stack_pool_put(s)) ko_stack_unmap(s);
}
