/*
 * sched_net.c - blocking-style sockets for tasks on 127.0.0.1: an echo of
 * 1 MiB, concurrent clients with exact byte totals, every timeout (a send
 * waits on a full socket until it runs out), a refused connect (KO_ESYS,
 * ECONNREFUSED), cancel while blocked in ko_accept and ko_recv,
 * KO_ENOTCORO outside tasks, UDP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "check.h"

#define V(x) ((void *)(intptr_t)(x))
#define I(p) ((intptr_t)(p))

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/* A listening socket on 127.0.0.1, any port; its port in *port. */
static int listener(int *port) {
  int fd;
  CHECK_EQ(ko_socket(AF_INET, SOCK_STREAM, 0, &fd), KO_OK);
  struct sockaddr_in a = loopback(0);
  CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  CHECK_EQ(listen(fd, 512), 0);
  socklen_t len = sizeof a;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static int dial(int port) {
  int fd;
  CHECK_EQ(ko_socket(AF_INET, SOCK_STREAM, 0, &fd), KO_OK);
  struct sockaddr_in a = loopback(port);
  CHECK_EQ(ko_connect(fd, (struct sockaddr *)&a, sizeof a, 5000), KO_OK);
  return fd;
}

/* Echoes until the end of the stream; returns the bytes echoed. */
static void *echo_conn(void *arg) {
  int fd = (int)I(arg);
  char buf[4096];
  size_t total = 0, got;
  while (ko_recv(fd, buf, sizeof buf, 5000, &got) == KO_OK && got > 0) {
    CHECK_EQ(ko_send(fd, buf, got, 5000, NULL), KO_OK);
    total += got;
  }
  close(fd);
  return V(total);
}

static ko_task *echo_tasks[512];
static int echo_n;

/* Accepts n connections, a task each. */
static void *acceptor(void *arg) {
  int lfd = (int)(I(arg) & 0xffff), n = (int)(I(arg) >> 16);
  for (int i = 0; i < n; i++) {
    int c;
    CHECK_EQ(ko_accept(lfd, NULL, NULL, 5000, &c), KO_OK);
    CHECK_EQ(ko_spawn(ko_sched_current(), &echo_tasks[echo_n++], echo_conn, V(c), "echo"), KO_OK);
  }
  return NULL;
}

#define BIG (1 << 20)
static unsigned char big_out[BIG], big_in[BIG];

static void *read_big(void *arg) {
  int fd = (int)I(arg);
  size_t have = 0, got;
  while (have < BIG && ko_recv(fd, big_in + have, BIG - have, 5000, &got) == KO_OK && got > 0) have += got;
  return V(have);
}

static void *echo_big_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  int port, lfd = listener(&port);
  echo_n = 0;
  ko_task *acc, *rd;
  CHECK_EQ(ko_spawn(s, &acc, acceptor, V(lfd | (1 << 16)), "acceptor"), KO_OK);
  int fd = dial(port);
  for (size_t i = 0; i < BIG; i++) big_out[i] = (unsigned char)(i * 7919);
  CHECK_EQ(ko_spawn(s, &rd, read_big, V(fd), "reader"), KO_OK);
  size_t sent = 0;
  CHECK_EQ(ko_send(fd, big_out, BIG, 10000, &sent), KO_OK); /* waits whenever the socket is full */
  CHECK_EQ(sent, BIG);
  void *r;
  CHECK_EQ(ko_join(rd, KO_FOREVER, &r), KO_OK);
  CHECK_EQ(I(r), BIG);
  CHECK(memcmp(big_in, big_out, BIG) == 0);
  shutdown(fd, SHUT_WR);
  CHECK_EQ(ko_join(acc, KO_FOREVER, NULL), KO_OK);
  CHECK_EQ(ko_join(echo_tasks[0], KO_FOREVER, &r), KO_OK);
  CHECK_EQ(I(r), BIG);
  close(fd);
  close(lfd);
  return NULL;
}

static int clients_port;
static void *client(void *arg) {
  int i = (int)I(arg);
  int fd = dial(clients_port);
  size_t size = 100 + (size_t)(i % 300);
  char msg[400], back[400];
  memset(msg, 'a' + i % 26, size);
  CHECK_EQ(ko_send(fd, msg, size, 5000, NULL), KO_OK);
  size_t have = 0, got;
  while (have < size) {
    CHECK_EQ(ko_recv(fd, back + have, size - have, 5000, &got), KO_OK);
    CHECK(got > 0);
    have += got;
  }
  CHECK(memcmp(msg, back, size) == 0);
  close(fd);
  return V(size);
}

static void *many_clients_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  int n = test_scale(400);
  int lfd = listener(&clients_port);
  echo_n = 0;
  ko_task *acc, *c[400];
  CHECK_EQ(ko_spawn(s, &acc, acceptor, V(lfd | (n << 16)), "acceptor"), KO_OK);
  for (int i = 0; i < n; i++) CHECK_EQ(ko_spawn(s, &c[i], client, V(i), "client"), KO_OK);
  size_t expected = 0, sent = 0, echoed = 0;
  for (int i = 0; i < n; i++) {
    void *r;
    CHECK_EQ(ko_join(c[i], KO_FOREVER, &r), KO_OK);
    sent += (size_t)I(r);
    expected += 100 + (size_t)(i % 300);
  }
  CHECK_EQ(ko_join(acc, KO_FOREVER, NULL), KO_OK);
  for (int i = 0; i < echo_n; i++) {
    void *r;
    CHECK_EQ(ko_join(echo_tasks[i], KO_FOREVER, &r), KO_OK);
    echoed += (size_t)I(r);
  }
  CHECK_EQ(sent, expected);
  CHECK_EQ(echoed, expected);
  close(lfd);
  return NULL;
}

static void *errors_body(void *arg) {
  (void)arg;
  int port, lfd = listener(&port);
  int c;
  /* accept and recv time out; the listener and the connection stay usable */
  CHECK_EQ(ko_accept(lfd, NULL, NULL, 10, &c), KO_ETIMEDOUT);
  int fd = dial(port);
  CHECK_EQ(ko_accept(lfd, NULL, NULL, 5000, &c), KO_OK);
  char buf[8];
  size_t got = 99;
  CHECK_EQ(ko_recv(fd, buf, sizeof buf, 10, &got), KO_ETIMEDOUT);
  CHECK_EQ(got, 0);
  CHECK_EQ(ko_send(c, "hi", 2, 1000, NULL), KO_OK);
  CHECK_EQ(ko_recv(fd, buf, sizeof buf, 5000, &got), KO_OK);
  CHECK_EQ(got, 2);
  /* a send to a peer that reads nothing times out, saying how much went */
  static char chunk[1 << 20];
  size_t sent = 0;
  int r = KO_OK;
  for (int i = 0; i < 64 && r == KO_OK; i++) r = ko_send(fd, chunk, sizeof chunk, 20, &sent);
  CHECK_EQ(r, KO_ETIMEDOUT);
  CHECK(sent < sizeof chunk);
  close(c);
  close(fd);
  /* refused: the listener is gone */
  close(lfd);
  CHECK_EQ(ko_socket(AF_INET, SOCK_STREAM, 0, &fd), KO_OK);
  struct sockaddr_in a = loopback(port);
  CHECK_EQ(ko_connect(fd, (struct sockaddr *)&a, sizeof a, 5000), KO_ESYS);
  CHECK_EQ(errno, ECONNREFUSED);
  close(fd);
  CHECK_EQ(ko_recv(-1, buf, 1, 0, &got), KO_EINVAL);
  return NULL;
}

static int cancel_lfd, cancel_fd;
static void *block_accept(void *arg) {
  (void)arg;
  int c;
  return V(ko_accept(cancel_lfd, NULL, NULL, KO_FOREVER, &c));
}
static void *block_recv(void *arg) {
  (void)arg;
  char b;
  size_t got;
  return V(ko_recv(cancel_fd, &b, 1, KO_FOREVER, &got));
}

static void *cancel_body(void *arg) {
  (void)arg;
  ko_sched *s = ko_sched_current();
  int port;
  cancel_lfd = listener(&port);
  cancel_fd = dial(port);
  ko_task *ta, *tr;
  int c;
  CHECK_EQ(ko_accept(cancel_lfd, NULL, NULL, 5000, &c), KO_OK);
  CHECK_EQ(ko_spawn(s, &ta, block_accept, NULL, "accepting"), KO_OK);
  CHECK_EQ(ko_spawn(s, &tr, block_recv, NULL, "receiving"), KO_OK);
  ko_sleep(5);
  CHECK(strcmp(ko_task_state(ta), "blocked") == 0);
  CHECK(strcmp(ko_task_state(tr), "blocked") == 0);
  CHECK_EQ(ko_cancel(ta), KO_OK);
  CHECK_EQ(ko_cancel(tr), KO_OK);
  void *r;
  ko_join(ta, KO_FOREVER, &r); /* KO_ECANCELED, with the task's result */
  CHECK_EQ(I(r), KO_ECANCELED);  /* what ko_accept returned */
  ko_join(tr, KO_FOREVER, &r);
  CHECK_EQ(I(r), KO_ECANCELED);  /* what ko_recv returned */
  close(c);
  close(cancel_fd);
  close(cancel_lfd);
  return NULL;
}

static void *udp_body(void *arg) {
  (void)arg;
  int a, b;
  CHECK_EQ(ko_socket(AF_INET, SOCK_DGRAM, 0, &a), KO_OK);
  CHECK_EQ(ko_socket(AF_INET, SOCK_DGRAM, 0, &b), KO_OK);
  struct sockaddr_in sa = loopback(0);
  CHECK_EQ(bind(a, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t len = sizeof sa;
  CHECK_EQ(getsockname(a, (struct sockaddr *)&sa, &len), 0);
  char buf[16];
  size_t got;
  CHECK_EQ(ko_recvfrom(a, buf, sizeof buf, NULL, NULL, 10, &got), KO_ETIMEDOUT);
  CHECK_EQ(ko_sendto(b, "ping", 4, (struct sockaddr *)&sa, sizeof sa, 1000), KO_OK);
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  CHECK_EQ(ko_recvfrom(a, buf, sizeof buf, (struct sockaddr *)&from, &flen, 5000, &got), KO_OK);
  CHECK_EQ(got, 4);
  CHECK(memcmp(buf, "ping", 4) == 0);
  CHECK_EQ(ko_sendto(a, "pong", 4, (struct sockaddr *)&from, flen, 1000), KO_OK);
  CHECK_EQ(ko_recvfrom(b, buf, sizeof buf, NULL, NULL, 5000, &got), KO_OK);
  CHECK(got == 4 && memcmp(buf, "pong", 4) == 0);
  close(a);
  close(b);
  return NULL;
}

int main(int argc, char **argv) {
  test_init(argc, argv);
  size_t got;
  char b;
  int c;
  CHECK_EQ(ko_recv(0, &b, 1, 0, &got), KO_ENOTCORO);
  CHECK_EQ(ko_accept(0, NULL, NULL, 0, &c), KO_ENOTCORO);
  run_test("echo 1 MiB, backpressure", echo_big_body, NULL);
  run_test("concurrent clients, totals", many_clients_body, NULL);
  run_test("timeouts, refused, EINVAL", errors_body, NULL);
  run_test("cancel in accept and recv", cancel_body, NULL);
  run_test("udp recvfrom/sendto", udp_body, NULL);
  return 0;
}
