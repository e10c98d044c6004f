/*
 * objects.c - channels, select, mutexes, conditions, semaphores and wait
 * groups for C tasks: each call checks who calls and hands the work to the
 * core, suspending the task when the core says KS_BLOCK.
 */
#include "driver.h"

#include <stdlib.h>

/* -------------------------------------------------------------- channels */

#define SCHED_OF(obj) ((ko_sched *)ks_core_user(((ks_obj *)(obj))->core))

int ko_chan_new(ko_sched *s, ko_chan **out, size_t capacity) {
  NOT_IN_COMPUTE();
  if (!s || !out || capacity > UINT32_MAX) return KO_EINVAL;
  ks_chan *ch = ks_chan_new(s->core, (uint32_t)capacity);
  *out = (ko_chan *)ch;
  return ch ? KO_OK : KO_ENOMEM;
}

int ko_chan_free(ko_chan *ch) {
  NOT_IN_COMPUTE();
  if (!ch) return KO_EINVAL;
  return ks_chan_free(((ks_obj *)ch)->core, (ks_chan *)ch);
}

/* The calling task, which must belong to obj's scheduler. */
static int task_for(const void *obj, ko_task **me) {
  if (!obj) return KO_EINVAL;
  *me = drv_self();
  if (!*me) return KO_ENOTCORO;
  return (*me)->s == SCHED_OF(obj) ? KO_OK : KO_EINVAL;
}

int ko_chan_send(ko_chan *ch, void *v, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(ch, &me);
  if (err) return err;
  return drv_finish_op(me, ks_chan_send(me->core, me->kt, (ks_chan *)ch, (uint64_t)(uintptr_t)v, drv_now_for(timeout_ms),
                                    drv_us(timeout_ms)));
}

int ko_chan_recv(ko_chan *ch, void **v, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(ch, &me);
  if (err) return err;
  uint64_t got = 0;
  int r = ks_chan_recv(me->core, me->kt, (ks_chan *)ch, &got, drv_now_for(timeout_ms), drv_us(timeout_ms));
  if (r == KS_BLOCK) {
    r = drv_suspend(me);
    got = me->kt->value;
  }
  if (v) *v = r == KO_OK ? (void *)(uintptr_t)got : NULL;
  return r;
}

int ko_chan_try_send(ko_chan *ch, void *v) {
  NOT_IN_COMPUTE();
  if (!ch) return KO_EINVAL;
  ko_sched *s = SCHED_OF(ch);
  int r = ks_chan_try_send(s->core, (ks_chan *)ch, (uint64_t)(uintptr_t)v);
  drv_update(s);
  return r;
}

int ko_chan_try_recv(ko_chan *ch, void **v) {
  NOT_IN_COMPUTE();
  if (!ch) return KO_EINVAL;
  ko_sched *s = SCHED_OF(ch);
  uint64_t got = 0;
  int r = ks_chan_try_recv(s->core, (ks_chan *)ch, &got);
  if (v) *v = r == KO_OK ? (void *)(uintptr_t)got : NULL;
  drv_update(s);
  return r;
}

int ko_chan_close(ko_chan *ch) {
  NOT_IN_COMPUTE();
  if (!ch) return KO_EINVAL;
  ko_sched *s = SCHED_OF(ch);
  int r = ks_chan_close(s->core, (ks_chan *)ch);
  drv_update(s);
  return r;
}

size_t ko_chan_len(const ko_chan *ch) { return ch ? ((const ks_chan *)ch)->len : 0; }

static int select_impl(ko_case *cases, int n, int64_t timeout_ms, int nonblock, int *fired) {
  NOT_IN_COMPUTE();
  if (!cases || n <= 0 || n > 4096) return KO_EINVAL;
  ks_case buf[16];
  ks_case *k = n <= 16 ? buf : (ks_case *)malloc((size_t)n * sizeof *k);
  if (!k) return KO_ENOMEM;
  ko_sched *s = NULL;
  int err = KO_OK;
  for (int i = 0; i < n && !err; i++) {
    if (!cases[i].ch || (cases[i].op != KO_CASE_RECV && cases[i].op != KO_CASE_SEND)) err = KO_EINVAL;
    else if (s && SCHED_OF(cases[i].ch) != s) err = KO_EINVAL;
    else {
      s = SCHED_OF(cases[i].ch);
      k[i].op = cases[i].op == KO_CASE_RECV ? KS_OP_RECV : KS_OP_SEND;
      k[i].ch = (ks_chan *)cases[i].ch;
      k[i].value = (uint64_t)(uintptr_t)cases[i].value;
    }
  }
  ko_task *me = drv_self();
  if (!err && !nonblock && !me) err = KO_ENOTCORO;
  if (!err && me && me->s != s) err = KO_EINVAL;
  int32_t which = -1;
  uint64_t got = 0;
  int r = err;
  if (!err) {
    r = ks_select(s->core, me ? me->kt : NULL, k, (uint32_t)n, drv_now_for(timeout_ms), drv_us(timeout_ms), nonblock, &which, &got);
    if (r == KS_BLOCK) {
      r = drv_suspend(me);
      which = me->kt->fired;
      got = me->kt->value;
    }
    if (which >= 0 && fired) *fired = which;
    if (which >= 0 && r == KO_OK && cases[which].op == KO_CASE_RECV) cases[which].value = (void *)(uintptr_t)got;
    if (nonblock) drv_update(s);
  }
  if (k != buf) free(k);
  return r;
}

int ko_select(ko_case *cases, int n, int64_t timeout_ms, int *fired) {
  return select_impl(cases, n, timeout_ms, 0, fired);
}

int ko_select_try(ko_case *cases, int n, int *fired) { return select_impl(cases, n, -1, 1, fired); }

/* ------------------------------------------------------------------ sync */

int ko_mutex_new(ko_sched *s, ko_mutex **out) {
  NOT_IN_COMPUTE();
  if (!s || !out) return KO_EINVAL;
  *out = (ko_mutex *)ks_mutex_new(s->core);
  return *out ? KO_OK : KO_ENOMEM;
}

int ko_mutex_free(ko_mutex *m) {
  NOT_IN_COMPUTE();
  return m ? ks_obj_free(((ks_obj *)m)->core, m) : KO_EINVAL;
}

int ko_mutex_lock(ko_mutex *m, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(m, &me);
  if (err) return err;
  return drv_finish_op(me, ks_mutex_lock(me->core, me->kt, (ks_mutex *)m, drv_now_for(timeout_ms), drv_us(timeout_ms)));
}

int ko_mutex_trylock(ko_mutex *m) {
  ko_task *me;
  int err = task_for(m, &me);
  if (err) return err;
  return ks_mutex_trylock(me->core, me->kt, (ks_mutex *)m);
}

int ko_mutex_unlock(ko_mutex *m) {
  ko_task *me;
  int err = task_for(m, &me);
  if (err) return err;
  return ks_mutex_unlock(me->core, me->kt, (ks_mutex *)m);
}

int ko_cond_new(ko_sched *s, ko_cond **out) {
  NOT_IN_COMPUTE();
  if (!s || !out) return KO_EINVAL;
  *out = (ko_cond *)ks_cond_new(s->core);
  return *out ? KO_OK : KO_ENOMEM;
}

int ko_cond_free(ko_cond *c) {
  NOT_IN_COMPUTE();
  return c ? ks_obj_free(((ks_obj *)c)->core, c) : KO_EINVAL;
}

int ko_cond_wait(ko_cond *c, ko_mutex *m, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(c, &me);
  if (err) return err;
  return drv_finish_op(me, ks_cond_wait(me->core, me->kt, (ks_cond *)c, (ks_mutex *)m, drv_now_for(timeout_ms), drv_us(timeout_ms)));
}

int ko_cond_signal(ko_cond *c) {
  NOT_IN_COMPUTE();
  if (!c) return KO_EINVAL;
  ko_sched *s = SCHED_OF(c);
  int n = (int)ks_cond_signal(s->core, (ks_cond *)c);
  drv_update(s);
  return n;
}

int ko_cond_broadcast(ko_cond *c) {
  NOT_IN_COMPUTE();
  if (!c) return KO_EINVAL;
  ko_sched *s = SCHED_OF(c);
  int n = (int)ks_cond_broadcast(s->core, (ks_cond *)c);
  drv_update(s);
  return n;
}

int ko_sem_new(ko_sched *s, ko_sem **out, int64_t count) {
  NOT_IN_COMPUTE();
  if (!s || !out || count < 0) return KO_EINVAL;
  *out = (ko_sem *)ks_sem_new(s->core, count);
  return *out ? KO_OK : KO_ENOMEM;
}

int ko_sem_free(ko_sem *sem) {
  NOT_IN_COMPUTE();
  return sem ? ks_obj_free(((ks_obj *)sem)->core, sem) : KO_EINVAL;
}

int ko_sem_acquire(ko_sem *sem, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(sem, &me);
  if (err) return err;
  return drv_finish_op(me, ks_sem_acquire(me->core, me->kt, (ks_sem *)sem, drv_now_for(timeout_ms), drv_us(timeout_ms)));
}

int ko_sem_try_acquire(ko_sem *sem) {
  NOT_IN_COMPUTE();
  if (!sem) return KO_EINVAL;
  return ks_sem_try_acquire(((ks_obj *)sem)->core, (ks_sem *)sem);
}

int ko_sem_release(ko_sem *sem, int64_t n) {
  NOT_IN_COMPUTE();
  if (!sem) return KO_EINVAL;
  ko_sched *s = SCHED_OF(sem);
  int r = ks_sem_release(s->core, (ks_sem *)sem, n);
  drv_update(s);
  return r;
}

int ko_wg_new(ko_sched *s, ko_wg **out) {
  NOT_IN_COMPUTE();
  if (!s || !out) return KO_EINVAL;
  *out = (ko_wg *)ks_wg_new(s->core);
  return *out ? KO_OK : KO_ENOMEM;
}

int ko_wg_free(ko_wg *wg) {
  NOT_IN_COMPUTE();
  return wg ? ks_obj_free(((ks_obj *)wg)->core, wg) : KO_EINVAL;
}

int ko_wg_add(ko_wg *wg, int64_t delta) {
  NOT_IN_COMPUTE();
  if (!wg) return KO_EINVAL;
  ko_sched *s = SCHED_OF(wg);
  int r = ks_wg_add(s->core, (ks_wg *)wg, delta);
  drv_update(s);
  return r;
}

int ko_wg_done(ko_wg *wg) { return ko_wg_add(wg, -1); }

int ko_wg_wait(ko_wg *wg, int64_t timeout_ms) {
  ko_task *me;
  int err = task_for(wg, &me);
  if (err) return err;
  return drv_finish_op(me, ks_wg_wait(me->core, me->kt, (ks_wg *)wg, drv_now_for(timeout_ms), drv_us(timeout_ms)));
}
