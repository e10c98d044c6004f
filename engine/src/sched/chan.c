/*
 * chan.c - channels (rendezvous or buffered) and select.
 *
 * A value goes straight from a sender to a waiting receiver when there is
 * one; otherwise into the buffer; otherwise the sender waits. A receiver
 * takes from the buffer first (refilling it from the first waiting sender),
 * then straight from a waiting sender; otherwise it waits. Closing wakes
 * every waiter with KO_ECLOSED; what is buffered can still be received.
 */
#include "internal.h"

ks_chan *ks_chan_new(ks_core *c, uint32_t cap) {
  ks_chan *ch = (ks_chan *)ks__obj_new(c, KS_CHAN, sizeof(ks_chan));
  if (!ch) return NULL;
  if (cap) {
    ch->buf = (uint64_t *)malloc((size_t)cap * sizeof(uint64_t));
    if (!ch->buf) {
      ks__obj_drop(c, &ch->o);
      return NULL;
    }
  }
  ch->cap = cap;
  ks_list_init(&ch->recvq);
  ks_list_init(&ch->sendq);
  return ch;
}

void ks__chan_destroy(ks_chan *ch) { free(ch->buf); }

int ks_chan_free(ks_core *c, ks_chan *ch) {
  if (!ks_list_empty(&ch->recvq) || !ks_list_empty(&ch->sendq)) return KO_EBUSY;
  ks__chan_destroy(ch);
  ks__obj_drop(c, &ch->o);
  return KO_OK;
}

static int can_recv(const ks_chan *ch) { return ch->len > 0 || !ks_list_empty(&ch->sendq) || ch->closed; }
static int can_send(const ks_chan *ch) { return ch->closed || !ks_list_empty(&ch->recvq) || ch->len < ch->cap; }

/* Both assume can_recv / can_send. */
static int do_recv(ks_core *c, ks_chan *ch, uint64_t *v) {
  ks_waiter *w;
  if (ch->len > 0) {
    *v = ch->buf[ch->head];
    ch->head = (ch->head + 1) % ch->cap;
    ch->len--;
    if ((w = ks__pop(&ch->sendq))) {
      ch->buf[(ch->head + ch->len) % ch->cap] = w->value;
      ch->len++;
      ks__wake(c, w->task, KO_OK, w->index, 0);
    }
    return KO_OK;
  }
  if ((w = ks__pop(&ch->sendq))) {
    *v = w->value;
    ks__wake(c, w->task, KO_OK, w->index, 0);
    return KO_OK;
  }
  *v = 0;
  return KO_ECLOSED;
}

static int do_send(ks_core *c, ks_chan *ch, uint64_t v) {
  if (ch->closed) return KO_ECLOSED;
  ks_waiter *w = ks__pop(&ch->recvq);
  if (w) {
    ks__wake(c, w->task, KO_OK, w->index, v);
    return KO_OK;
  }
  ch->buf[(ch->head + ch->len) % ch->cap] = v;
  ch->len++;
  return KO_OK;
}

int ks_chan_try_send(ks_core *c, ks_chan *ch, uint64_t v) {
  if (ch->closed) return KO_ECLOSED;
  return can_send(ch) ? do_send(c, ch, v) : KO_EAGAIN;
}

int ks_chan_try_recv(ks_core *c, ks_chan *ch, uint64_t *v) {
  return can_recv(ch) ? do_recv(c, ch, v) : KO_EAGAIN;
}

int ks_chan_send(ks_core *c, ks_task *t, ks_chan *ch, uint64_t v, ks_time now, int64_t timeout) {
  int err = ks__enter(c, t);
  if (err) return err;
  if (can_send(ch)) return do_send(c, ch, v);
  ks_waiter *w = ks__waiters(t, 1);
  ks__enqueue(&ch->sendq, w, t, &ch->o, KS_OP_SEND, 0, v);
  ks__block(c, t, KS_W_SEND, &ch->o, now, timeout);
  return KS_BLOCK;
}

int ks_chan_recv(ks_core *c, ks_task *t, ks_chan *ch, uint64_t *v, ks_time now, int64_t timeout) {
  int err = ks__enter(c, t);
  if (err) return err;
  if (can_recv(ch)) return do_recv(c, ch, v);
  ks_waiter *w = ks__waiters(t, 1);
  ks__enqueue(&ch->recvq, w, t, &ch->o, KS_OP_RECV, 0, 0);
  ks__block(c, t, KS_W_RECV, &ch->o, now, timeout);
  return KS_BLOCK;
}

int ks_chan_close(ks_core *c, ks_chan *ch) {
  if (ch->closed) return KO_ECLOSED;
  ch->closed = 1;
  ks_waiter *w;
  while ((w = ks__pop(&ch->recvq))) ks__wake(c, w->task, KO_ECLOSED, w->index, 0);
  while ((w = ks__pop(&ch->sendq))) ks__wake(c, w->task, KO_ECLOSED, w->index, 0);
  return KO_OK;
}

int ks_select(ks_core *c, ks_task *t, const ks_case *cases, uint32_t n, ks_time now, int64_t timeout,
              int nonblock, int32_t *fired, uint64_t *value) {
  if (!nonblock || t) {
    int err = ks__enter(c, t);
    if (err) return err;
  }
  for (uint32_t i = 0; i < n; i++)
    if (cases[i].op != KS_OP_AFTER && (!cases[i].ch || (cases[i].op != KS_OP_RECV && cases[i].op != KS_OP_SEND)))
      return KO_EINVAL;
  /* one ready case, chosen uniformly: the k-th ready one replaces the pick
   * with probability 1/k */
  int32_t pick = -1;
  uint32_t nready = 0, nwait = 0;
  int32_t after = -1;
  for (uint32_t i = 0; i < n; i++) {
    const ks_case *k = &cases[i];
    int ready;
    if (k->op == KS_OP_AFTER) {
      ready = (int64_t)k->value <= 0;
      if (after < 0 || (int64_t)k->value < (int64_t)cases[after].value) after = (int32_t)i;
    } else {
      ready = k->op == KS_OP_RECV ? can_recv(k->ch) : can_send(k->ch);
      nwait++;
    }
    if (ready && ks__random(c) % ++nready == 0) pick = (int32_t)i;
  }
  if (pick >= 0) {
    const ks_case *k = &cases[pick];
    int st = KO_OK;
    uint64_t v = 0;
    if (k->op == KS_OP_RECV) st = do_recv(c, k->ch, &v);
    else if (k->op == KS_OP_SEND) st = do_send(c, k->ch, k->value);
    *fired = pick;
    *value = v;
    return st;
  }
  if (nonblock) return KO_EAGAIN;
  ks_waiter *w = ks__waiters(t, nwait);
  if (!w) return KO_ENOMEM;
  uint32_t j = 0;
  for (uint32_t i = 0; i < n; i++) {
    const ks_case *k = &cases[i];
    if (k->op == KS_OP_AFTER) continue;
    ks__enqueue(k->op == KS_OP_RECV ? &k->ch->recvq : &k->ch->sendq, &w[j++], t, &k->ch->o, k->op, (int32_t)i,
                k->value);
  }
  t->timeout_case = -1;
  if (after >= 0 && (timeout < 0 || (int64_t)cases[after].value < timeout)) {
    timeout = (int64_t)cases[after].value;
    t->timeout_case = after;
  }
  ks__block(c, t, KS_W_SELECT, NULL, now, timeout);
  return KS_BLOCK;
}
