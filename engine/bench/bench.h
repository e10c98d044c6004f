/*
 * bench.h - shared by the parts of korutin-bench.
 */
#ifndef KO_BENCH_H
#define KO_BENCH_H

#include <stddef.h>

double kb_now_ns(void);
/* Median of n values (sorts them). */
double kb_median(double *v, int n);
size_t kb_rss(void);

/* References, each ns per switch (a round trip is two), or -1 when not
 * built in: a raw Boost.Context jump_fcontext ping-pong, a raw swapcontext
 * ping-pong, and a futex handoff between two threads. */
/* flags_differ: the two sides' sticky FP exception flags differ (the
 * coroutine has raised "inexact", the caller has cleared its flags), as
 * they soon do in real programs. */
double kb_ref_fcontext(long round_trips, int flags_differ);
/* Round trips per second of `count` raw jump_fcontext contexts resumed
 * round-robin (median of reps runs), or -1. */
double kb_ref_fcontext_rr(int count, long round_trips, int reps);
/* The floor (floor_x86_64.S): the same two measurements with a switch
 * that keeps no FP state, the least any switch can do; -1 where it is not
 * built (other than x86-64 System V). */
double kb_ref_floor(long round_trips);
double kb_ref_floor_rr(int count, long round_trips, int reps);
/* Raises FE_INEXACT with an SSE/FPU division the compiler cannot fold. */
void kb_raise_inexact(void);
double kb_ref_swapcontext(long round_trips);
double kb_ref_futex(long round_trips);

/* korutin-bench --million (million.c): returns the exit status. */
int kb_million(const char *json);

#endif
