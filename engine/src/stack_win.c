/*
 * stack_win.c - coroutine stacks on Windows (stack.c is the POSIX one; the
 * build takes one of the two, engine/sources.json lists stack.c).
 *
 * Each stack is one VirtualAlloc reservation, committed whole (pages take
 * memory only once touched), laid out like a Windows thread's own stack:
 *
 *   map                                                         map+map_size
 *   | no access | PAGE_GUARD ... | usable (lo .. lo+size)                  |
 *   |  1 page   |  the rest of the guard  |
 *
 * The lowest page is PAGE_NOACCESS and stays so: whatever runs into it
 * faults, always. The guard pages above it are PAGE_GUARD: the first touch
 * faults (STATUS_GUARD_PAGE_VIOLATION, or STATUS_STACK_OVERFLOW when the
 * TIB says this is the stack in use) and disarms them, and that room is
 * where Windows then runs the exception dispatch (Windows has no alternate
 * signal stack: the exception is pushed on the stack that overflowed). So a
 * guard is at least KO_WIN_GUARD_MIN bytes whatever was asked for. A guard
 * found disarmed when the stack is freed is armed again before the stack is
 * reused.
 *
 * The switch backends give each coroutine the TIB fields of its own stack
 * (StackBase = the top, StackLimit = lo, DeallocationStack = map: see
 * backends/asm/switch_*_ms_pe.S and backends/asm/asm.c).
 *
 * Freed stacks wait in the pool for reuse (stack_pool.c).
 */
#include "stack.h"
#include "stack_pool.h"
#include "korutin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

/* No-access page + two PAGE_GUARD pages for the exception dispatch (a
 * CONTEXT alone is 1.2 KiB on x64, and the dispatcher and a handler run
 * below it). */
#define KO_WIN_GUARD_PAGES 3

size_t ko_page_size(void) {
  static size_t page;
  if (!page) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    page = si.dwPageSize;
  }
  return page;
}

/* Arms the guard: [map, map + page) no access, the rest PAGE_GUARD. */
static int arm_guard(void *map, size_t guard) {
  size_t page = ko_page_size();
  DWORD old;
  if (!VirtualProtect(map, page, PAGE_NOACCESS, &old)) return -1;
  if (guard > page && !VirtualProtect((char *)map + page, guard - page, PAGE_READWRITE | PAGE_GUARD, &old))
    return -1;
  return 0;
}

/* A stack that overflowed (and whose exception was handled) comes back with
 * its PAGE_GUARD pages disarmed: arm them again. */
static void rearm_if_tripped(ko_stack *s) {
  size_t guard = (size_t)((char *)s->lo - (char *)s->map), page = ko_page_size();
  if (guard <= page) return;
  MEMORY_BASIC_INFORMATION mbi;
  if (VirtualQuery((char *)s->lo - page, &mbi, sizeof mbi) && !(mbi.Protect & PAGE_GUARD))
    arm_guard(s->map, guard);
}

void ko_stack_unmap(ko_stack *s) { VirtualFree(s->map, 0, MEM_RELEASE); }

void *ko_stack_reservation(void *lo) {
  MEMORY_BASIC_INFORMATION below, at;
  if (VirtualQuery((char *)lo - 1, &below, sizeof below) && VirtualQuery(lo, &at, sizeof at) &&
      below.AllocationBase && below.AllocationBase == at.AllocationBase &&
      (below.State == MEM_RESERVE || (below.Protect & (PAGE_GUARD | PAGE_NOACCESS))))
    return below.AllocationBase;
  return lo;
}

int ko_stack_alloc(ko_stack *s, size_t size, size_t guard) {
  size_t page = ko_page_size();
  size = ko_round_up(size, page);
  guard = ko_round_up(guard, page);
  if (guard < KO_WIN_GUARD_PAGES * page) guard = KO_WIN_GUARD_PAGES * page;
  /* Keep the stride between stacks off powers of two. */
  if (((size + guard) & (size + guard - 1)) == 0) size += page;
  if (ko_stack_pool_take(s, size, size + guard)) return KO_OK;

  void *map = VirtualAlloc(NULL, size + guard, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (!map) return KO_ENOMEM;
  if (arm_guard(map, guard) != 0) {
    VirtualFree(map, 0, MEM_RELEASE);
    return KO_ENOMEM;
  }
  s->vmas = 0;
  s->vg_id = 0;
  s->map = map;
  s->map_size = size + guard;
  s->lo = (char *)map + guard;
  s->size = size;
  return KO_OK;
}

void ko_stack_wrap(ko_stack *s, void *lo, size_t size) {
  s->vmas = 0;
  s->vg_id = 0;
  s->map = NULL;
  s->map_size = 0;
  s->lo = lo;
  s->size = size;
}

void ko_stack_free(ko_stack *s) {
  if (!s->map) return;
  rearm_if_tripped(s);
  if (!ko_stack_pool_put(s)) ko_stack_unmap(s);
}
