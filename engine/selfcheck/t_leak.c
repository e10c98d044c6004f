/*
 * t_leak.c - 100,000 coroutines created and destroyed leave nothing behind.
 *
 * Batches of 100 coroutines (more than the stack pool keeps, so stacks are
 * both pooled and unmapped): each is resumed once and touches 2 KiB of its
 * stack; half are destroyed while suspended, half run to the end first.
 * After a warm-up batch it checks:
 *  - mappings (/proc/self/maps) grow by at most MAP_SLACK: a leaked stack is
 *    two mappings (guard and usable part);
 *  - the heap in use grows by at most SLACK (512 KiB): a leaked byte per
 *    coroutine would be 100 KB. Measured by glibc's mallinfo2(), or by the
 *    tool we run under (ASan's allocator count, memcheck's leak search);
 *  - the resident set size (/proc/self/statm) grows by at most SLACK over
 *    the whole run, for the C library's own caches; under valgrind or ASan
 *    by at most SLACK_TOOL (16 MiB), for the tool's one-time costs (ASan's
 *    fake stacks, with detect_stack_use_after_return, take about 5 MB).
 * RSS is not checked where it grows by design, whatever korutin does: with
 * the threads backend under a tool (ASan keeps a record per thread and
 * freed memory in a 256 MB quarantine, valgrind a few hundred bytes per
 * thread ever created), and under qemu-user, whose own memory grows with
 * every mmap/munmap. Plain pthread_create/join or mmap/munmap loops grow the
 * same way there. Under qemu-user the threads backend runs 10,000 cycles:
 * thread creation is emulated, and slow; under Wine too: each thread's
 * creation and exit go through wineserver (about 1.8 ms a cycle, so 100,000
 * of them take three minutes).
 * On Windows, mappings are the regions VirtualQuery lists (a leaked stack is
 * three) and RSS is the working set; the heap is not measured there.
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
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define KT_MALLINFO2 1
#endif

/* Heap bytes in use (-1 when nothing here can tell). */
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
#ifdef KT_MALLINFO2
  struct mallinfo2 mi = mallinfo2();
  return (long)(mi.uordblks + mi.hblkhd);
#else
  return -1;
#endif
#endif
}

#define CYCLES 100000
#define CYCLES_EMULATED_THREADS 10000
#define BATCH 100
#define SLACK (512 * 1024)
#define SLACK_TOOL (16 * 1024 * 1024)
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
      KT_CHECK(t, ko_status(cs[i]) == KO_DONE);
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
  int emulated = kt_under_qemu(), tool = kt_under_valgrind() || kt_under_asan();
  int slow_threads = (emulated || kt_under_wine()) && t->own_thread;
  int cycles = slow_threads ? CYCLES_EMULATED_THREADS : CYCLES;
  for (int c = 0; c < cycles / BATCH; c++)
    if (!batch(t)) return;
  long rss = (long)kt_rss() - (long)rss0, heap = heap_in_use() - heap0;
  size_t maps1 = kt_map_count();

  KT_CHECK(t, maps1 <= maps0 + (kt_under_asan() ? MAP_SLACK_ASAN : MAP_SLACK), "mappings went from %zu to %zu",
           maps0, maps1);
  if (heap0 >= 0) KT_CHECK(t, heap <= SLACK, "the heap in use grew by %ld KiB", heap / 1024);
  const char *rss_rule = emulated ? "not checked under qemu-user"
                         : tool && t->own_thread ? "not checked under a tool"
                         : tool ? "allowed 16 MiB" : "allowed 512 KiB";
  if (!emulated && !(tool && t->own_thread)) {
    long slack = tool ? SLACK_TOOL : SLACK;
    KT_CHECK(t, rss <= slack, "RSS grew by %ld KiB over %d coroutines (allowed: %ld KiB)", rss / 1024, cycles,
             slack / 1024);
  }
  char heap_text[48] = "";
  if (heap0 >= 0) snprintf(heap_text, sizeof heap_text, ", heap %+ld KiB", heap / 1024);
  kt_note(t, "%s%d coroutines: RSS %+ld KiB (%s)%s, mappings %zu -> %zu",
          cycles == CYCLES ? "" : emulated ? "scaled down under qemu-user: " : "scaled down under wine: ", cycles, rss / 1024, rss_rule, heap_text, maps0,
          maps1);
}

const kt_test kt_group_leak[] = {
  {"create-destroy-100k", create_destroy},
  {NULL, NULL},
};
