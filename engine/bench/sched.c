/*
 * sched.c - korutin-sched-bench: what the C scheduler (ko_sched) costs per
 * operation, beside one switch pair of the same backend in the same run.
 *
 *   korutin-sched-bench [--backend NAME] [--json FILE] [--reps N] [--quick]
 *
 * yield: two tasks calling ko_yield_now() in turn (ns per yield, against
 * one ko_resume + ko_yield pair); channel: a value sent to a task and one
 * sent back over two rendezvous channels (ns per round trip); cond: two
 * tasks signalling each other's condition (ns per round trip). Medians of
 * --reps interleaved runs; the targets are issue #15's.
 */
#include <korutin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const ko_backend *be;
static long n_ops = 1000000;

static double now_ns(void) { return (double)uv_hrtime(); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void *pair_body(ko_coro *co, void *arg) {
  (void)co, (void)arg;
  for (;;) ko_yield(NULL);
  return NULL;
}

/* ns per ko_resume + ko_yield pair. */
static double switch_pair(void) {
  ko_options o = {be, 0, 0, NULL};
  ko_coro *co;
  if (ko_create(&co, &o, pair_body, NULL)) return -1;
  double t0 = now_ns();
  for (long i = 0; i < n_ops; i++) ko_resume(co, NULL, NULL);
  double ns = (now_ns() - t0) / (double)n_ops;
  ko_destroy(co);
  return ns;
}

typedef struct duo {
  ko_chan *ping, *pong;
  ko_cond *a, *b;
  int done;
} duo;

static void *yielder(void *arg) {
  (void)arg;
  for (long i = 0; i < n_ops; i++) ko_yield_now();
  return NULL;
}

static void *chan_client(void *arg) {
  duo *d = (duo *)arg;
  void *v;
  for (long i = 0; i < n_ops; i++) {
    ko_chan_send(d->ping, (void *)(intptr_t)i, KO_FOREVER);
    ko_chan_recv(d->pong, &v, KO_FOREVER);
  }
  ko_chan_close(d->ping);
  return NULL;
}

static void *chan_server(void *arg) {
  duo *d = (duo *)arg;
  void *v;
  while (ko_chan_recv(d->ping, &v, KO_FOREVER) == KO_OK) ko_chan_send(d->pong, v, KO_FOREVER);
  return NULL;
}

static void *cond_client(void *arg) {
  duo *d = (duo *)arg;
  for (long i = 0; i < n_ops; i++) {
    ko_cond_signal(d->a);
    ko_cond_wait(d->b, NULL, KO_FOREVER);
  }
  d->done = 1;
  ko_cond_signal(d->a);
  return NULL;
}

static void *cond_server(void *arg) {
  duo *d = (duo *)arg;
  for (;;) {
    ko_cond_wait(d->a, NULL, KO_FOREVER);
    if (d->done) return NULL;
    ko_cond_signal(d->b);
  }
}

/* Runs two tasks (the first spawned first) to the end; ns per operation. */
static double run_two(ko_task_fn first, ko_task_fn second) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  ko_sched_options so = {be, 0, 1};
  ko_sched *s;
  if (ko_sched_new(&s, &loop, &so)) return -1;
  duo d = {0};
  ko_chan_new(s, &d.ping, 0);
  ko_chan_new(s, &d.pong, 0);
  ko_cond_new(s, &d.a);
  ko_cond_new(s, &d.b);
  ko_task *t1, *t2;
  ko_spawn(s, &t1, first, &d, "first");
  ko_spawn(s, &t2, second, &d, "second");
  double t0 = now_ns();
  int left = ko_sched_run(s);
  double ns = (now_ns() - t0) / (double)n_ops;
  ko_join(t1, 0, NULL);
  ko_join(t2, 0, NULL);
  ko_sched_free(s); /* and its channels and conds */
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return left ? -1 : ns;
}

enum { PAIR, YIELD, CHAN, COND, NFIG };
static const char *const fig_name[NFIG] = {"switch pair (ko_resume + ko_yield)", "yield between 2 tasks",
                                           "channel round trip", "cond round trip"};

static double measure(int which) {
  switch (which) {
    case PAIR: return switch_pair();
    case YIELD: return run_two(yielder, yielder) / 2; /* both tasks yield n times */
    case CHAN: return run_two(chan_server, chan_client);
    default: return run_two(cond_server, cond_client);
  }
}

int main(int argc, char **argv) {
  const char *json = NULL, *name = NULL;
  int reps = 7;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
    else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) name = argv[++i];
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--quick") == 0) reps = 3, n_ops = 200000;
    else {
      fprintf(stderr, "usage: korutin-sched-bench [--backend NAME] [--json FILE] [--reps N] [--quick]\n");
      return 2;
    }
  }
  if (reps < 1 || reps > 99) reps = 7;
  be = name ? ko_backend_find(name) : ko_backend_default();
  if (!be || ko_backend_unavailable(be)) {
    fprintf(stderr, "korutin-sched-bench: backend %s is not usable here\n", name ? name : "(default)");
    return 1;
  }
  if (ko_backend_own_thread(be)) n_ops /= 20;
  double runs[NFIG][99], med[NFIG];
  for (int r = 0; r < reps; r++) /* interleaved rounds */
    for (int f = 0; f < NFIG; f++) runs[f][r] = measure(f);
  for (int f = 0; f < NFIG; f++) {
    qsort(runs[f], (size_t)reps, sizeof(double), cmp_double);
    med[f] = runs[f][reps / 2];
  }
  printf("korutin-sched-bench: backend %s, %ld operations, median of %d\n", ko_backend_name(be), n_ops, reps);
  for (int f = 0; f < NFIG; f++) printf("  %-40s %8.1f ns\n", fig_name[f], med[f]);
  struct {
    const char *what;
    double value, limit;
    const char *unit;
  } t[] = {
      {"yield between 2 tasks vs one switch pair", med[YIELD] / med[PAIR], 1.2, "x"},
      {"channel round trip", med[CHAN], 100, "ns"},
      {"cond round trip", med[COND], 80, "ns"},
  };
  int nt = (int)(sizeof t / sizeof t[0]);
  printf("targets\n");
  for (int i = 0; i < nt; i++)
    printf("  %-44s %8.2f %-2s (target <= %g)  %s\n", t[i].what, t[i].value, t[i].unit, t[i].limit,
           t[i].value <= t[i].limit ? "met" : "NOT MET");
  if (json) {
    FILE *f = fopen(json, "w");
    if (!f) return fprintf(stderr, "korutin-sched-bench: cannot write %s\n", json), 1;
    fprintf(f, "{\n  \"backend\": \"%s\",\n  \"operations\": %ld,\n  \"reps\": %d,\n  \"ns\": {", ko_backend_name(be),
            n_ops, reps);
    for (int i = 0; i < NFIG; i++) fprintf(f, "%s\n    \"%s\": %.2f", i ? "," : "", fig_name[i], med[i]);
    fprintf(f, "\n  },\n  \"targets\": [");
    for (int i = 0; i < nt; i++)
      fprintf(f, "%s\n    {\"what\": \"%s\", \"value\": %.3f, \"limit\": %g, \"unit\": \"%s\", \"met\": %s}",
              i ? "," : "", t[i].what, t[i].value, t[i].limit, t[i].unit, t[i].value <= t[i].limit ? "true" : "false");
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
  }
  return 0;
}
