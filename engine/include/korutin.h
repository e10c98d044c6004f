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
 *   ko_resume(co, (void *)7, &out);             // out == 7, co is KO_DONE
 *   ko_destroy(co);
 */
#ifndef KORUTIN_H
#define KORUTIN_H

#include <stddef.h>
#include <stdint.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h> /* socklen_t */
#else
#include <sys/socket.h> /* socklen_t */
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define KORUTIN_VERSION_MAJOR 0
#define KORUTIN_VERSION_MINOR 1
#define KORUTIN_VERSION_PATCH 0

/* Error codes: every function that can fail returns one (0 is success).
 *
 * The one table of them, libuv style (UV_ERRNO_MAP): name, value, the text
 * ko_strerror() gives, and the code JavaScript throws for it (ERR_<that>;
 * NONE: it is never thrown as such). scripts/gen-vocab.js mirrors it into
 * ts/vocab.ts. Where JS words differ from C's (ECANCELED: ERR_CANCELLED,
 * EBUSY: ERR_ALREADY_RUNNING...), this column is the one place that says so.
 *   EINVAL     a bad argument (NULL function, stack too small...)
 *   ENOMEM     a stack or thread could not be allocated
 *   EBUSY      it is running, or it is an ancestor of the caller
 *   EBACKEND   the backend is unknown or not built into this binary
 *   EAGAIN     would block (try* operations)
 *   ESYS       a system call failed: errno says why (ko_accept, ko_connect...)
 *   EUNSAFE    the coroutine may not suspend where it is (the Node addon: inside
 *              an Array.prototype.join or vm code with a watchdog) */
#define KO_ERRNO_MAP(XX)                                                                    \
  XX(OK, 0, "success", NONE)                                                                \
  XX(EINVAL, -1, "invalid argument", INVALID_ARGUMENT)                                      \
  XX(ENOMEM, -2, "out of memory (stack or thread)", OUT_OF_MEMORY)                          \
  XX(EDONE, -3, "the coroutine has finished", COROUTINE_DONE)                               \
  XX(EBUSY, -4, "the coroutine is running or is an ancestor of the caller", ALREADY_RUNNING) \
  XX(ENOTCORO, -5, "not inside a coroutine", NOT_IN_COROUTINE)                              \
  XX(EBACKEND, -6, "backend unknown or not built into this binary", BACKEND_UNAVAILABLE)    \
  XX(ETIMEDOUT, -7, "timed out", TIMEOUT)                                                   \
  XX(ECLOSED, -8, "channel closed", CHANNEL_CLOSED)                                         \
  XX(ECANCELED, -9, "cancelled", CANCELLED)                                                 \
  XX(EAGAIN, -10, "would block", NONE)                                                      \
  XX(ESYS, -11, "a system call failed (see errno)", NONE)                                   \
  XX(EUNSAFE, -12, "the coroutine may not suspend here", UNSAFE_YIELD)

typedef enum ko_err {
#define KO_XX(name, value, text, js) KO_##name = value,
  KO_ERRNO_MAP(KO_XX)
#undef KO_XX
} ko_err;

/* Text for an error code; never NULL. */
const char *ko_strerror(int err);
/* The error code's name ("EINVAL"...), or NULL for an unknown one. */
const char *ko_err_name(int err);
/* More about the last failure of ko_create() on this thread, when there is
 * more to say than its error code (e.g. a KO_ENOMEM because the kernel's
 * vm.max_map_count would be reached: it names the figure to set); else
 * NULL. */
const char *ko_error_detail(void);

/* ---------------------------------------------------------------- backends */

typedef struct ko_backend ko_backend;

/* The backends korutin knows of, fastest first: the order of ko_backend_at()
 * and of ko_backend_default()'s choice (mirrored into ts/vocab.ts). */
#define KO_BACKEND_MAP(XX) XX(asm) XX(boost) XX(ucontext) XX(threads)

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

/* A coroutine's states: name, value, the word for it (the JS one too). */
#define KO_STATE_MAP(XX)                                                          \
  XX(SUSPENDED, 0, "suspended") /* created, or stopped in ko_yield(): can be resumed */ \
  XX(RUNNING, 1, "running")     /* the one running now */                         \
  XX(NORMAL, 2, "normal")       /* it resumed another coroutine and waits for it */ \
  XX(DONE, 3, "done")           /* its body returned */

typedef enum ko_state {
#define KO_XX(name, value, word) KO_##name = value,
  KO_STATE_MAP(KO_XX)
#undef KO_XX
} ko_state;
/* KO_DONE's old name, for C code written before states and tasks shared "done". */
#define KO_DEAD KO_DONE

typedef struct ko_options {
  const ko_backend *backend; /* NULL: ko_backend_default() */
  size_t stack_size;         /* usable bytes; 0: 64 KiB */
  size_t guard_size;         /* bytes of guard below the stack; 0: one page
                                (Windows: at least 3 pages, see stack_win.c) */
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

/* --------------------------------------------------------------- scheduler
 *
 * Tasks: coroutines run by a scheduler on a libuv loop, lthread style. A
 * task blocks (sleep, join, channel, mutex, cond, semaphore, wait group, fd
 * readiness) and the loop goes on with the others. Link with -lkorutin -luv.
 *
 *   static void *worker(void *arg) { ko_sleep(10); return arg; }
 *   ko_sched *s;
 *   ko_sched_new(&s, uv_default_loop(), NULL);
 *   ko_task *t;
 *   ko_spawn(s, &t, worker, NULL, "worker");
 *   ko_sched_run(s);                  // uv_run() until nothing is left to do
 *   void *out;
 *   ko_join(t, KO_FOREVER, &out);     // outside a task: only once t is done
 *   ko_sched_free(s);
 *
 * Timeouts are in milliseconds; KO_FOREVER (any negative value) waits as
 * long as it takes. The blocking calls below must be made from inside a
 * task; they return KO_ENOTCORO anywhere else. A task that is cancelled
 * gets KO_ECANCELED from the blocking call it is in (or its next one).
 * Every object belongs to one scheduler and one thread (its loop's).
 */
struct uv_loop_s;

typedef struct ko_sched ko_sched;
typedef struct ko_task ko_task;
typedef struct ko_chan ko_chan;
typedef struct ko_mutex ko_mutex;
typedef struct ko_cond ko_cond;
typedef struct ko_sem ko_sem;
typedef struct ko_wg ko_wg;

#define KO_FOREVER ((int64_t)-1)
/* ko_sleep(): the sleep was ended early by ko_wakeup(). */
#define KO_WOKEN 1
/* ko_wait_fd() events (the same bits as libuv's UV_READABLE/UV_WRITABLE). */
#define KO_READABLE 1
#define KO_WRITABLE 2

typedef struct ko_sched_options {
  const ko_backend *backend; /* NULL: ko_backend_default() */
  size_t stack_size;         /* per task; 0: KO_DEFAULT_STACK_SIZE */
  uint64_t seed;             /* select's random choice; 0: a fixed seed */
} ko_sched_options;

/* A scheduler whose tasks run on `loop` (it must outlive the scheduler). */
int ko_sched_new(ko_sched **out, struct uv_loop_s *loop, const ko_sched_options *opt);
/* Runs the loop until nothing is left to do; returns how many tasks are
 * still alive (blocked forever: a deadlock when not 0), or an error. */
int ko_sched_run(ko_sched *s);
/* Frees the scheduler, its tasks (unfinished ones are dropped without
 * unwinding) and every channel, mutex, cond, semaphore and wait group made
 * on it. Its two libuv handles close on the loop's next turn. Not from a task. */
int ko_sched_free(ko_sched *s);
/* The scheduler of the running task, or NULL outside tasks. */
ko_sched *ko_sched_current(void);

typedef void *(*ko_task_fn)(void *arg);

/* A task that starts soon (when the loop runs); `name` may be NULL. It ends
 * when fn returns; join it (ko_join) or detach it (ko_detach) to free it. */
int ko_spawn(ko_sched *s, ko_task **out, ko_task_fn fn, void *arg, const char *name);
/* The running task, or NULL. */
ko_task *ko_task_current(void);
uint64_t ko_task_id(const ko_task *t);
const char *ko_task_name(const ko_task *t);
/* "ready", "running", "blocked", "done" or "cancelled". */
const char *ko_task_state(const ko_task *t);
/* What it waits on, e.g. "sleep 50ms", "recv channel#3", "join task#2"
 * (snprintf-like: returns the full length). */
int ko_task_describe(const ko_task *t, char *buf, size_t size);
/* When its current (or last) timed wait ends or ended: microseconds of
 * uv_hrtime() / 1000; 0 if it never waited with a deadline. */
uint64_t ko_task_deadline(const ko_task *t);
void *ko_task_data(const ko_task *t);
void ko_task_set_data(ko_task *t, void *data);
/* Waits until t ends, then frees it: KO_OK with fn's result in *result
 * (if not NULL), KO_ECANCELED if it was cancelled (the result is still
 * given), KO_ETIMEDOUT (t keeps running and can be joined again). Outside a
 * task it only succeeds once t is done (else KO_ENOTCORO). One joiner per
 * task: KO_EBUSY while another task joins it. */
int ko_join(ko_task *t, int64_t timeout_ms, void **result);
/* t is freed as soon as it ends (at once if it has); KO_EBUSY while a task
 * joins it. */
int ko_detach(ko_task *t);
/* Asks t to stop: its current (or next) blocking call returns KO_ECANCELED.
 * A task cancelled before it started never runs. KO_EDONE when done. */
int ko_cancel(ko_task *t);
/* Sleeps; KO_OK, KO_WOKEN (ko_wakeup), or KO_ECANCELED. */
int ko_sleep(int64_t ms);
/* Ends t's sleep early; KO_EINVAL if t is not sleeping. */
int ko_wakeup(ko_task *t);
/* Lets every other ready task run once, then continues. */
int ko_yield_now(void);
/* Waits until fd is readable/writable (`events`: KO_READABLE|KO_WRITABLE);
 * KO_OK with the ready events in *revents, KO_ETIMEDOUT, KO_ECANCELED, or
 * KO_EINVAL (a fd libuv cannot poll). One waiter per fd at a time. */
int ko_wait_fd(int fd, int events, int64_t timeout_ms, int *revents);

/* Blocking-style sockets for tasks (lthread's socket calls), on ko_wait_fd():
 * only the calling task waits. The fds must be non-blocking (ko_socket() and
 * ko_accept() make them so, close-on-exec). Each returns KO_OK, KO_ETIMEDOUT
 * (nothing is lost: call again), KO_ECANCELED, KO_ENOTCORO outside tasks,
 * KO_EINVAL, or KO_ESYS with errno kept (ECONNREFUSED, ECONNRESET...). */
struct sockaddr;
int ko_socket(int domain, int type, int protocol, int *out_fd);
int ko_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t timeout_ms, int *out_fd);
/* Connects; the timeout covers the whole handshake. */
int ko_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t timeout_ms);
/* Receives up to len bytes once some are there: *got 0 is the end of the stream. */
int ko_recv(int fd, void *buf, size_t len, int64_t timeout_ms, size_t *got);
/* Sends all len bytes, waiting while the socket is full (no SIGPIPE); *sent
 * (may be NULL) says how many went, also on a timeout or an error. */
int ko_send(int fd, const void *buf, size_t len, int64_t timeout_ms, size_t *sent);
int ko_recvfrom(int fd, void *buf, size_t len, struct sockaddr *addr, socklen_t *addrlen, int64_t timeout_ms,
                size_t *got);
int ko_sendto(int fd, const void *buf, size_t len, const struct sockaddr *addr, socklen_t addrlen, int64_t timeout_ms);

/* Compute sections (lthread's compute_begin/end): between the two calls the
 * task runs on a compute thread, so CPU-bound work or a blocking call there
 * stalls no other task; ko_compute_end() brings it back to its scheduler's
 * thread. Compute threads start on demand, up to ko_compute_limits()' max
 * (default: the CPUs; tasks beyond it wait their turn), and one idle for
 * idle_ms (default 60 s) exits. Every backend supports it: asm, boost and
 * ucontext carry the task's stack over to the compute thread; on threads
 * the task keeps its own OS thread and the compute thread only waits.
 *
 * In a section, the scheduler calls declared here (sleep,
 * channels, sync, fds, spawn, cancel...) return KO_ENOTCORO; only
 * ko_task_current(), ko_task_data() and ko_compute_end() are for it. As the
 * task may change OS thread at each call, do not keep the address of a
 * thread-local variable across them (errno included: read it in a function
 * called in between), and hold no lock of the scheduler's thread.
 * A cancel is delivered by ko_compute_end() (KO_ECANCELED, the task back
 * home) or the next blocking call. A body that returns inside a section
 * ends the task as usual.
 *
 * ko_compute_begin(): KO_OK (now on a compute thread), KO_ECANCELED (a
 * cancel was pending; still home), KO_ENOMEM (no compute thread could
 * start; still home), KO_EBUSY (already in a section), KO_ENOTCORO (not a
 * task). ko_compute_end(): KO_OK or KO_ECANCELED (home again either way),
 * KO_EINVAL (not in a section), KO_ENOTCORO (not a task). */
int ko_compute_begin(void);
int ko_compute_end(void);
/* max_threads 0: the number of CPUs. KO_EINVAL for idle_ms < 0. */
int ko_compute_limits(unsigned max_threads, int64_t idle_ms);
/* Compute threads alive now (busy or idle). */
int ko_compute_threads(void);

/* Channels of pointer-sized values: capacity 0 is a rendezvous, n buffers n. */
int ko_chan_new(ko_sched *s, ko_chan **out, size_t capacity);
/* KO_EBUSY while a task waits on it. */
int ko_chan_free(ko_chan *ch);
/* KO_OK, KO_ECLOSED, KO_ETIMEDOUT, KO_ECANCELED. */
int ko_chan_send(ko_chan *ch, void *v, int64_t timeout_ms);
/* KO_OK with *v; KO_ECLOSED once it is closed and drained; KO_ETIMEDOUT... */
int ko_chan_recv(ko_chan *ch, void **v, int64_t timeout_ms);
/* Never block (usable outside tasks): KO_EAGAIN when they would. */
int ko_chan_try_send(ko_chan *ch, void *v);
int ko_chan_try_recv(ko_chan *ch, void **v);
/* Wakes every waiter (KO_ECLOSED); buffered values can still be received.
 * KO_ECLOSED if it already was. */
int ko_chan_close(ko_chan *ch);
size_t ko_chan_len(const ko_chan *ch);

typedef enum ko_case_op { KO_CASE_RECV = 1, KO_CASE_SEND = 2 } ko_case_op;
typedef struct ko_case {
  ko_case_op op;
  ko_chan *ch;
  void *value; /* SEND: what to send; RECV: what was received */
} ko_case;
/* Waits until one case can proceed and performs it; when several can, one
 * is chosen at random. KO_OK or KO_ECLOSED (a recv case saw the end, or a
 * send case found its channel closed) with *fired set; KO_ETIMEDOUT... */
int ko_select(ko_case *cases, int n, int64_t timeout_ms, int *fired);
/* The same without waiting: KO_EAGAIN when no case is ready. */
int ko_select_try(ko_case *cases, int n, int *fired);

/* A mutex handed to waiters in FIFO order; only its holder unlocks it. */
int ko_mutex_new(ko_sched *s, ko_mutex **out);
int ko_mutex_free(ko_mutex *m);
/* KO_OK, KO_ETIMEDOUT, KO_ECANCELED, KO_EBUSY (the caller holds it). */
int ko_mutex_lock(ko_mutex *m, int64_t timeout_ms);
int ko_mutex_trylock(ko_mutex *m);
/* KO_EINVAL unless the caller holds it. */
int ko_mutex_unlock(ko_mutex *m);

/* lthread's condition: wait (with a timeout), signal, broadcast. */
int ko_cond_new(ko_sched *s, ko_cond **out);
int ko_cond_free(ko_cond *c);
/* KO_OK when signalled, KO_ETIMEDOUT, KO_ECANCELED. With a mutex (held by
 * the caller, else KO_EINVAL) it is released while waiting and held again
 * when the call returns, whatever it returns. */
int ko_cond_wait(ko_cond *c, ko_mutex *m, int64_t timeout_ms);
/* Return how many tasks they woke. */
int ko_cond_signal(ko_cond *c);
int ko_cond_broadcast(ko_cond *c);

int ko_sem_new(ko_sched *s, ko_sem **out, int64_t count);
int ko_sem_free(ko_sem *sem);
int ko_sem_acquire(ko_sem *sem, int64_t timeout_ms);
int ko_sem_try_acquire(ko_sem *sem);
int ko_sem_release(ko_sem *sem, int64_t n);

/* Go's WaitGroup: add(n) before starting work, done() after, wait() for 0. */
int ko_wg_new(ko_sched *s, ko_wg **out);
int ko_wg_free(ko_wg *wg);
/* KO_EINVAL when the counter would go negative. */
int ko_wg_add(ko_wg *wg, int64_t delta);
int ko_wg_done(ko_wg *wg);
int ko_wg_wait(ko_wg *wg, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* KORUTIN_H */
