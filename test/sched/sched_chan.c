/*
 * sched_chan.c - channels and select: rendezvous, buffering, close and
 * drain, timeouts, try operations, select's choice and fairness, and a
 * producer -> 8 workers -> consumer pipeline with exact totals.
 */
#include "check.h"

#define V(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

static int events[64];
static int nevents;

static void *rdv_receiver(void *arg) {
  ko_chan *ch = (ko_chan *)arg;
  void *v;
  events[nevents++] = 1; /* about to receive */
  CHECK_EQ(ko_chan_recv(ch, &v, KO_FOREVER), KO_OK);
  events[nevents++] = (int)I(v);
  return NULL;
}

static void *rendezvous_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_chan *ch;
  CHECK_EQ(ko_chan_new(s, &ch, 0), KO_OK);
  nevents = 0;
  ko_task *t;
  ko_spawn(s, &t, rdv_receiver, ch, NULL);
  CHECK_EQ(ko_chan_try_send(ch, V(5)), KO_EAGAIN); /* nobody receives yet */
  CHECK_EQ(ko_chan_send(ch, V(7), KO_FOREVER), KO_OK); /* waits for the receiver */
  CHECK(nevents >= 1 && events[0] == 1);
  CHECK_EQ(ko_join(t, KO_FOREVER, NULL), KO_OK);
  CHECK_EQ(nevents, 2);
  CHECK_EQ(events[1], 7);
  CHECK_EQ(ko_chan_send(ch, V(1), 5), KO_ETIMEDOUT);
  void *v;
  CHECK_EQ(ko_chan_recv(ch, &v, 5), KO_ETIMEDOUT);
  CHECK_EQ(ko_chan_free(ch), KO_OK);
  return NULL;
}

static void *drain(void *arg) {
  ko_chan *ch = (ko_chan *)arg;
  intptr_t sum = 0;
  void *v;
  int r;
  while ((r = ko_chan_recv(ch, &v, KO_FOREVER)) == KO_OK) sum += I(v);
  CHECK_EQ(r, KO_ECLOSED);
  return V(sum);
}

static void *buffered_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_chan *ch;
  CHECK_EQ(ko_chan_new(s, &ch, 3), KO_OK);
  for (int i = 1; i <= 3; i++) CHECK_EQ(ko_chan_send(ch, V(i), 0), KO_OK); /* no wait while there is room */
  CHECK_EQ(ko_chan_len(ch), 3);
  CHECK_EQ(ko_chan_try_send(ch, V(4)), KO_EAGAIN);
  CHECK_EQ(ko_chan_send(ch, V(4), 5), KO_ETIMEDOUT);
  void *v;
  CHECK_EQ(ko_chan_try_recv(ch, &v), KO_OK);
  CHECK_EQ(I(v), 1); /* FIFO */
  CHECK_EQ(ko_chan_try_send(ch, V(4)), KO_OK);
  CHECK_EQ(ko_chan_close(ch), KO_OK);
  CHECK_EQ(ko_chan_close(ch), KO_ECLOSED);
  CHECK_EQ(ko_chan_send(ch, V(9), KO_FOREVER), KO_ECLOSED);
  CHECK_EQ(ko_chan_try_send(ch, V(9)), KO_ECLOSED);
  /* receivers drain what is buffered, then see the end */
  ko_task *t;
  ko_spawn(s, &t, drain, ch, NULL);
  void *sum;
  CHECK_EQ(ko_join(t, KO_FOREVER, &sum), KO_OK);
  CHECK_EQ(I(sum), 2 + 3 + 4);
  CHECK_EQ(ko_chan_try_recv(ch, &v), KO_ECLOSED);
  ko_chan_free(ch);
  return NULL;
}

static void *blocked_sender(void *arg) { return V(ko_chan_send((ko_chan *)arg, V(1), KO_FOREVER)); }
static void *blocked_receiver(void *arg) {
  void *v;
  return V(ko_chan_recv((ko_chan *)arg, &v, KO_FOREVER));
}

static void *close_wakes_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_chan *a, *b;
  ko_chan_new(s, &a, 0);
  ko_chan_new(s, &b, 0);
  ko_task *ts, *tr;
  ko_spawn(s, &ts, blocked_sender, a, NULL);
  ko_spawn(s, &tr, blocked_receiver, b, NULL);
  CHECK_EQ(ko_yield_now(), KO_OK);
  CHECK_EQ(ko_chan_free(a), KO_EBUSY); /* a task waits on it */
  char buf[64];
  ko_task_describe(ts, buf, sizeof buf);
  CHECK(strstr(buf, "send channel#") == buf);
  ko_chan_close(a);
  ko_chan_close(b);
  void *r;
  CHECK_EQ(ko_join(ts, KO_FOREVER, &r), KO_OK);
  CHECK_EQ(I(r), KO_ECLOSED);
  CHECK_EQ(ko_join(tr, KO_FOREVER, &r), KO_OK);
  CHECK_EQ(I(r), KO_ECLOSED);
  ko_chan_free(a);
  ko_chan_free(b);
  return NULL;
}

static void *send_later(void *arg) {
  ko_chan *ch = (ko_chan *)arg;
  ko_sleep(3);
  return V(ko_chan_send(ch, V(99), KO_FOREVER));
}

static void *select_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  ko_chan *a, *b, *full;
  ko_chan_new(s, &a, 0);
  ko_chan_new(s, &b, 0);
  ko_chan_new(s, &full, 1);
  ko_chan_try_send(full, V(0));
  ko_case cs[3] = {{KO_CASE_RECV, a, NULL}, {KO_CASE_RECV, b, NULL}, {KO_CASE_SEND, full, V(5)}};
  int fired = -1;
  CHECK_EQ(ko_select_try(cs, 3, &fired), KO_EAGAIN);
  CHECK_EQ(ko_select(cs, 3, 5, &fired), KO_ETIMEDOUT);
  ko_task *t;
  ko_spawn(s, &t, send_later, b, NULL);
  CHECK_EQ(ko_select(cs, 3, KO_FOREVER, &fired), KO_OK);
  CHECK_EQ(fired, 1);
  CHECK_EQ(I(cs[1].value), 99);
  CHECK_EQ(ko_join(t, KO_FOREVER, NULL), KO_OK);
  /* a send case fires when there is room */
  void *v;
  ko_chan_try_recv(full, &v);
  CHECK_EQ(ko_select(cs, 3, KO_FOREVER, &fired), KO_OK);
  CHECK_EQ(fired, 2);
  CHECK_EQ(ko_chan_try_recv(full, &v), KO_OK);
  CHECK_EQ(I(v), 5);
  /* a closed channel: recv sees the end, send fails */
  ko_chan_close(a);
  CHECK_EQ(ko_select(cs, 1, KO_FOREVER, &fired), KO_ECLOSED);
  CHECK_EQ(fired, 0);
  ko_case snd = {KO_CASE_SEND, a, V(1)};
  CHECK_EQ(ko_select(&snd, 1, KO_FOREVER, &fired), KO_ECLOSED);
  ko_chan_free(a);
  ko_chan_free(b);
  ko_chan_free(full);
  return NULL;
}

/* Four channels that are always ready: each case must be picked about a
 * quarter of the time (chi-square, 3 degrees of freedom, p = 1e-6: one
 * case picked 5% more often fails it). */
static void *fairness_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  enum { K = 4 };
  ko_chan *ch[K];
  ko_case cs[K];
  for (int i = 0; i < K; i++) {
    ko_chan_new(s, &ch[i], 1);
    ko_chan_try_send(ch[i], V(i));
    cs[i].op = KO_CASE_RECV;
    cs[i].ch = ch[i];
  }
  int rounds = 40000, count[K] = {0};
  for (int r = 0; r < rounds; r++) {
    int fired;
    CHECK_EQ(ko_select(cs, K, KO_FOREVER, &fired), KO_OK);
    CHECK_EQ(I(cs[fired].value), fired);
    count[fired]++;
    ko_chan_try_send(ch[fired], V(fired)); /* ready again */
  }
  double chi = 0, e = rounds / (double)K;
  for (int i = 0; i < K; i++) chi += (count[i] - e) * (count[i] - e) / e;
  printf("    select fairness: %d %d %d %d, chi2 = %.2f\n", count[0], count[1], count[2], count[3], chi);
  CHECK(chi < 30.66);
  for (int i = 0; i < K; i++) ko_chan_free(ch[i]);
  return NULL;
}

/* ---- pipeline: producer -> 8 workers -> consumer */
typedef struct pipe_ctx {
  ko_chan *jobs, *results;
  ko_wg *wg;
  int n;
  int64_t sum_in, sum_out;
  int per_worker[8];
} pipe_ctx;
static pipe_ctx P;

static void *producer(void *arg) {
  (void)arg;
  for (int i = 1; i <= P.n; i++) {
    CHECK_EQ(ko_chan_send(P.jobs, V(i), KO_FOREVER), KO_OK);
    P.sum_in += i;
  }
  ko_chan_close(P.jobs);
  return NULL;
}

static void *worker(void *arg) {
  int id = (int)I(arg);
  void *v;
  while (ko_chan_recv(P.jobs, &v, KO_FOREVER) == KO_OK) {
    P.per_worker[id]++;
    CHECK_EQ(ko_chan_send(P.results, V(I(v) * 2), KO_FOREVER), KO_OK);
  }
  ko_wg_done(P.wg);
  return NULL;
}

static void *closer(void *arg) {
  (void)arg;
  CHECK_EQ(ko_wg_wait(P.wg, KO_FOREVER), KO_OK);
  ko_chan_close(P.results);
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  void *v;
  int count = 0;
  while (ko_chan_recv(P.results, &v, KO_FOREVER) == KO_OK) {
    P.sum_out += I(v);
    count++;
  }
  return V(count);
}

static void *pipeline_body(void *arg) {
  ko_sched *s = ko_sched_current();
  memset(&P, 0, sizeof P);
  P.n = (int)I(arg);
  ko_chan_new(s, &P.jobs, 16);
  ko_chan_new(s, &P.results, 0);
  ko_wg_new(s, &P.wg);
  ko_wg_add(P.wg, 8);
  ko_task *tp, *tc, *tw[8], *tcl;
  ko_spawn(s, &tc, consumer, NULL, "consumer");
  for (int i = 0; i < 8; i++) ko_spawn(s, &tw[i], worker, V(i), NULL);
  ko_spawn(s, &tcl, closer, NULL, "closer");
  ko_spawn(s, &tp, producer, NULL, "producer");
  void *count;
  CHECK_EQ(ko_join(tc, KO_FOREVER, &count), KO_OK);
  CHECK_EQ(I(count), P.n);
  CHECK_EQ(ko_join(tp, KO_FOREVER, NULL), KO_OK);
  CHECK_EQ(ko_join(tcl, KO_FOREVER, NULL), KO_OK);
  int total = 0;
  for (int i = 0; i < 8; i++) {
    CHECK_EQ(ko_join(tw[i], KO_FOREVER, NULL), KO_OK);
    CHECK(P.per_worker[i] > 0);
    total += P.per_worker[i];
  }
  CHECK_EQ(total, P.n);
  CHECK_EQ(P.sum_in, (int64_t)P.n * (P.n + 1) / 2);
  CHECK_EQ(P.sum_out, 2 * P.sum_in);
  ko_chan_free(P.jobs);
  ko_chan_free(P.results);
  ko_wg_free(P.wg);
  return NULL;
}

int main(int argc, char **argv) {
  test_init(argc, argv);
  run_test("rendezvous", rendezvous_body, NULL);
  run_test("buffered, close, drain", buffered_body, NULL);
  run_test("close wakes waiters", close_wakes_body, NULL);
  run_test("select", select_body, NULL);
  run_test("select fairness", fairness_body, NULL);
  run_test("pipeline 1 -> 8 -> 1", pipeline_body, V(test_scale(20000)));
  return 0;
}
