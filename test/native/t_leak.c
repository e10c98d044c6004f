/*
 * t_leak.c - 100,000 coroutines created and destroyed leave nothing behind.
 *
 * Batches of 100 coroutines (more than the stack pool keeps, so stacks are
 * both pooled and unmapped): each is resumed once and touches 2 KiB of its
 * stack; half are destroyed while suspended, half run to the end first.
 * After a warm-up batch it checks:
 *  - the number of mappings (/proc/self/maps) grows by at most MAP_SLACK: a
 *    leaked stack is two mappings (guard and usable part);
 *  - natively, the resident set size (/proc/self/statm) grows by at most
 *    RSS_SLACK (512 KiB) over the whole run: a leaked byte per coroutine
 *    would be 100 KB, a leaked stack per batch 1,000 stacks. The slack is
 *    for the C library's own caches (malloc arenas, thread descriptors);
 *  - under valgrind or ASan, the heap in use as the tool counts it grows by
 *    at most RSS_SLACK, and RSS by at most RSS_SLACK_TOOL (16 MiB), for the
 *    tool's own one-time costs (ASan's fake stacks, with
 *    detect_stack_use_after_return, take about 5 MB). With the threads
 *    backend RSS is not checked under a tool: ASan keeps a record per thread
 *    and freed memory in its quarantine (256 MB), valgrind a few hundred
 *    bytes per thread ever created; plain pthread_create/join loops grow
 *    the same way. The tools check for leaks again at exit.
 */
#include "kt.h"

#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define KT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KT_ASAN 1
#endif
#endif
#ifdef KT_ASAN
/* In ASan's runtime; GCC ships no header that declares it. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define KT_VALGRIND 1
#endif
#endif

/* Heap bytes in use, as the tool we run under counts them (0 without). */
static long heap_in_use(void) {
#ifdef KT_ASAN
  return (long)__sanitizer_get_current_allocated_bytes();
#else
#ifdef KT_VALGRIND
  if (kt_under_valgrind()) {
    unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;
    VALGRIND_DO_QUICK_LEAK_CHECK;
    VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
    return (long)(leaked + dubious + reachable + suppressed);
  }
#endif
  return 0;
#endif
}

#define CYCLES 100000
#define BATCH 100
#define RSS_SLACK (512 * 1024)
#define RSS_SLACK_TOOL (16 * 1024 * 1024)
#define MAP_SLACK 8
#define MAP_SLACK_ASAN 256

static void *leak_body(ko_coro *co, void *arg) {
  (void)co;
  volatile char scratch[2048];
  memset((char *)scratch, (int)(uintptr_t)arg, sizeof scratch);
  ko_yield(NULL);
  return (void *)(uintptr_t)scratch[100];
}

static int batch(kt *t) {
  ko_coro *cs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    cs[i] = kt_create(t, leak_body, (void *)(uintptr_t)i, 0);
    if (!cs[i]) return 0;
    if (!KT_CHECK(t, ko_resume(cs[i], NULL, NULL) == KO_OK)) return 0;
  }
  for (int i = 0; i < BATCH; i++) {
    if (i % 2) {
      void *out = NULL;
      KT_CHECK(t, ko_resume(cs[i], NULL, &out) == KO_OK && (uintptr_t)out == (uintptr_t)i);
      KT_CHECK(t, ko_status(cs[i]) == KO_DEAD);
    }
    if (!KT_CHECK(t, ko_destroy(cs[i]) == KO_OK)) return 0;
  }
  return !t->failed;
}

static void create_destroy(kt *t) {
  if (!batch(t)) return; /* warm-up: pool, malloc, thread caches */
  size_t rss0 = kt_rss(), maps0 = kt_map_count();
  long heap0 = heap_in_use();
  if (!rss0 || !maps0) {
    kt_skip(t, "cannot read /proc/self/statm or /proc/self/maps here");
    return;
  }
  for (int c = 0; c < CYCLES / BATCH; c++)
    if (!batch(t)) return;
  long rss = (long)kt_rss() - (long)rss0, heap = heap_in_use() - heap0;
  size_t maps1 = kt_map_count();
  int tool = kt_under_valgrind() || kt_under_asan();
  KT_CHECK(t, maps1 <= maps0 + (kt_under_asan() ? MAP_SLACK_ASAN : MAP_SLACK), "mappings went from %zu to %zu",
           maps0, maps1);
  if (tool) KT_CHECK(t, heap <= RSS_SLACK, "the heap in use grew by %ld KiB", heap / 1024);
  if (!tool || !t->own_thread) {
    long slack = tool ? RSS_SLACK_TOOL : RSS_SLACK;
    KT_CHECK(t, rss <= slack, "RSS grew by %ld KiB over %d coroutines (allowed: %ld KiB)", rss / 1024, CYCLES,
             slack / 1024);
  }
  char heap_text[64] = "";
  if (tool) snprintf(heap_text, sizeof heap_text, ", heap %+ld KiB", heap / 1024);
  kt_note(t, "%d coroutines: RSS %+ld KiB (%s)%s, mappings %zu -> %zu", CYCLES, rss / 1024,
          tool && t->own_thread ? "not checked under a tool" : tool ? "allowed 16 MiB" : "allowed 512 KiB",
          heap_text, maps0, maps1);
}

const kt_test kt_group_leak[] = {
  {"create-destroy-100k", create_destroy},
  {NULL, NULL},
};
