/*
 * million.c - korutin-bench --million: a million coroutines at once.
 *
 * Creates 1,000,000 coroutines on the default backend with default
 * options, resumes each once (each is then suspended in its first
 * ko_yield), prints the RSS and the number of memory mappings, the ns per
 * create and per destroy, and frees them all. Where the kernel has no guard
 * regions (or KORUTIN_NO_GUARD_REGIONS=1 forces that path) and
 * vm.max_map_count is too low for a million, creation must stop with
 * KO_ENOMEM and a ko_error_detail() naming vm.max_map_count, before any
 * mmap of the process fails: then it prints where it stopped and why, and
 * exits 0. Any other shortfall exits 1 (CTest runs the forced path).
 */
#include "bench.h"
#include "korutin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MILLION 1000000L

static void *idle_body(ko_coro *co, void *arg) {
  (void)co, (void)arg;
  for (;;) ko_yield(NULL);
  return NULL;
}

static long count_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long n = 0;
  int c;
  while ((c = getc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

int kb_million(const char *json) {
  ko_coro **cs = (ko_coro **)calloc((size_t)MILLION, sizeof *cs);
  if (!cs) return 1;
  memset(cs, 0, (size_t)MILLION * sizeof *cs);
  size_t pool = ko_stack_pool_limit(0);
  size_t rss0 = kb_rss();
  long maps0 = count_maps();

  long made = 0;
  int err = KO_OK;
  double t0 = kb_now_ns();
  while (made < MILLION && (err = ko_create(&cs[made], NULL, idle_body, NULL)) == KO_OK) made++;
  double create_ns = made ? (kb_now_ns() - t0) / (double)made : -1;
  const char *why = made < MILLION ? ko_error_detail() : NULL;
  char detail[600] = "";
  if (why) snprintf(detail, sizeof detail, "%s", why);

  t0 = kb_now_ns();
  for (long i = 0; i < made; i++) ko_resume(cs[i], NULL, NULL);
  double resume_ns = made ? (kb_now_ns() - t0) / (double)made : -1;
  double rss = (double)kb_rss() - (double)rss0;
  long maps = count_maps() - maps0;

  t0 = kb_now_ns();
  for (long i = 0; i < made; i++) ko_destroy(cs[i]);
  double destroy_ns = made ? (kb_now_ns() - t0) / (double)made : -1;
  long maps_after = count_maps() - maps0;
  ko_stack_pool_limit(pool);
  free(cs);

  int ok = made == MILLION || (err == KO_ENOMEM && why && strstr(why, "vm.max_map_count"));
  printf("korutin-bench --million: %ld of %ld coroutines created and suspended\n", made, MILLION);
  printf("  RSS                  %10.1f MB (%.0f B per coroutine)\n", rss / 1e6, made ? rss / (double)made : 0);
  printf("  memory mappings      %10ld (%.3f per coroutine; %ld left after destroy)\n", maps,
         made ? (double)maps / (double)made : 0, maps_after);
  printf("  create               %10.0f ns per coroutine\n", create_ns);
  printf("  first resume         %10.0f ns per coroutine\n", resume_ns);
  printf("  destroy              %10.0f ns per coroutine\n", destroy_ns);
  if (made < MILLION)
    printf("  stopped early: %s: %s\n", ko_strerror(err), why ? detail : "(no detail: an unexplained failure)");
  if (json) {
    FILE *f = fopen(json, "w");
    if (!f) return 1;
    fprintf(f,
            "{\n  \"million\": {\"wanted\": %ld, \"created\": %ld, \"rss_bytes\": %.0f, \"mappings\": %ld,\n"
            "    \"create_ns\": %.1f, \"first_resume_ns\": %.1f, \"destroy_ns\": %.1f, \"stopped_by_map_budget\": %s}\n}\n",
            MILLION, made, rss, maps, create_ns, resume_ns, destroy_ns, why ? "true" : "false");
    if (fclose(f) != 0) return 1;
  }
  return ok ? 0 : 1;
}
