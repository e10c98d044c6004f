/*
 * t_leak.c - 100,000 coroutines created and destroyed leave nothing behind.
 *
 * Batches of 100 coroutines (more than the stack pool keeps, so stacks are
 * both pooled and unmapped): each is resumed once and touches 2 KiB of its
 * stack; half are destroyed while suspended, half run to the end first.
 * After a warm-up batch, the resident set size (/proc/self/statm) may grow
 * by at most RSS_SLACK over the whole run, and the number of mappings by at
 * most a few. One coroutine's stack is 64 KiB plus a guard page; a leak of
 * a single stack per batch would show as 1,000 stacks, far beyond the slack,
 * and any leaked byte per coroutine would reach 100 KB. The slack covers
 * the C library's own caches (malloc arenas, thread descriptors) and, under
 * valgrind, the tool's bookkeeping.
 */
#include "kt.h"

#include <stdio.h>
#include <string.h>

#define CYCLES 100000
#define BATCH 100
#define RSS_SLACK (512 * 1024)
#define RSS_SLACK_TOOL (4 * 1024 * 1024)
#define MAP_SLACK 8

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
  if (!rss0 || !maps0) {
    kt_skip(t, "cannot read /proc/self/statm or /proc/self/maps here");
    return;
  }
  for (int c = 0; c < CYCLES / BATCH; c++)
    if (!batch(t)) return;
  size_t rss1 = kt_rss(), maps1 = kt_map_count();
  long grew = (long)rss1 - (long)rss0;
  long slack = kt_under_valgrind() || kt_under_asan() ? RSS_SLACK_TOOL : RSS_SLACK;
  KT_CHECK(t, grew <= slack, "RSS grew by %ld KiB over %d coroutines (allowed: %ld KiB)", grew / 1024,
           CYCLES, slack / 1024);
  KT_CHECK(t, maps1 <= maps0 + MAP_SLACK, "mappings went from %zu to %zu", maps0, maps1);
  kt_note(t, "%d coroutines: RSS %+ld KiB (allowed %ld KiB), mappings %zu -> %zu", CYCLES, grew / 1024,
          slack / 1024, maps0, maps1);
}

const kt_test kt_group_leak[] = {
  {"create-destroy-100k", create_destroy},
  {NULL, NULL},
};
