/* compute.c - CPU work off the loop: four tasks count primes in compute
 * sections while a fifth keeps a 10 ms beat on the scheduler's loop. */
#include <korutin.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

static int beats;
static int computing = 4;

static long count_primes(long below) {
  long n = 0;
  for (long i = 2; i < below; i++) {
    int prime = 1;
    for (long d = 2; d * d <= i && prime; d++) prime = i % d != 0;
    n += prime;
  }
  return n;
}

static void *counter(void *arg) {
  long below = (long)(intptr_t)arg, n;
  if (ko_compute_begin() == KO_OK) { /* now on a compute thread */
    n = count_primes(below);
    ko_compute_end(); /* back on the loop's thread */
  } else {
    n = count_primes(below); /* no compute thread: here, stalling the others */
  }
  computing--;
  return (void *)(intptr_t)n;
}

static void *beat(void *arg) {
  (void)arg;
  while (computing > 0 && ko_sleep(10) == KO_OK) beats++;
  return NULL;
}

int main(void) {
  ko_sched *s;
  int err = ko_sched_new(&s, uv_default_loop(), NULL);
  if (err) return fprintf(stderr, "ko_sched_new: %s\n", ko_strerror(err)), 1;
  ko_task *t[4], *b;
  for (int i = 0; i < 4; i++) ko_spawn(s, &t[i], counter, (void *)(intptr_t)(2000000 + i * 100000), NULL);
  ko_spawn(s, &b, beat, NULL, "beat");
  ko_sched_run(s);
  for (int i = 0; i < 4; i++) {
    void *n;
    ko_join(t[i], KO_FOREVER, &n);
    printf("primes below %d: %ld\n", 2000000 + i * 100000, (long)(intptr_t)n);
  }
  ko_join(b, KO_FOREVER, NULL);
  printf("the beat task ran %d times meanwhile\n", beats);
  ko_sched_free(s);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  return beats > 0 ? 0 : 1;
}
