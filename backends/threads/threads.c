/*
 * threads.c - the threads backend: one OS thread per context.
 *
 * Each context is a thread started on the coroutine's own stack. A switch
 * hands a baton over: the target's flag is raised and it is woken, then the
 * switching thread sleeps until its own flag is raised again. Exactly one of
 * the threads runs at any time. Linux uses a futex; elsewhere a mutex and a
 * condition variable per context.
 *
 * A back context (the resumer's) is zero-filled and only ever waits, so it
 * needs no thread. Destroying a context that never finished wakes its
 * thread with `dying` set; the thread leaves through a longjmp to its start
 * routine, running nothing of the coroutine's frames (no C++ destructor of
 * them either: a coroutine abandoned at a Node environment's teardown has
 * v8::Locker/Unlocker frames there, whose isolate may be gone), and is
 * joined before destroy returns, so no thread of a context outlives it
 * (nor runs in a library unloaded after it).
 */
#include "backend.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

typedef struct tctx {
  _Atomic int baton;        /* 1: this context may run */
  int dying;
  int has_thread;
#if !defined(__linux__)
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int sync_ready;
#endif
  pthread_t thread;
  void (*entry)(void *);
  void *arg;
  void *value;              /* handed in by the jump that wakes this one */
  jmp_buf leave;
} tctx;

#if defined(__linux__)

static void wait_baton(tctx *c) {
  while (atomic_load_explicit(&c->baton, memory_order_acquire) == 0)
    syscall(SYS_futex, &c->baton, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static void pass_baton(tctx *c) {
  atomic_store_explicit(&c->baton, 1, memory_order_release);
  syscall(SYS_futex, &c->baton, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void sync_init(tctx *c) { (void)c; }
static void sync_fini(tctx *c) { (void)c; }

#else

/* A zero-filled back context gets its mutex and condvar on first use. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static void sync_init(tctx *c) {
  pthread_mutex_lock(&init_lock);
  if (!c->sync_ready) {
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->sync_ready = 1;
  }
  pthread_mutex_unlock(&init_lock);
}
static void sync_fini(tctx *c) {
  if (!c->sync_ready) return;
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->cond);
}
static void wait_baton(tctx *c) {
  sync_init(c);
  pthread_mutex_lock(&c->lock);
  while (atomic_load_explicit(&c->baton, memory_order_acquire) == 0)
    pthread_cond_wait(&c->cond, &c->lock);
  pthread_mutex_unlock(&c->lock);
}
static void pass_baton(tctx *c) {
  sync_init(c);
  pthread_mutex_lock(&c->lock);
  atomic_store_explicit(&c->baton, 1, memory_order_release);
  pthread_cond_signal(&c->cond);
  pthread_mutex_unlock(&c->lock);
}

#endif

static void *thread_main(void *p) {
  tctx *c = (tctx *)p;
  wait_baton(c);
  if (!c->dying && setjmp(c->leave) == 0) c->entry(c->arg);
  return NULL;
}

static int t_make(void *ctx, void *lo, size_t size, void (*entry)(void *), void *arg) {
  tctx *c = (tctx *)ctx;
  memset(c, 0, sizeof *c);
  sync_init(c);
  c->entry = entry;
  c->arg = arg;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return -2;
  int err = pthread_attr_setstack(&attr, lo, size);
  if (!err) err = pthread_create(&c->thread, &attr, thread_main, c);
  pthread_attr_destroy(&attr);
  if (err) return -2; /* KO_ENOMEM */
  c->has_thread = 1;
  return 0;
}

static void *t_jump(void *from, void *to, void *value) {
  tctx *f = (tctx *)from, *t = (tctx *)to;
  atomic_store_explicit(&f->baton, 0, memory_order_relaxed);
  t->value = value;
  pass_baton(t);
  wait_baton(f);
  if (f->dying) longjmp(f->leave, 1);
  return f->value;
}

static void t_destroy(void *ctx) {
  tctx *c = (tctx *)ctx;
  if (!c->has_thread) return;
  c->dying = 1;
  pass_baton(c);
  pthread_join(c->thread, NULL);
  c->has_thread = 0;
  sync_fini(c);
}

/* glibc wants PTHREAD_STACK_MIN (128 KiB on aarch64) and carves the thread's
 * TLS and descriptor out of the given stack: leave room for both. */
static size_t t_min_stack(void) {
  long min = sysconf(_SC_THREAD_STACK_MIN);
  return (size_t)(min > 0 ? min : 16384) + 16 * 1024;
}

const struct ko_backend ko_backend_threads = {
  .name = "threads",
  .flags = KO_BACKEND_OWN_THREAD,
  .min_stack = t_min_stack,
  .ctx_size = sizeof(tctx),
  .make = t_make,
  .jump = t_jump,
  .resume = t_jump,
  .yield = t_jump,
  .destroy = t_destroy,
};
