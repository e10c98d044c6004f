/*
 * korutin.h - stackful coroutines with pluggable switch backends.
 *
 * One header for C and C++ programs. A coroutine is a function running on
 * its own stack; ko_resume() enters it, ko_yield() leaves it, each passing
 * one pointer-sized value. The switch itself is done by a backend chosen at
 * run time by name: "asm", "boost", "ucontext" or "threads".
 *
 *   static void *body(ko_coro *co, void *arg) {
 *     void *in = ko_yield((void *)((intptr_t)arg + 1));
 *     return in;
 *   }
 *   ko_coro *co;
 *   ko_create(&co, NULL, body, (void *)1);      // NULL options: defaults
 *   void *out;
 *   ko_resume(co, NULL, &out);                  // out == 2
 *   ko_resume(co, (void *)7, &out);             // out == 7, co is KO_DEAD
 *   ko_destroy(co);
 */
#ifndef KORUTIN_H
#define KORUTIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KORUTIN_VERSION_MAJOR 0
#define KORUTIN_VERSION_MINOR 1
#define KORUTIN_VERSION_PATCH 0

/* Error codes: every function that can fail returns one (0 is success). */
typedef enum ko_err {
  KO_OK = 0,
  KO_EINVAL = -1,      /* a bad argument (NULL function, stack too small...) */
  KO_ENOMEM = -2,      /* stack or thread could not be allocated */
  KO_EDONE = -3,       /* the coroutine has finished */
  KO_EBUSY = -4,       /* it is running, or it is an ancestor of the caller */
  KO_ENOTCORO = -5,    /* the caller is not inside a coroutine */
  KO_EBACKEND = -6,    /* the backend is unknown or not built into this binary */
  KO_ETIMEDOUT = -7,   /* a wait ran out of time */
  KO_ECLOSED = -8,     /* the channel is closed */
  KO_ECANCELED = -9,   /* the task was cancelled */
  KO_EAGAIN = -10      /* would block (try* operations) */
} ko_err;

/* Text for an error code; never NULL. */
const char *ko_strerror(int err);

/* ---------------------------------------------------------------- backends */

typedef struct ko_backend ko_backend;

/* Number of backends korutin knows of, built into this binary or not. */
int ko_backend_count(void);
/* The i-th backend (0 <= i < ko_backend_count()), or NULL. */
const ko_backend *ko_backend_at(int i);
/* A backend by name ("asm", "boost", "ucontext", "threads"), or NULL. */
const ko_backend *ko_backend_find(const char *name);
/* The first usable backend, in order of speed. */
const ko_backend *ko_backend_default(void);
const char *ko_backend_name(const ko_backend *be);
/* NULL when the backend is usable here, else why it is not. */
const char *ko_backend_unavailable(const ko_backend *be);
/* Non-zero when each coroutine runs on an OS thread of its own. */
int ko_backend_own_thread(const ko_backend *be);

/* -------------------------------------------------------------- coroutines */

typedef struct ko_coro ko_coro;

/* The body of a coroutine. Its return value reaches the last ko_resume(). */
typedef void *(*ko_fn)(ko_coro *co, void *arg);

typedef enum ko_state {
  KO_SUSPENDED = 0, /* created, or stopped in ko_yield(): can be resumed */
  KO_RUNNING = 1,   /* the one running now */
  KO_NORMAL = 2,    /* it resumed another coroutine and waits for it */
  KO_DEAD = 3       /* its body returned */
} ko_state;

typedef struct ko_options {
  const ko_backend *backend; /* NULL: ko_backend_default() */
  size_t stack_size;         /* usable bytes; 0: 64 KiB */
  size_t guard_size;         /* bytes of guard below the stack; 0: one page */
  void *stack;               /* caller-supplied stack (no guard), or NULL */
} ko_options;

#define KO_MIN_STACK_SIZE ((size_t)16 * 1024)
#define KO_DEFAULT_STACK_SIZE ((size_t)64 * 1024)

/* Creates a suspended coroutine; its first resume calls fn(co, arg). */
int ko_create(ko_coro **out, const ko_options *opt, ko_fn fn, void *arg);
/* Runs co until it yields or returns; *out (if not NULL) gets that value.
 * `in` is what the pending ko_yield() returns (ignored on the first resume). */
int ko_resume(ko_coro *co, void *in, void **out);
/* Inside a coroutine: hands `out` to the resumer and waits for the next
 * resume, whose `in` it returns. Outside a coroutine it returns NULL and
 * does nothing; use ko_current() to tell. */
void *ko_yield(void *out);
/* The coroutine the caller runs in, or NULL on a thread's own stack. */
ko_coro *ko_current(void);
ko_state ko_status(const ko_coro *co);
/* Frees a coroutine that is suspended or dead (not one that runs). A
 * suspended one is dropped where it stands: its stack is not unwound. */
int ko_destroy(ko_coro *co);

void *ko_get_data(const ko_coro *co);
void ko_set_data(ko_coro *co, void *data);
const ko_backend *ko_coro_backend(const ko_coro *co);
/* The stack's usable range [*lo, *lo + *size). */
void ko_coro_stack(const ko_coro *co, void **lo, size_t *size);

/* Stacks of freed coroutines are kept for reuse, up to this many (default
 * 64); returns the old limit. 0 frees the pool. */
size_t ko_stack_pool_limit(size_t max);

#ifdef __cplusplus
}
#endif
#endif /* KORUTIN_H */
