/*
 * kt_win.c - the Windows versions of kt.c's POSIX helpers (the build adds
 * this file on Windows; kt.c leaves those parts out there).
 *
 * Windows has no fork(): a child process is this program started again
 * with CreateProcess (kt_spawn_self), told on its command line which test
 * to run (main.c: --child BACKEND TEST); it writes its result to its
 * stdout, a pipe to the parent.
 */
#include "kt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <psapi.h>

int kt_under_qemu(void) { return 0; }

int kt_under_wine(void) {
  HMODULE nt = GetModuleHandleA("ntdll.dll");
  return nt && GetProcAddress(nt, "wine_get_version") != NULL;
}

/* The working set: the pages of the process resident in memory. */
size_t kt_rss(void) {
  PROCESS_MEMORY_COUNTERS pmc;
  memset(&pmc, 0, sizeof pmc);
  pmc.cb = sizeof pmc;
  if (!K32GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return 0;
  return pmc.WorkingSetSize;
}

/* Regions of the address space in use (reserved or committed, each run of
 * pages with the same state and protection counted once): what
 * /proc/self/maps counts on Linux. A leaked stack is 3 (no-access page,
 * guard pages, usable part). */
size_t kt_map_count(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  size_t n = 0;
  char *p = (char *)si.lpMinimumApplicationAddress;
  MEMORY_BASIC_INFORMATION mbi;
  while (p < (char *)si.lpMaximumApplicationAddress && VirtualQuery(p, &mbi, sizeof mbi)) {
    if (mbi.State != MEM_FREE) n++;
    p = (char *)mbi.BaseAddress + mbi.RegionSize;
  }
  return n;
}

double kt_now_ns(void) {
  static LARGE_INTEGER freq;
  LARGE_INTEGER now;
  if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&now);
  return (double)now.QuadPart * (1e9 / (double)freq.QuadPart);
}

void kt_child_write(const void *p, size_t n) {
  HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
  const char *c = (const char *)p;
  while (n > 0) {
    DWORD w = 0;
    if (!WriteFile(out, c, (DWORD)n, &w, NULL) || w == 0) return;
    c += w;
    n -= w;
  }
}

void kt_child_send(int fd, const char *text) {
  (void)fd;
  kt_child_write(text, strlen(text));
}

int kt_fork(void (*fn)(void *arg, int fd), void *arg, unsigned timeout_s, void *out, size_t cap, size_t *got,
            int *timed_out) {
  (void)fn, (void)arg, (void)timeout_s, (void)out, (void)cap;
  *got = 0;
  *timed_out = 0;
  return -1;
}

const char *kt_fork_broken(void) { return "Windows has no fork() (a child is this program run again)"; }

long kt_spawn_self(const char *args, unsigned timeout_s, void *out, size_t cap, size_t *got, int *timed_out) {
  *got = 0;
  *timed_out = 0;
  char exe[MAX_PATH];
  DWORD len = GetModuleFileNameA(NULL, exe, sizeof exe);
  if (len == 0 || len >= sizeof exe) return -1;
  size_t cmd_size = strlen(exe) + strlen(args) + 8;
  char *cmd = (char *)malloc(cmd_size);
  if (!cmd) return -1;
  snprintf(cmd, cmd_size, "\"%s\" %s", exe, args);

  SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
  HANDLE rd, wr;
  if (!CreatePipe(&rd, &wr, &sa, 0)) {
    free(cmd);
    return -1;
  }
  SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
  STARTUPINFOA si;
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
  si.hStdOutput = wr;
  si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
  PROCESS_INFORMATION pi;
  fflush(NULL);
  BOOL ok = CreateProcessA(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
  free(cmd);
  CloseHandle(wr); /* the child has its copy: EOF once it is gone */
  if (!ok) {
    CloseHandle(rd);
    return -1;
  }
  double deadline = kt_now_ns() + (double)timeout_s * 1e9;
  char *buf = (char *)out;
  for (;;) {
    DWORD avail = 0;
    if (!PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL)) break; /* broken: the child is gone */
    if (avail > 0) {
      char tmp[512];
      DWORD n = 0;
      if (!ReadFile(rd, tmp, avail < sizeof tmp ? avail : (DWORD)sizeof tmp, &n, NULL) || n == 0) break;
      size_t take = (size_t)n < cap - *got ? (size_t)n : cap - *got;
      memcpy(buf + *got, tmp, take);
      *got += take;
      continue;
    }
    if (WaitForSingleObject(pi.hProcess, 20) == WAIT_OBJECT_0) {
      /* Gone: take what is left in the pipe. */
      if (PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL) && avail > 0) continue;
      break;
    }
    if (kt_now_ns() > deadline) {
      TerminateProcess(pi.hProcess, 0xDEAD);
      *timed_out = 1;
      break;
    }
  }
  CloseHandle(rd);
  WaitForSingleObject(pi.hProcess, INFINITE);
  DWORD code = 0;
  GetExitCodeProcess(pi.hProcess, &code);
  CloseHandle(pi.hProcess);
  CloseHandle(pi.hThread);
  return (long)code;
}
