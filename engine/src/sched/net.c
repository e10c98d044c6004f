/*
 * net.c - blocking-style sockets for tasks, lthread style: ko_accept,
 * ko_connect, ko_recv, ko_send, ko_recvfrom, ko_sendto on non-blocking
 * fds. Each tries the system call and, when it would block, waits with
 * ko_wait_fd() (so only the calling task waits) until the fd is ready, the
 * deadline passes (KO_ETIMEDOUT) or the task is cancelled (KO_ECANCELED).
 * A failed system call is KO_ESYS with errno kept (ECONNREFUSED...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "korutin.h"

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The deadline of a timeout (KO_FOREVER stays), and what is left of it. */
static int64_t deadline_of(int64_t timeout_ms) { return timeout_ms < 0 ? KO_FOREVER : mono_ms() + timeout_ms; }
static int64_t left_of(int64_t deadline) {
  if (deadline < 0) return KO_FOREVER;
  int64_t left = deadline - mono_ms();
  return left > 0 ? left : 0;
}

static int would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

/* Waits for `events` on fd until the deadline; KO_OK when ready. libuv
 * reports an error condition on the fd (a refused connect, a reset) as a
 * failed poll: the first time, the system call is tried again and says
 * which error it is; twice in a row, the fd is not pollable (KO_EINVAL). */
static int wait_for(int fd, int events, int64_t deadline, int *poll_failed) {
  int rev = 0;
  int r = ko_wait_fd(fd, events, left_of(deadline), &rev);
  if (r == KO_EINVAL && !*poll_failed) {
    *poll_failed = 1;
    return KO_OK;
  }
  return r;
}

int ko_socket(int domain, int type, int protocol, int *out_fd) {
  if (!out_fd) return KO_EINVAL;
  int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return KO_ESYS;
  *out_fd = fd;
  return KO_OK;
}

int ko_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t timeout_ms, int *out_fd) {
  if (!out_fd || fd < 0) return KO_EINVAL;
  if (!ko_task_current()) return KO_ENOTCORO;
  int64_t dl = deadline_of(timeout_ms);
  int pf = 0;
  for (;;) {
    int c = accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      *out_fd = c;
      return KO_OK;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (!would_block(errno)) return KO_ESYS;
    int r = wait_for(fd, KO_READABLE, dl, &pf);
    if (r != KO_OK) return r;
  }
}

int ko_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t timeout_ms) {
  if (fd < 0 || !addr) return KO_EINVAL;
  if (!ko_task_current()) return KO_ENOTCORO;
  int64_t dl = deadline_of(timeout_ms);
  int pf = 0;
  if (connect(fd, addr, addrlen) == 0) return KO_OK;
  if (errno != EINPROGRESS && errno != EINTR) return KO_ESYS;
  int r = wait_for(fd, KO_WRITABLE, dl, &pf);
  if (r != KO_OK) return r;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return KO_ESYS;
  if (err != 0) {
    errno = err;
    return KO_ESYS;
  }
  return KO_OK;
}

int ko_recv(int fd, void *buf, size_t len, int64_t timeout_ms, size_t *got) {
  return ko_recvfrom(fd, buf, len, NULL, NULL, timeout_ms, got);  /* recv() is recvfrom() without an address */
}

int ko_send(int fd, const void *buf, size_t len, int64_t timeout_ms, size_t *sent) {
  if (fd < 0 || (!buf && len)) return KO_EINVAL;
  size_t done = 0;
  if (sent) *sent = 0;
  if (!ko_task_current()) return KO_ENOTCORO;
  int64_t dl = deadline_of(timeout_ms);
  int pf = 0;
  while (done < len) {
    ssize_t n = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += (size_t)n;
      if (sent) *sent = done;
      continue;
    }
    if (errno == EINTR) continue;
    if (!would_block(errno)) return KO_ESYS;
    int r = wait_for(fd, KO_WRITABLE, dl, &pf);
    if (r != KO_OK) return r;
  }
  return KO_OK;
}

int ko_recvfrom(int fd, void *buf, size_t len, struct sockaddr *addr, socklen_t *addrlen, int64_t timeout_ms,
                size_t *got) {
  if (fd < 0 || (!buf && len) || !got) return KO_EINVAL;
  *got = 0;
  if (!ko_task_current()) return KO_ENOTCORO;
  int64_t dl = deadline_of(timeout_ms);
  int pf = 0;
  for (;;) {
    ssize_t n = recvfrom(fd, buf, len, 0, addr, addrlen);
    if (n >= 0) {
      *got = (size_t)n;
      return KO_OK;
    }
    if (errno == EINTR) continue;
    if (!would_block(errno)) return KO_ESYS;
    int r = wait_for(fd, KO_READABLE, dl, &pf);
    if (r != KO_OK) return r;
  }
}

int ko_sendto(int fd, const void *buf, size_t len, const struct sockaddr *addr, socklen_t addrlen, int64_t timeout_ms) {
  if (fd < 0 || (!buf && len)) return KO_EINVAL;
  if (!ko_task_current()) return KO_ENOTCORO;
  int64_t dl = deadline_of(timeout_ms);
  int pf = 0;
  for (;;) {
    ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL, addr, addrlen);
    if (n >= 0) return KO_OK;
    if (errno == EINTR) continue;
    if (!would_block(errno)) return KO_ESYS;
    int r = wait_for(fd, KO_WRITABLE, dl, &pf);
    if (r != KO_OK) return r;
  }
}
