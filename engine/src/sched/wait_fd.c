/*
 * wait_fd.c - ko_wait_fd(): a task waits for a file descriptor through a
 * uv_poll handle of its own, on the core's external waits (its timeout and
 * cancel come from the core). net.c builds the socket calls on it.
 */
#include "driver.h"

#include <stdlib.h>

typedef struct fdwait {
  uv_poll_t poll;
  ko_task *t;
  uint32_t seq;
  int revents;
} fdwait;

static void on_poll(uv_poll_t *p, int status, int events) {
  fdwait *w = (fdwait *)p->data;
  uv_poll_stop(p);
  if (!w->t) return;
  w->revents = status < 0 ? 0 : events;
  ko_sched *s = w->t->s;
  ks_wake_external(s->core, w->t->kt, w->seq, status < 0 ? KO_EINVAL : KO_OK, 0);
  drv_update(s);
}

static void on_poll_close(uv_handle_t *h) { free(h->data); }

void drv_fdwait_abandon(struct fdwait *w) {
  w->t->fw = NULL;
  w->t = NULL;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_poll_close);
}

int ko_wait_fd(int fd, int events, int64_t timeout_ms, int *revents) {
  ko_task *me;
  if (!(me = drv_self())) return KO_ENOTCORO;
  if (!(events & (KO_READABLE | KO_WRITABLE)) || (events & ~(KO_READABLE | KO_WRITABLE))) return KO_EINVAL;
  fdwait *w = (fdwait *)calloc(1, sizeof *w);
  if (!w) return KO_ENOMEM;
  if (uv_poll_init(me->s->loop, &w->poll, fd) != 0) {
    free(w);
    return KO_EINVAL;
  }
  w->poll.data = w;
  w->t = me;
  me->fw = w;
  int r = ks_block_external(me->core, me->kt, drv_now_for(timeout_ms), drv_us(timeout_ms), KS_EXT_FD, fd, &w->seq);
  if (r == KS_BLOCK) {
    if (uv_poll_start(&w->poll, events, on_poll) != 0)
      ks_wake_external(me->core, me->kt, w->seq, KO_EINVAL, 0);
    r = drv_suspend(me);
  }
  if (r == KO_OK && revents) *revents = w->revents;
  drv_fdwait_abandon(w);
  return r;
}

