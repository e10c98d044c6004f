/*
 * internal.h - what core.c, chan.c and sync.c share: intrusive lists, the
 * object table and the generic block/wake steps.
 */
#ifndef KO_SCHED_INTERNAL_H
#define KO_SCHED_INTERNAL_H

#include "core.h"

#include <stdlib.h>

/* ---- intrusive circular lists with a sentinel; an unlinked node is NULLed */
static inline void ks_list_init(ks_node *h) { h->prev = h->next = h; }
static inline int ks_list_empty(const ks_node *h) { return h->next == h; }
static inline int ks_linked(const ks_node *n) { return n->next != NULL; }
static inline void ks_list_push(ks_node *h, ks_node *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static inline void ks_list_unlink(ks_node *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = NULL;
}
static inline ks_node *ks_list_first(const ks_node *h) { return ks_list_empty(h) ? NULL : h->next; }

#define KS_CONTAINER(ptr, type, field) ((type *)((char *)(ptr) - offsetof(type, field)))
#define KS_WAITER(node) KS_CONTAINER(node, ks_waiter, link)

struct ks_core {
  ks_node runq;
  uint32_t nready;
  ks_node live;
  uint32_t nlive;
  /* timer heap: a binary min-heap on (deadline, tseq) */
  ks_task **heap;
  uint32_t nheap, heapcap;
  uint64_t tseq;
  /* handle table; handle 0 is never used */
  ks_obj **objs;
  uint32_t nobjs, objcap;
  uint32_t *freeh;
  uint32_t nfree, freecap;
  uint64_t serial[KS_KIND_COUNT];
  uint64_t rng;
  void *user;
  /* passes (see ks_pass_next): the driver's clock; whether a pass is under
   * way and its time is up, its start (KS_UNREAD: not read yet), its pops */
  ks_time (*now)(void *arg);
  void *now_arg;
  int in_pass, pass_over;
  ks_time pass_start;
  uint32_t pass_pops;
};

/* Registers a new object (zeroed, `size` bytes); NULL when out of memory. */
void *ks__obj_new(ks_core *c, ks_kind kind, size_t size);
void ks__obj_drop(ks_core *c, ks_obj *o);

/* A task about to perform a blocking operation: KO_OK, KO_EINVAL (not
 * running) or KO_ECANCELED (a cancel was pending; it is consumed). */
int ks__enter(ks_core *c, ks_task *t);
/* Room for n waiters (the inline one when n == 1); NULL when out of memory. */
ks_waiter *ks__waiters(ks_task *t, uint32_t n);
void ks__enqueue(ks_node *q, ks_waiter *w, ks_task *t, ks_obj *obj, uint8_t op, int32_t index, uint64_t value);
/* Marks t blocked on `wait`, with a deadline when timeout >= 0. */
void ks__block(ks_core *c, ks_task *t, ks_wait wait, ks_obj *obj, ks_time now, int64_t timeout);
/* Ends t's wait with this outcome and queues it to run. */
void ks__wake(ks_core *c, ks_task *t, int status, int32_t fired, uint64_t value);
/* Takes t out of every queue and the timer heap, leaving it blocked. */
void ks__unwait(ks_core *c, ks_task *t);
/* Pops the first waiter of a queue, or NULL. */
static inline ks_waiter *ks__pop(ks_node *q) {
  ks_node *n = ks_list_first(q);
  if (!n) return NULL;
  ks_list_unlink(n);
  return KS_WAITER(n);
}
uint64_t ks__random(ks_core *c);

/* sync.c: the end of a cond wait (signal, timeout, cancel): take the mutex
 * back before waking, or queue for it. */
void ks__cond_done(ks_core *c, ks_task *t, int status);
/* chan.c: frees a channel's buffer. */
void ks__chan_destroy(ks_chan *ch);

#endif
