/* hello.c - a generator in C: the coroutine yields squares until it is done. */
#include <korutin.h>
#include <stdint.h>
#include <stdio.h>

static void *squares(ko_coro *co, void *arg) {
  (void)co;
  intptr_t n = (intptr_t)arg;
  for (intptr_t i = 1; i <= n; i++) ko_yield((void *)(i * i)); /* hand a value out */
  return NULL;
}

int main(void) {
  ko_coro *co;
  int err = ko_create(&co, NULL, squares, (void *)(intptr_t)5); /* default backend, 64 KiB stack */
  if (err) return fprintf(stderr, "ko_create: %s\n", ko_strerror(err)), 1;
  void *out;
  while (ko_resume(co, NULL, &out) == KO_OK && ko_status(co) != KO_DONE)
    printf("%ld ", (long)(intptr_t)out);
  printf("(backend: %s)\n", ko_backend_name(ko_coro_backend(co)));
  ko_destroy(co);
  return 0;
}
