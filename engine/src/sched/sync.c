/*
 * sync.c - mutex, condition (lthread's cond, optionally with a mutex),
 * semaphore and wait group. Every queue is FIFO; a released mutex or
 * permit is handed straight to the first waiter, so nobody can barge in.
 */
#include "internal.h"

/* ------------------------------------------------------------------ mutex */

ks_mutex *ks_mutex_new(ks_core *c) {
  ks_mutex *m = (ks_mutex *)ks__obj_new(c, KS_MUTEX, sizeof(ks_mutex));
  if (m) ks_list_init(&m->q);
  return m;
}

int ks_mutex_lock(ks_core *c, ks_task *t, ks_mutex *m, ks_time now, int64_t timeout) {
  int err = ks__enter(c, t);
  if (err) return err;
  if (m->owner == t) return KO_EBUSY; /* it would wait for itself */
  if (!m->owner) {
    m->owner = t;
    return KO_OK;
  }
  ks__enqueue(&m->q, ks__waiters(t, 1), t, &m->o, KS_W_LOCK, 0, 0);
  ks__block(c, t, KS_W_LOCK, &m->o, now, timeout);
  return KS_BLOCK;
}

int ks_mutex_trylock(ks_core *c, ks_task *t, ks_mutex *m) {
  (void)c;
  if (!t) return KO_EINVAL;
  if (m->owner) return m->owner == t ? KO_EBUSY : KO_EAGAIN;
  m->owner = t;
  return KO_OK;
}

static void hand_over(ks_core *c, ks_mutex *m) {
  ks_waiter *w = ks__pop(&m->q);
  if (!w) {
    m->owner = NULL;
    return;
  }
  ks_task *t = w->task;
  m->owner = t;
  ks__wake(c, t, w->op == KS_W_RELOCK ? t->pending : KO_OK, -1, 0);
}

int ks_mutex_unlock(ks_core *c, ks_task *t, ks_mutex *m) {
  if (!t || m->owner != t) return KO_EINVAL;
  hand_over(c, m);
  return KO_OK;
}

/* ------------------------------------------------------------------- cond */

ks_cond *ks_cond_new(ks_core *c) {
  ks_cond *cv = (ks_cond *)ks__obj_new(c, KS_COND, sizeof(ks_cond));
  if (cv) ks_list_init(&cv->q);
  return cv;
}

int ks_cond_wait(ks_core *c, ks_task *t, ks_cond *cv, ks_mutex *m, ks_time now, int64_t timeout) {
  if (m && (!t || m->owner != t)) return KO_EINVAL;
  int err = ks__enter(c, t);
  if (err) return err;
  ks__enqueue(&cv->q, ks__waiters(t, 1), t, &cv->o, KS_W_COND, 0, 0);
  ks__block(c, t, KS_W_COND, &cv->o, now, timeout);
  t->relock = m;
  if (m) hand_over(c, m);
  return KS_BLOCK;
}

void ks__cond_done(ks_core *c, ks_task *t, int status) {
  ks_mutex *m = t->relock;
  if (!m || !m->owner) {
    if (m) m->owner = t;
    ks__wake(c, t, status, -1, 0);
    return;
  }
  /* the mutex is taken: wait for it, with no deadline, then report status */
  ks__unwait(c, t);
  t->pending = status;
  t->relock = NULL;
  t->wait = KS_W_RELOCK;
  t->wait_obj = &m->o;
  ks__enqueue(&m->q, ks__waiters(t, 1), t, &m->o, KS_W_RELOCK, 0, 0);
}

static uint32_t cond_wake(ks_core *c, ks_cond *cv, uint32_t max) {
  uint32_t n = 0;
  ks_waiter *w;
  while (n < max && (w = ks__pop(&cv->q))) {
    ks__cond_done(c, w->task, KO_OK);
    n++;
  }
  return n;
}

uint32_t ks_cond_signal(ks_core *c, ks_cond *cv) { return cond_wake(c, cv, 1); }
uint32_t ks_cond_broadcast(ks_core *c, ks_cond *cv) { return cond_wake(c, cv, UINT32_MAX); }

/* -------------------------------------------------------------- semaphore */

ks_sem *ks_sem_new(ks_core *c, int64_t count) {
  if (count < 0) return NULL;
  ks_sem *s = (ks_sem *)ks__obj_new(c, KS_SEM, sizeof(ks_sem));
  if (!s) return NULL;
  s->count = count;
  ks_list_init(&s->q);
  return s;
}

int ks_sem_acquire(ks_core *c, ks_task *t, ks_sem *s, ks_time now, int64_t timeout) {
  int err = ks__enter(c, t);
  if (err) return err;
  if (s->count > 0) {
    s->count--;
    return KO_OK;
  }
  ks__enqueue(&s->q, ks__waiters(t, 1), t, &s->o, KS_W_SEM, 0, 0);
  ks__block(c, t, KS_W_SEM, &s->o, now, timeout);
  return KS_BLOCK;
}

int ks_sem_try_acquire(ks_core *c, ks_sem *s) {
  (void)c;
  if (s->count <= 0) return KO_EAGAIN;
  s->count--;
  return KO_OK;
}

int ks_sem_release(ks_core *c, ks_sem *s, int64_t n) {
  if (n <= 0) return KO_EINVAL;
  for (; n > 0; n--) {
    ks_waiter *w = ks__pop(&s->q);
    if (w) ks__wake(c, w->task, KO_OK, -1, 0);
    else s->count++;
  }
  return KO_OK;
}

/* ------------------------------------------------------------- wait group */

ks_wg *ks_wg_new(ks_core *c) {
  ks_wg *wg = (ks_wg *)ks__obj_new(c, KS_WG, sizeof(ks_wg));
  if (wg) ks_list_init(&wg->q);
  return wg;
}

int ks_wg_add(ks_core *c, ks_wg *wg, int64_t delta) {
  if (wg->count + delta < 0) return KO_EINVAL;
  wg->count += delta;
  if (wg->count == 0) {
    ks_waiter *w;
    while ((w = ks__pop(&wg->q))) ks__wake(c, w->task, KO_OK, -1, 0);
  }
  return KO_OK;
}

int ks_wg_wait(ks_core *c, ks_task *t, ks_wg *wg, ks_time now, int64_t timeout) {
  int err = ks__enter(c, t);
  if (err) return err;
  if (wg->count == 0) return KO_OK;
  ks__enqueue(&wg->q, ks__waiters(t, 1), t, &wg->o, KS_W_WG, 0, 0);
  ks__block(c, t, KS_W_WG, &wg->o, now, timeout);
  return KS_BLOCK;
}

/* ------------------------------------------------------------------ free */

int ks_obj_free(ks_core *c, void *obj) {
  ks_obj *o = (ks_obj *)obj;
  ks_node *q;
  switch (o->kind) {
    case KS_MUTEX: q = &((ks_mutex *)o)->q; break;
    case KS_COND: q = &((ks_cond *)o)->q; break;
    case KS_SEM: q = &((ks_sem *)o)->q; break;
    case KS_WG: q = &((ks_wg *)o)->q; break;
    case KS_CHAN: return ks_chan_free(c, (ks_chan *)o);
    default: return KO_EINVAL;
  }
  if (!ks_list_empty(q)) return KO_EBUSY;
  ks__obj_drop(c, o);
  return KO_OK;
}
