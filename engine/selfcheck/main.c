/*
 * main.c - korutin-selfcheck: proves each switch backend on this machine.
 *
 *   korutin-selfcheck [--backend NAME|all] [--json] [--test NAME] [-v] [--no-fork]
 *
 * Runs every test of every group (see kt.h) against each selected backend,
 * each test in a child process of its own, then prints one row per backend
 * (passed, failed, skipped, ns per switch from a quick ping-pong) or, with
 * --json, a JSON document with each test's result and the platform. A
 * backend that is not built in or cannot run here is reported with its
 * reason, not as a failure. Exits 1 when any test failed, 2 on bad usage.
 *
 * On Windows, which has no fork(), each test's process is this program run
 * again (hidden option: --child BACKEND TEST, which runs that one test and
 * writes its result to stdout; kt_win.c).
 *
 * Environment: KO_SELFCHECK_TIMEOUT (seconds per test; default 120, 1800
 * under valgrind or qemu-user), KO_SELFCHECK_SEED (the random walk's seed).
 */
#include "kt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

static const kt_test *const groups[] = {
  kt_group_regs, kt_group_fpu, kt_group_align, kt_group_stack,
  kt_group_walk, kt_group_leak, kt_group_api,
};
#define NGROUPS (sizeof groups / sizeof groups[0])

enum { PASS, FAIL, SKIP };
static const char *const result_names[] = {"pass", "fail", "skip"};

typedef struct result {
  const char *name;
  int status;
  double ms;
  char msg[400];
  char note[200];
} result;

typedef struct row {
  const ko_backend *be;
  const char *unavailable;
  int counts[3];
  double ns_per_switch;    /* < 0: not measured */
  result *results;
  int n;
} row;

static struct {
  int json, verbose, no_fork;
  const char *only;
  unsigned timeout;
} cfg;

/* -------------------------------------------------------------- running */

typedef struct job {
  const ko_backend *be;
  kt_fn fn;
} job;

static void job_run(job *j, kt *t) {
  memset(t, 0, sizeof *t);
  t->be = j->be;
  t->own_thread = ko_backend_own_thread(j->be);
  j->fn(t);
}

#ifdef _WIN32
/* The test in a child process: this program again (see the top). */
static void run_child(const ko_backend *be, const char *name, kt *t) {
  char args[160];
  snprintf(args, sizeof args, "--child %s %s", ko_backend_name(be), name);
  size_t got = 0;
  int timed_out = 0;
  long code = kt_spawn_self(args, cfg.timeout, t, sizeof *t, &got, &timed_out);
  unsigned long ucode = (unsigned long)code & 0xffffffffUL;
  if (code == -1) {
    memset(t, 0, sizeof *t);
    snprintf(t->msg, sizeof t->msg, "could not start a child process to run it");
    t->failed = 1;
  } else if (timed_out) {
    memset(t, 0, sizeof *t);
    snprintf(t->msg, sizeof t->msg, "timed out after %u s (KO_SELFCHECK_TIMEOUT)", cfg.timeout);
    t->failed = 1;
  } else if (got != sizeof *t) {
    memset(t, 0, sizeof *t);
    if (ucode >= 0xC0000000UL)
      snprintf(t->msg, sizeof t->msg, "crashed: exception 0x%08lx", ucode);
    else
      snprintf(t->msg, sizeof t->msg, "the child exited (status %lu) without a result", ucode);
    t->failed = 1;
  } else if (ucode != 0 && !t->failed) {
    snprintf(t->msg, sizeof t->msg, "passed, but its process exited with status 0x%lx", ucode);
    t->failed = 1;
  }
}
#else
static void job_child(void *p, int fd) {
  kt t;
  job_run((job *)p, &t);
  if (write(fd, &t, sizeof t) != (ssize_t)sizeof t) _exit(3);
}
#endif

/* Runs one test (or measurement) and fills r; t gets what the test left. */
static void run_one(const ko_backend *be, const char *name, kt_fn fn, result *r, kt *t) {
  job j = {be, fn};
  double t0 = kt_now_ns();
  if (cfg.no_fork) {
    job_run(&j, t);
  } else {
#ifdef _WIN32
    (void)j;
    run_child(be, name, t);
#else
    (void)name;
    size_t got = 0;
    int timed_out = 0;
    int st = kt_fork(job_child, &j, cfg.timeout, t, sizeof *t, &got, &timed_out);
    if (st == -1) {
      memset(t, 0, sizeof *t);
      snprintf(t->msg, sizeof t->msg, "could not fork a child to run it");
      t->failed = 1;
    } else if (timed_out) {
      memset(t, 0, sizeof *t);
      snprintf(t->msg, sizeof t->msg, "timed out after %u s (KO_SELFCHECK_TIMEOUT)", cfg.timeout);
      t->failed = 1;
    } else if (WIFSIGNALED(st)) {
      memset(t, 0, sizeof *t);
      snprintf(t->msg, sizeof t->msg, "crashed: signal %d (%.100s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
      t->failed = 1;
    } else if (got != sizeof *t) {
      memset(t, 0, sizeof *t);
      snprintf(t->msg, sizeof t->msg, "the child exited (status %d) without a result", WEXITSTATUS(st));
      t->failed = 1;
    } else if (WEXITSTATUS(st) != 0 && !t->failed) {
      snprintf(t->msg, sizeof t->msg,
               "passed, but its process exited with status %d: an error reported by valgrind or a "
               "sanitizer (see its output above)", WEXITSTATUS(st) & 0xff);
      t->failed = 1;
    }
#endif
  }
  r->ms = (kt_now_ns() - t0) / 1e6;
  r->status = t->failed ? FAIL : t->skipped ? SKIP : PASS;
  memcpy(r->msg, t->msg, sizeof r->msg);
  memcpy(r->note, t->note, sizeof r->note);
}

/* A quick ping-pong: ns per switch (half a resume/yield round trip). */
static void *pp_body(ko_coro *co, void *arg) {
  (void)co, (void)arg;
  for (;;) ko_yield(NULL);
  return NULL;
}

static void pingpong(kt *t) {
  ko_coro *co = kt_create(t, pp_body, NULL, 0);
  if (!co) return;
  long n = t->own_thread ? 5000 : 500000;
  if (kt_under_valgrind()) n /= 50;
  for (long i = 0; i < n / 10; i++) ko_resume(co, NULL, NULL);
  double t0 = kt_now_ns();
  for (long i = 0; i < n; i++) ko_resume(co, NULL, NULL);
  t->value = (kt_now_ns() - t0) / (2.0 * (double)n);
  ko_destroy(co);
}

static void run_backend(row *w) {
  int total = 0;
  for (size_t g = 0; g < NGROUPS; g++)
    for (const kt_test *x = groups[g]; x->name; x++) total++;
  w->results = (result *)calloc((size_t)total, sizeof *w->results);
  w->ns_per_switch = -1;
  if (!w->results) return;
  kt t;
  for (size_t g = 0; g < NGROUPS; g++) {
    for (const kt_test *x = groups[g]; x->name; x++) {
      if (cfg.only && strcmp(cfg.only, x->name) != 0) continue;
      result *r = &w->results[w->n++];
      r->name = x->name;
      run_one(w->be, x->name, x->fn, r, &t);
      w->counts[r->status]++;
      if (!cfg.json && (cfg.verbose || r->status != PASS)) {
        fprintf(stderr, "  %-8s %-20s %s %s%s%s\n", ko_backend_name(w->be), r->name,
                r->status == PASS ? "ok  " : r->status == FAIL ? "FAIL" : "skip", r->msg,
                r->msg[0] && r->note[0] ? " | " : "", r->note);
      }
    }
  }
  result pr;
  run_one(w->be, "ping-pong", pingpong, &pr, &t);
  if (pr.status == PASS) w->ns_per_switch = t.value;
}

/* -------------------------------------------------------------- platform */

typedef struct platform {
  char os[80], arch[80], libc[80], kernel[80];
  const char *tool;
} platform;

#ifdef _WIN32
static void get_platform(platform *p) {
  memset(p, 0, sizeof *p);
  snprintf(p->os, sizeof p->os, "windows");
#if defined(_WIN64)
  snprintf(p->arch, sizeof p->arch, "x86_64");
#else
  snprintf(p->arch, sizeof p->arch, "i686");
#endif
#if defined(_UCRT)
  snprintf(p->libc, sizeof p->libc, "ucrt");
#else
  snprintf(p->libc, sizeof p->libc, "msvcrt");
#endif
  /* Wine's ntdll says so; its version is then the "kernel". */
  static char wine[80];
  HMODULE nt = GetModuleHandleA("ntdll.dll");
  const char *(*wine_version)(void) = NULL;
  if (nt) wine_version = (const char *(*)(void))(void (*)(void))GetProcAddress(nt, "wine_get_version");
  if (wine_version) {
    snprintf(wine, sizeof wine, "wine %.40s", wine_version());
    p->tool = wine;
  }
  OSVERSIONINFOA v;
  memset(&v, 0, sizeof v);
  v.dwOSVersionInfoSize = sizeof v;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  if (GetVersionExA(&v))
#pragma GCC diagnostic pop
    snprintf(p->kernel, sizeof p->kernel, "%lu.%lu.%lu", v.dwMajorVersion, v.dwMinorVersion, v.dwBuildNumber);
}
#else
static void get_platform(platform *p) {
  struct utsname u;
  memset(p, 0, sizeof *p);
  if (uname(&u) == 0) {
    snprintf(p->os, sizeof p->os, "%.60s", u.sysname);
    for (char *c = p->os; *c; c++)
      if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    snprintf(p->arch, sizeof p->arch, "%.60s", u.machine);
    snprintf(p->kernel, sizeof p->kernel, "%.60s", u.release);
  }
#if defined(_CS_GNU_LIBC_VERSION)
  if (confstr(_CS_GNU_LIBC_VERSION, p->libc, sizeof p->libc) == 0) p->libc[0] = 0;
#endif
  if (!p->libc[0]) {
#if defined(__linux__) && !defined(__GLIBC__)
    snprintf(p->libc, sizeof p->libc, "musl or another non-glibc C library");
#else
    snprintf(p->libc, sizeof p->libc, "unknown");
#endif
  }
  p->tool = kt_under_valgrind() ? "valgrind" : kt_under_asan() ? "asan" : kt_under_qemu() ? "qemu-user" : NULL;
}
#endif

/* ---------------------------------------------------------------- output */

static void json_str(const char *s) {
  putchar('"');
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c == '\n') printf("\\n");
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static void print_json(const platform *p, row *rows, int n, int ok) {
  printf("{\n  \"korutin\": \"%d.%d.%d\",\n  \"platform\": {\"os\": ", KORUTIN_VERSION_MAJOR,
         KORUTIN_VERSION_MINOR, KORUTIN_VERSION_PATCH);
  json_str(p->os);
  printf(", \"arch\": ");
  json_str(p->arch);
  printf(", \"libc\": ");
  json_str(p->libc);
  printf(", \"kernel\": ");
  json_str(p->kernel);
  printf(", \"tool\": ");
  if (p->tool) json_str(p->tool);
  else printf("null");
  printf("},\n  \"backends\": [");
  for (int i = 0; i < n; i++) {
    row *w = &rows[i];
    printf("%s\n    {\"name\": ", i ? "," : "");
    json_str(ko_backend_name(w->be));
    if (w->unavailable) {
      printf(", \"available\": false, \"reason\": ");
      json_str(w->unavailable);
      printf("}");
      continue;
    }
    printf(", \"available\": true, \"passed\": %d, \"failed\": %d, \"skipped\": %d, \"ns_per_switch\": ",
           w->counts[PASS], w->counts[FAIL], w->counts[SKIP]);
    if (w->ns_per_switch >= 0) printf("%.2f", w->ns_per_switch);
    else printf("null");
    printf(",\n     \"tests\": [");
    for (int k = 0; k < w->n; k++) {
      result *r = &w->results[k];
      printf("%s\n       {\"name\": ", k ? "," : "");
      json_str(r->name);
      printf(", \"result\": \"%s\", \"ms\": %.1f", result_names[r->status], r->ms);
      if (r->msg[0]) printf(", \"detail\": "), json_str(r->msg);
      if (r->note[0]) printf(", \"note\": "), json_str(r->note);
      printf("}");
    }
    printf("]}");
  }
  printf("\n  ],\n  \"ok\": %s\n}\n", ok ? "true" : "false");
}

/* The notes column: which tests failed, were skipped or scaled down. */
static void print_notes(const row *w) {
  static const char *const labels[] = {"scaled down", "FAILED", "skipped"};
  const char *sep = " ";
  for (int kind = 0; kind < 3; kind++) {
    const char *lead = labels[kind];
    for (int k = 0; k < w->n; k++) {
      const result *r = &w->results[k];
      int hit = kind == 0 ? r->status == PASS && strstr(r->note, "scaled") != NULL : r->status == kind;
      if (!hit) continue;
      printf("%s%s%s%s", lead ? sep : ", ", lead ? lead : "", lead ? ": " : "", r->name);
      lead = NULL;
      sep = "; ";
    }
  }
  printf("\n");
}

/* Below the table: each failure, and each distinct reason for a skip or a
 * scaled-down run, once, with the backends it applies to. */
static void print_details(const row *rows, int n) {
  int header = 0;
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < rows[i].n; k++) {
      const result *r = &rows[i].results[k];
      int scaled = r->status == PASS && strstr(r->note, "scaled") != NULL;
      if (r->status == PASS && !scaled) continue;
      const char *text = scaled ? r->note : r->msg;
      if (r->status != FAIL) { /* printed already for an earlier backend? */
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
          for (int m = 0; m < rows[j].n && !seen; m++)
            seen = strcmp(rows[j].results[m].name, r->name) == 0 && rows[j].results[m].status == r->status &&
                   strcmp(scaled ? rows[j].results[m].note : rows[j].results[m].msg, text) == 0;
        if (seen) continue;
      }
      if (!header++) printf("\n");
      printf("  %s%s (%s", r->name, r->status == FAIL ? " FAILED" : scaled ? "" : " skipped",
             ko_backend_name(rows[i].be));
      for (int j = i + 1; r->status != FAIL && j < n; j++)
        for (int m = 0; m < rows[j].n; m++)
          if (strcmp(rows[j].results[m].name, r->name) == 0 && rows[j].results[m].status == r->status &&
              strcmp(scaled ? rows[j].results[m].note : rows[j].results[m].msg, text) == 0)
            printf(", %s", ko_backend_name(rows[j].be));
      printf("): %s\n", text);
    }
  }
}

static void print_table(const platform *p, row *rows, int n, int ok) {
  printf("korutin-selfcheck %d.%d.%d on %s %s, %s%s%s\n\n", KORUTIN_VERSION_MAJOR, KORUTIN_VERSION_MINOR,
         KORUTIN_VERSION_PATCH, p->os, p->arch, p->libc, p->tool ? ", under " : "", p->tool ? p->tool : "");
  printf("%-10s %6s %6s %7s %10s  %s\n", "backend", "passed", "failed", "skipped", "ns/switch", "notes");
  int avail = 0, failed = 0;
  for (int i = 0; i < n; i++) {
    row *w = &rows[i];
    if (w->unavailable) {
      printf("%-10s %6s %6s %7s %10s  unavailable: %s\n", ko_backend_name(w->be), "-", "-", "-", "-",
             w->unavailable);
      continue;
    }
    avail++;
    failed += w->counts[FAIL] > 0;
    char ns[32] = "-";
    if (w->ns_per_switch >= 0) snprintf(ns, sizeof ns, "%.1f", w->ns_per_switch);
    printf("%-10s %6d %6d %7d %10s ", ko_backend_name(w->be), w->counts[PASS], w->counts[FAIL], w->counts[SKIP],
           ns);
    print_notes(w);
  }
  print_details(rows, n);
  printf("\nselfcheck: %s (%d of %d backends available here, %d with failures)\n", ok ? "PASS" : "FAIL",
         avail, n, failed);
}

/* ------------------------------------------------------------------ main */

static int usage(void) {
  fprintf(stderr, "usage: korutin-selfcheck [--backend NAME|all] [--json] [--test NAME] [-v] [--no-fork]\n"
                  "backends:");
  for (int i = 0; i < ko_backend_count(); i++) fprintf(stderr, " %s", ko_backend_name(ko_backend_at(i)));
  fprintf(stderr, "\n");
  return 2;
}

#ifdef _WIN32
/* --child BACKEND TEST: one test, its result (a kt) to stdout. */
static int child_main(const char *backend, const char *name) {
  const ko_backend *be = ko_backend_find(backend);
  kt_fn fn = strcmp(name, "ping-pong") == 0 ? pingpong : NULL;
  for (size_t g = 0; g < NGROUPS && !fn; g++)
    for (const kt_test *x = groups[g]; x->name && !fn; x++)
      if (strcmp(x->name, name) == 0) fn = x->fn;
  for (const kt_test *x = kt_children; x->name && !fn; x++)
    if (strcmp(x->name, name) == 0) fn = x->fn;
  if (!be || !fn) {
    fprintf(stderr, "korutin-selfcheck --child: unknown backend or test: %s %s\n", backend, name);
    return 2;
  }
  job j = {be, fn};
  kt t;
  job_run(&j, &t);
  kt_child_write(&t, sizeof t);
  return 0;
}
#endif

int main(int argc, char **argv) {
  const char *which = "all";
#ifdef _WIN32
  if (argc == 4 && strcmp(argv[1], "--child") == 0) return child_main(argv[2], argv[3]);
#endif
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) which = argv[++i];
    else if (strncmp(argv[i], "--backend=", 10) == 0) which = argv[i] + 10;
    else if (strcmp(argv[i], "--json") == 0) cfg.json = 1;
    else if (strcmp(argv[i], "--test") == 0 && i + 1 < argc) cfg.only = argv[++i];
    else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) cfg.verbose = 1;
    else if (strcmp(argv[i], "--no-fork") == 0) cfg.no_fork = 1;
    else return usage();
  }
  const char *env = getenv("KO_SELFCHECK_TIMEOUT");
  cfg.timeout = env && atoi(env) > 0 ? (unsigned)atoi(env) : kt_under_valgrind() || kt_under_qemu() ? 1800 : 120;
#ifndef _WIN32
  const char *in_process = NULL;
  if (!cfg.no_fork && (in_process = kt_fork_broken()) != NULL) {
    cfg.no_fork = 1; /* the tests still run, without a process each */
    fprintf(stderr, "korutin-selfcheck: running the tests in this process: %s\n", in_process);
  }
#endif
  if (strcmp(which, "all") != 0 && !ko_backend_find(which)) {
    fprintf(stderr, "korutin-selfcheck: unknown backend '%s'\n", which);
    return usage();
  }

  row rows[16];
  int n = 0;
  for (int i = 0; i < ko_backend_count() && n < 16; i++) {
    const ko_backend *be = ko_backend_at(i);
    if (strcmp(which, "all") != 0 && strcmp(which, ko_backend_name(be)) != 0) continue;
    row *w = &rows[n++];
    memset(w, 0, sizeof *w);
    w->be = be;
    w->unavailable = ko_backend_unavailable(be);
    if (!w->unavailable) run_backend(w);
  }
  int ok = 1;
  for (int i = 0; i < n; i++) ok &= rows[i].counts[FAIL] == 0;

  platform p;
  get_platform(&p);
  if (cfg.json) print_json(&p, rows, n, ok);
  else print_table(&p, rows, n, ok);
  for (int i = 0; i < n; i++) free(rows[i].results);
  return ok ? 0 : 1;
}
