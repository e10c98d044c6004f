/*
 * bench.c - korutin-bench: what a switch costs, per backend.
 *
 *   korutin-bench [--json FILE] [--reps N] [--quick] [--million]
 *
 * For each backend built in and usable here:
 *   - ping-pong through the engine (ko_resume/ko_yield) and through the raw
 *     backend interface (make/jump), in ns per switch (a round trip is two);
 *   - the libkorutin table: round trips per second with 1,024 and with
 *     16,384 coroutines resumed round-robin (one resume + one yield is one
 *     round trip), and the RSS per idle coroutine (16,384 created, none
 *     run: RSS delta / 16,384);
 * and, in the same run, references: a raw Boost jump_fcontext ping-pong, a
 * raw swapcontext ping-pong and a futex handoff between two threads, and on
 * x86-64 the floor: ping-pong and round-robin with a switch that keeps no FP
 * state (floor_x86_64.S), below which no backend can go. Each
 * figure is the median of --reps runs (default 7). Prints a table with the
 * ratios against the references and the targets, met or not; --json also
 * writes all of it to FILE. --quick: one short run of each (a smoke test).
 * --million: only the million-coroutine run instead (million.c).
 */
#include "bench.h"
#include "backend.h"
#include "korutin.h"

#include <fenv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MANY 16384
#define FEW 1024
#define MAX_REPS 31

static int reps = 7, quick;

double kb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double kb_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

size_t kb_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* How much work one run of a measurement does: fast backends switch in
 * nanoseconds, ucontext in hundreds, threads in microseconds. */
static long scaled(const ko_backend *be, long fast) {
  long n = ko_backend_own_thread(be) ? fast / 200
           : strcmp(ko_backend_name(be), "ucontext") == 0 ? fast / 20 : fast;
  if (quick) n /= 50;
  return n > 1 ? n : 1;
}

/* ------------------------------------------------------ through the engine */

void kb_raise_inexact(void) {
  volatile double x = 1.0;
  x /= 3.0;
}

static void *loop_body(ko_coro *co, void *arg) {
  (void)co;
  if (arg) kb_raise_inexact();
  for (;;) ko_yield(NULL);
  return NULL;
}

/* flags_differ: as for kb_ref_fcontext (bench.h). */
static double engine_pingpong(const ko_backend *be, long n, int flags_differ) {
  ko_options opt = {0};
  opt.backend = be;
  ko_coro *co;
  if (ko_create(&co, &opt, loop_body, flags_differ ? &opt : NULL) != KO_OK) return -1;
  for (long i = 0; i < n / 10 + 1; i++) ko_resume(co, NULL, NULL);
  if (flags_differ) feclearexcept(FE_ALL_EXCEPT);
  double t0 = kb_now_ns();
  for (long i = 0; i < n; i++) ko_resume(co, NULL, NULL);
  double ns = (kb_now_ns() - t0) / (2.0 * (double)n);
  ko_destroy(co);
  return ns;
}

/* ------------------------------------------------ through the raw backend */

typedef struct raw { const ko_backend *be; void *main_ctx, *co_ctx; } raw;

/* Both sides keep what they pass in registers, as the fcontext reference
 * does: the loop measures the switch, not loads of its arguments. */
static void raw_entry(void *p) {
  raw *r = (raw *)p;
  void *(*yield)(void *, void *, void *) = r->be->yield;
  void *self = r->co_ctx, *peer = r->main_ctx;
  for (;;) yield(self, peer, NULL);
}

static double raw_pingpong(const ko_backend *be, long n) {
  size_t ctx = (be->ctx_size + 15) & ~(size_t)15, size = 64 * 1024;
  raw r = {be, calloc(1, ctx + 16), calloc(1, ctx + 16)};
  char *stack = (char *)mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  double ns = -1;
  /* calloc is 16-aligned on the platforms korutin runs on */
  if (r.main_ctx && r.co_ctx && stack != MAP_FAILED && be->make(r.co_ctx, stack, size, raw_entry, &r) == 0) {
    void *(*resume)(void *, void *, void *) = be->resume;
    void *self = r.main_ctx, *peer = r.co_ctx;
    for (long i = 0; i < n / 10 + 1; i++) resume(self, peer, NULL);
    double t0 = kb_now_ns();
    for (long i = 0; i < n; i++) resume(self, peer, NULL);
    ns = (kb_now_ns() - t0) / (2.0 * (double)n);
    if (be->destroy) be->destroy(r.co_ctx);
  }
  if (stack != MAP_FAILED) munmap(stack, size);
  free(r.main_ctx);
  free(r.co_ctx);
  return ns;
}

/* ----------------------------------------------------- the libkorutin table */

typedef struct many {
  double rt_per_s;        /* round trips per second, round-robin */
  double rss_per_coro;    /* bytes per idle coroutine (-1: not measured) */
} many;

static many round_robin(const ko_backend *be, int count, long round_trips, int measure_rss) {
  many m = {-1, -1};
  ko_coro **cs = (ko_coro **)calloc((size_t)count, sizeof *cs);
  if (!cs) return m;
  ko_options opt = {0};
  opt.backend = be;
  ko_stack_pool_limit(0); /* idle coroutines get fresh stacks, not pooled ones */
  memset(cs, 0, (size_t)count * sizeof *cs); /* touch the array now, not while measuring */
  size_t rss0 = kb_rss();
  int made = 0;
  while (made < count && ko_create(&cs[made], &opt, loop_body, NULL) == KO_OK) made++;
  if (made == count) {
    if (measure_rss) m.rss_per_coro = ((double)kb_rss() - (double)rss0) / count;
    for (int i = 0; i < count; i++) ko_resume(cs[i], NULL, NULL); /* first entry, not timed */
    long rounds = round_trips / count > 0 ? round_trips / count : 1;
    double v[MAX_REPS];
    for (int r = 0; r < reps; r++) {
      double t0 = kb_now_ns();
      for (long k = 0; k < rounds; k++)
        for (int i = 0; i < count; i++) ko_resume(cs[i], NULL, NULL);
      v[r] = (double)rounds * count / ((kb_now_ns() - t0) / 1e9);
    }
    m.rt_per_s = kb_median(v, reps);
  } else {
    fprintf(stderr, "korutin-bench: %s: only %d of %d coroutines could be created\n", ko_backend_name(be), made,
            count);
  }
  for (int i = 0; i < made; i++) ko_destroy(cs[i]);
  ko_stack_pool_limit(64);
  free(cs);
  return m;
}

/* ------------------------------------------------------------------ report */

typedef struct row {
  const ko_backend *be;
  double engine_ns, raw_ns;
  double flags_ns;        /* engine ping-pong, the sides' FP flags differing */
  many few, lots;
} row;

typedef struct refs {
  double fcontext, fcontext_flags, swapcontext, futex, fcontext_rr_few, fcontext_rr_many;
  double floor, floor_rr_few, floor_rr_many; /* no FP state (floor_x86_64.S) */
} refs;

/* The reference a backend is compared with. */
static double ref_for(const row *w, const refs *rf, const char **name) {
  const char *b = ko_backend_name(w->be);
  if (ko_backend_own_thread(w->be)) return *name = "futex handoff", rf->futex;
  if (strcmp(b, "ucontext") == 0) return *name = "swapcontext", rf->swapcontext;
  return *name = "jump_fcontext", rf->fcontext;
}

typedef struct target {
  const char *what;
  double value, limit;
  int below;              /* met when value <= limit (else >=) */
  const char *unit;
} target;

static int met(const target *t) {
  return t->value >= 0 && (t->below ? t->value <= t->limit : t->value >= t->limit);
}

static const row *find_row(const row *rows, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(ko_backend_name(rows[i].be), name) == 0) return &rows[i];
  return NULL;
}

static int make_targets(const row *rows, int n, const refs *rf, target *t) {
  int k = 0;
  const row *a = find_row(rows, n, "asm"), *u = find_row(rows, n, "ucontext"), *th = find_row(rows, n, "threads");
  const row *b = find_row(rows, n, "boost");
  double ratio_ok = rf->fcontext > 0 && a ? 1 : -1;
  if (a) {
    t[k++] = (target){"asm ping-pong, engine (ko_resume/ko_yield) vs raw jump_fcontext",
                      ratio_ok > 0 ? a->engine_ns / rf->fcontext : -1, 0.9, 1, "x"};
    t[k++] = (target){"asm ping-pong, raw backend (make/jump) vs raw jump_fcontext",
                      ratio_ok > 0 ? a->raw_ns / rf->fcontext : -1, 1.0, 1, "x"};
    t[k++] = (target){"asm ping-pong, FP flags differing, vs jump_fcontext the same way",
                      rf->fcontext_flags > 0 && a->flags_ns > 0 ? a->flags_ns / rf->fcontext_flags : -1, 0.9, 1, "x"};
    t[k++] = (target){"asm round trips/s, 1,024 coroutines", a->few.rt_per_s / 1e6, 100, 0, "M/s"};
    t[k++] = (target){"asm round trips/s, 16,384 coroutines", a->lots.rt_per_s / 1e6, 60, 0, "M/s"};
    t[k++] = (target){"asm round trips/s, 16,384 coroutines, vs raw jump_fcontext's",
                      rf->fcontext_rr_many > 0 && a->lots.rt_per_s > 0 ? a->lots.rt_per_s / rf->fcontext_rr_many : -1, 1.0,
                      0, "x"};
    t[k++] = (target){"asm RSS per idle coroutine", a->lots.rss_per_coro / 1000, 4.5, 1, "KB"};
  }
  if (b)
    t[k++] = (target){"boost ping-pong, engine (ko_resume/ko_yield) vs raw jump_fcontext",
                      rf->fcontext > 0 ? b->engine_ns / rf->fcontext : -1, 1.1, 1, "x"};
  if (u)
    t[k++] = (target){"ucontext ping-pong (engine) vs raw swapcontext",
                      rf->swapcontext > 0 ? u->engine_ns / rf->swapcontext : -1, 1.1, 1, "x"};
  if (th)
    t[k++] = (target){"threads round trip (engine) vs raw futex handoff",
                      rf->futex > 0 ? th->engine_ns / rf->futex : -1, 1.2, 1, "x"};
  return k;
}

static void fmt_rate(char *buf, size_t cap, double v) {
  if (v < 0) snprintf(buf, cap, "-");
  else if (v >= 1e6) snprintf(buf, cap, "%.1f M", v / 1e6);
  else snprintf(buf, cap, "%.0f k", v / 1e3);
}

static void print_table(const row *rows, int n, const refs *rf, const target *t, int nt, const struct utsname *u) {
  printf("korutin-bench %d.%d.%d on %s %s, %ld CPUs; median of %d run%s\n\n", KORUTIN_VERSION_MAJOR,
         KORUTIN_VERSION_MINOR, KORUTIN_VERSION_PATCH, u->sysname, u->machine, sysconf(_SC_NPROCESSORS_ONLN),
         reps, reps > 1 ? "s" : "");
  printf("references (ns per switch; a round trip is two)\n");
  printf("  %-36s %10.1f\n", "Boost jump_fcontext ping-pong", rf->fcontext);
  printf("  %-36s %10.1f\n", "  the same, the FP flags differing", rf->fcontext_flags);
  printf("  %-36s %10.1f\n", "swapcontext ping-pong", rf->swapcontext);
  printf("  %-36s %10.1f\n", "futex handoff between two threads", rf->futex);
  char few[24], many[24];
  fmt_rate(few, sizeof few, rf->fcontext_rr_few);
  fmt_rate(many, sizeof many, rf->fcontext_rr_many);
  printf("  jump_fcontext round-robin, round trips/s: %s @1,024, %s @16,384\n", few, many);
  if (rf->floor > 0) {
    /* what a switch costs that does less than any backend may */
    fmt_rate(few, sizeof few, rf->floor_rr_few);
    fmt_rate(many, sizeof many, rf->floor_rr_many);
    printf("  %-36s %10.1f  (%.2fx jump_fcontext)\n", "floor: a switch keeping no FP state", rf->floor,
           rf->fcontext > 0 ? rf->floor / rf->fcontext : -1);
    printf("  the floor round-robin, round trips/s: %s @1,024, %s @16,384\n", few, many);
  }
  printf("\n");
  printf("%-9s %11s %11s %22s %13s %13s %11s\n", "backend", "engine ns", "raw ns", "engine vs reference",
         "rt/s @1,024", "rt/s @16,384", "RSS/idle");
  for (int i = 0; i < n; i++) {
    const row *w = &rows[i];
    const char *rname;
    double ref = ref_for(w, rf, &rname);
    char ratio[40] = "-", few[24], lots[24], rss[24] = "-";
    if (ref > 0 && w->engine_ns > 0) snprintf(ratio, sizeof ratio, "%.2fx %s", w->engine_ns / ref, rname);
    fmt_rate(few, sizeof few, w->few.rt_per_s);
    fmt_rate(lots, sizeof lots, w->lots.rt_per_s);
    if (w->lots.rss_per_coro >= 0) snprintf(rss, sizeof rss, "%.2f KB", w->lots.rss_per_coro / 1000);
    printf("%-9s %11.1f %11.1f %22s %13s %13s %11s\n", ko_backend_name(w->be), w->engine_ns, w->raw_ns, ratio, few,
           lots, rss);
  }
  printf("\ntargets\n");
  for (int i = 0; i < nt; i++)
    printf("  %-64s %8.2f %-3s (target %s %g)  %s\n", t[i].what, t[i].value, t[i].unit, t[i].below ? "<=" : ">=",
           t[i].limit, t[i].value < 0 ? "NOT MEASURED" : met(&t[i]) ? "MET" : "NOT MET");
}

static void json_num(FILE *f, double v) {
  if (v < 0) fprintf(f, "null");
  else fprintf(f, "%.6g", v);
}

static int write_json(const char *path, const row *rows, int n, const refs *rf, const target *t, int nt,
                      const struct utsname *u) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "{\n  \"korutin\": \"%d.%d.%d\",\n  \"platform\": {\"os\": \"%s\", \"arch\": \"%s\", \"cpus\": %ld},\n",
          KORUTIN_VERSION_MAJOR, KORUTIN_VERSION_MINOR, KORUTIN_VERSION_PATCH, u->sysname, u->machine,
          sysconf(_SC_NPROCESSORS_ONLN));
  fprintf(f, "  \"reps\": %d,\n  \"statistic\": \"median\",\n  \"references_ns_per_switch\": {\"jump_fcontext\": ", reps);
  json_num(f, rf->fcontext);
  fprintf(f, ", \"jump_fcontext_flags_differ\": ");
  json_num(f, rf->fcontext_flags);
  fprintf(f, ", \"swapcontext\": ");
  json_num(f, rf->swapcontext);
  fprintf(f, ", \"futex_handoff\": ");
  json_num(f, rf->futex);
  fprintf(f, ", \"switch_no_fp_state\": ");
  json_num(f, rf->floor);
  fprintf(f, "},\n  \"references_round_trips_per_s\": {\"jump_fcontext_1024\": ");
  json_num(f, rf->fcontext_rr_few);
  fprintf(f, ", \"jump_fcontext_16384\": ");
  json_num(f, rf->fcontext_rr_many);
  fprintf(f, ", \"switch_no_fp_state_1024\": ");
  json_num(f, rf->floor_rr_few);
  fprintf(f, ", \"switch_no_fp_state_16384\": ");
  json_num(f, rf->floor_rr_many);
  fprintf(f, "},\n  \"backends\": [");
  for (int i = 0; i < n; i++) {
    const row *w = &rows[i];
    fprintf(f, "%s\n    {\"name\": \"%s\", \"engine_ns_per_switch\": ", i ? "," : "", ko_backend_name(w->be));
    json_num(f, w->engine_ns);
    fprintf(f, ", \"engine_ns_per_switch_flags_differ\": ");
    json_num(f, w->flags_ns);
    fprintf(f, ", \"raw_ns_per_switch\": ");
    json_num(f, w->raw_ns);
    fprintf(f, ", \"round_trips_per_s_1024\": ");
    json_num(f, w->few.rt_per_s);
    fprintf(f, ", \"round_trips_per_s_16384\": ");
    json_num(f, w->lots.rt_per_s);
    fprintf(f, ", \"rss_bytes_per_idle_coroutine\": ");
    json_num(f, w->lots.rss_per_coro);
    fprintf(f, "}");
  }
  fprintf(f, "\n  ],\n  \"targets\": [");
  for (int i = 0; i < nt; i++) {
    fprintf(f, "%s\n    {\"what\": \"%s\", \"value\": ", i ? "," : "", t[i].what);
    json_num(f, t[i].value);
    fprintf(f, ", \"unit\": \"%s\", \"limit\": %g, \"comparison\": \"%s\", \"met\": %s}", t[i].unit, t[i].limit,
            t[i].below ? "<=" : ">=", met(&t[i]) ? "true" : "false");
  }
  fprintf(f, "\n  ]\n}\n");
  return fclose(f);
}

int main(int argc, char **argv) {
  const char *json = NULL;
  int million = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--quick") == 0) quick = 1;
    else if (strcmp(argv[i], "--million") == 0) million = 1;
    else {
      fprintf(stderr, "usage: korutin-bench [--json FILE] [--reps N] [--quick] [--million]\n");
      return 2;
    }
  }
  if (million) return kb_million(json);
  if (quick) reps = 1;
  if (reps < 1 || reps > MAX_REPS) reps = reps < 1 ? 1 : MAX_REPS;

  /* The ping-pongs are measured interleaved, one round of all of them per
   * repetition, so that a busy moment on the machine hits every figure
   * alike rather than one of them; then the median of each. */
  row rows[16];
  int n = 0;
  for (int i = 0; i < ko_backend_count() && n < 16; i++) {
    const ko_backend *be = ko_backend_at(i);
    if (ko_backend_unavailable(be)) printf("(%s: unavailable: %s)\n", ko_backend_name(be), ko_backend_unavailable(be));
    else rows[n++].be = be;
  }
  long ref_n = quick ? 20000 : 2000000;
  double fc[MAX_REPS], fcf[MAX_REPS], fl[MAX_REPS], sc[MAX_REPS], fx[MAX_REPS], eng[16][MAX_REPS], engf[16][MAX_REPS],
      rw[16][MAX_REPS];
  for (int r = 0; r < reps; r++) {
    fc[r] = kb_ref_fcontext(ref_n, 0);
    fcf[r] = kb_ref_fcontext(ref_n / 10, 1);
    fl[r] = kb_ref_floor(ref_n);
    sc[r] = kb_ref_swapcontext(ref_n / 20);
    fx[r] = kb_ref_futex(ref_n / 200);
    for (int i = 0; i < n; i++) {
      eng[i][r] = engine_pingpong(rows[i].be, scaled(rows[i].be, ref_n), 0);
      engf[i][r] = engine_pingpong(rows[i].be, scaled(rows[i].be, ref_n / 10), 1);
      rw[i][r] = raw_pingpong(rows[i].be, scaled(rows[i].be, ref_n));
    }
  }
  refs rf = {kb_median(fc, reps), kb_median(fcf, reps), kb_median(sc, reps), kb_median(fx, reps),
             kb_ref_fcontext_rr(FEW, quick ? 80000 : 4000000, reps),
             kb_ref_fcontext_rr(MANY, quick ? MANY : 4000000, reps), kb_median(fl, reps),
             kb_ref_floor_rr(FEW, quick ? 80000 : 4000000, reps), kb_ref_floor_rr(MANY, quick ? MANY : 4000000, reps)};
  for (int i = 0; i < n; i++) {
    row *w = &rows[i];
    w->engine_ns = kb_median(eng[i], reps);
    w->raw_ns = kb_median(rw[i], reps);
    w->flags_ns = kb_median(engf[i], reps);
    w->few = round_robin(w->be, FEW, scaled(w->be, 4000000), 0);
    w->lots = round_robin(w->be, MANY, scaled(w->be, 4000000) > MANY ? scaled(w->be, 4000000) : MANY, 1);
  }
  target t[16];
  int nt = make_targets(rows, n, &rf, t);
  struct utsname u;
  uname(&u);
  print_table(rows, n, &rf, t, nt, &u);
  if (json && write_json(json, rows, n, &rf, t, nt, &u) != 0) {
    fprintf(stderr, "korutin-bench: cannot write %s\n", json);
    return 1;
  }
  return 0;
}
