/*
 * t_walk.c - a seeded random walk of many coroutines.
 *
 * 64 coroutines each recurse to a depth the resumer picks at random, and
 * yield there; the next resume picks a new depth, so each one climbs up or
 * down its own stack between switches. At yield points a coroutine now and
 * then resumes another one itself (nested, up to three levels). Every frame
 * holds values derived from the seed, the coroutine and the frame, checked
 * after each switch and on the way up; every yield reports the depth it
 * stopped at, which must be the one asked for; at the end each coroutine
 * unwinds completely and returns a checksum of its history.
 *
 * The threads backend pays a futex handoff per switch: it runs 16
 * coroutines for 20,000 steps instead of 64 for 100,000.
 */
#include "kt.h"

#include <stdlib.h>

#define MAX_DEPTH 48
#define WORDS 4

typedef struct walk walk;

typedef struct walker {
  walk *k;
  int id;
  ko_coro *co;
  unsigned target;     /* the depth to yield at; 0: unwind and finish */
  uint64_t entered;    /* frames entered, also each frame's key */
  uint64_t live;       /* sum of the values of the frames on the stack */
  uint64_t yields;     /* resumes that returned from ko_yield */
  uint64_t resumes;    /* counted by the resumers */
  unsigned bad;        /* damage seen: frames, depths, values passed */
} walker;

struct walk {
  kt *t;
  walker *w;
  int n;
  uint64_t seed, rng;
  unsigned nest;       /* nested resumes in progress */
  uint64_t nested;     /* nested resumes done */
};

static void drive(walk *k, walker *w, unsigned target);

static void maybe_nest(walker *w) {
  walk *k = w->k;
  if (k->nest >= 3 || kt_rand(&k->rng) % 6 != 0) return;
  walker *u = &k->w[kt_rand(&k->rng) % (uint64_t)k->n];
  if (u == w || ko_status(u->co) != KO_SUSPENDED) return;
  k->nest++;
  k->nested++;
  drive(k, u, 1 + (unsigned)(kt_rand(&k->rng) % MAX_DEPTH));
  k->nest--;
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void frame(walker *w, unsigned depth) {
  uint64_t key = kt_mix(w->k->seed ^ (uint64_t)w->id, w->entered++);
  volatile uint64_t v[WORDS];
  for (unsigned i = 0; i < WORDS; i++) v[i] = kt_mix(key, depth * WORDS + i);
  double d = (double)(key >> 12) * 0.5; /* lives in an FP register or slot */
  w->live += key;
  for (;;) {
    if (w->target > depth) {
      frame(w, depth + 1);
    } else if (w->target == depth) {
      maybe_nest(w);
      uintptr_t cmd = (uintptr_t)ko_yield((void *)(uintptr_t)depth);
      w->yields++;
      if (cmd != w->target) w->bad++; /* the value passed in is wrong */
    }
    for (unsigned i = 0; i < WORDS; i++)
      if (v[i] != kt_mix(key, depth * WORDS + i)) w->bad++;
    if (d != (double)(key >> 12) * 0.5) w->bad++;
    if (w->target < depth) break;
  }
  w->live -= key;
}

static void *walker_body(ko_coro *co, void *arg) {
  (void)co;
  walker *w = (walker *)arg;
  while (w->target != 0) frame(w, 1);
  uint64_t sum = kt_mix(w->entered, w->yields);
  return (void *)(uintptr_t)(w->live == 0 && w->bad == 0 ? sum : ~sum);
}

static void drive(walk *k, walker *w, unsigned target) {
  w->target = target;
  w->resumes++;
  void *out = NULL;
  int err = ko_resume(w->co, (void *)(uintptr_t)target, &out);
  if (!KT_CHECK(k->t, err == KO_OK, "coroutine %d: ko_resume: %s", w->id, ko_strerror(err))) return;
  if (target == 0) return;
  if ((uintptr_t)out != target) w->bad++; /* it stopped at the wrong depth */
}

static void random_walk(kt *t) {
  int n = t->own_thread ? 16 : 64;
  long steps = t->own_thread ? 20000 : 100000;
  const char *env = getenv("KO_SELFCHECK_SEED");
  walk k = {.t = t, .n = n, .seed = env ? strtoull(env, NULL, 0) : 0x6b6f7275u};
  k.rng = k.seed | 1;
  k.w = (walker *)calloc((size_t)n, sizeof *k.w);
  if (!KT_CHECK(t, k.w != NULL)) return;
  for (int i = 0; i < n; i++) {
    k.w[i].k = &k;
    k.w[i].id = i;
    k.w[i].co = kt_create(t, walker_body, &k.w[i], 0);
    if (!k.w[i].co) return;
  }
  for (long s = 0; s < steps && !t->failed; s++) {
    walker *w = &k.w[kt_rand(&k.rng) % (uint64_t)n];
    drive(&k, w, 1 + (unsigned)(kt_rand(&k.rng) % MAX_DEPTH));
  }
  for (int i = 0; i < n; i++) {
    walker *w = &k.w[i];
    void *out = NULL;
    w->target = 0;
    w->resumes++;
    KT_CHECK(t, ko_resume(w->co, NULL, &out) == KO_OK);
    KT_CHECK(t, ko_status(w->co) == KO_DONE, "coroutine %d did not finish", i);
    KT_CHECK(t, w->bad == 0, "coroutine %d: %u damaged frames or values", i, w->bad);
    KT_CHECK(t, w->live == 0, "coroutine %d: frames left unbalanced", i);
    KT_CHECK(t, w->yields == w->resumes - 1, "coroutine %d: %llu yields for %llu resumes", i,
             (unsigned long long)w->yields, (unsigned long long)w->resumes);
    KT_CHECK(t, (uintptr_t)out == (uintptr_t)kt_mix(w->entered, w->yields), "coroutine %d: checksum", i);
    ko_destroy(w->co);
  }
  kt_note(t, "%s%d coroutines, %ld steps, %llu nested resumes, seed 0x%llx",
          t->own_thread ? "scaled down for the threads backend: " : "", n, steps,
          (unsigned long long)k.nested, (unsigned long long)k.seed);
  free(k.w);
}

const kt_test kt_group_walk[] = {
  {"random-walk", random_walk},
  {NULL, NULL},
};
