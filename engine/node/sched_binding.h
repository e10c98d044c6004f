// sched_binding.h - the scheduler core (engine/src/sched) for JavaScript.
#ifndef KO_NODE_SCHED_BINDING_H
#define KO_NODE_SCHED_BINDING_H

#include <napi.h>

// Slots of the Int32Array shared with ts/scheduler.ts (mirrored into
// ts/vocab.ts as IO_*): name, index.
#define KS_IO_MAP(XX)                                                                     \
  XX(READY, 0)  /* tasks ready to run (after every call) */                               \
  XX(FIRED, 2)  /* select() that did not block: the case that fired */                    \
  XX(VALUE, 3)  /* chan_recv(), chan_try_recv(), select() that did not block: the value */ \
  XX(SEQ, 4)    /* block_external(): the wait's number, for wake_external() */            \
  XX(SERIAL, 5) /* *_new(), spawn(), task_info(): the object's serial ("channel#N") */    \
  XX(AUX, 6)    /* chan_info(): capacity; task_info(): end */                             \
  XX(AUX2, 7)   /* chan_info(): closed */                                                 \
  XX(NEXT, 8)   /* a task op that blocked: KS_NEXT_HANDED or KS_NEXT_PASSED (see       \
                   Blocked()), or -1: the task yields back to the pass itself */          \
  XX(TIMED, 9)  /* waits with a deadline (after every call): 0, no timer to arm or expire */ \
  XX(HAND, 10)  /* set by JS before a task op: 1, the task is at its base async context, \
                   so a block may hand the turn straight to the next task */              \
  XX(RUNS, 11)  /* run_pass(): the tasks it ran (resumed in a chain) */                  \
  XX(SIZE, 16)  /* the array's length */

// The length of the Float64Array of arguments shared with
// ts/sched/binding.ts (mirrored into ts/vocab.ts): the most numbers a
// function takes. JS writes a call's arguments there, in order, then calls
// with none.
#define KS_ARGS_SIZE 5

// io[NEXT] after a task op that blocked and handed the turn straight to the
// next task: the op returns KS_BLOCK once the task runs again, its outcome
// in its record of the outcome array. Mirrored into ts/vocab.ts.
#define KS_NEXT_HANDED -3
// io[NEXT] after a task op that blocked with no task to hand the turn to:
// the task suspended back to the pass that runs its chain, natively, and
// the op returns KS_BLOCK once it runs again (no yield from JS).
#define KS_NEXT_PASSED -4

// Each task's (and proxy's) record in the Int32Array of outcomes shared
// with ts/sched/binding.ts (mirrored as OUT_*), at handle * SIZE: what its
// last wait ended with, written when the core pops it to run (Popped()),
// so that it reads its own whatever JS ran since (a hook, another task).
#define KS_OUTCOME_MAP(XX)                                                      \
  XX(STATUS, 0) /* the wait's status (KO_OK, KO_ETIMEDOUT, ...) */              \
  XX(FIRED, 1)  /* select(): the case that fired */                             \
  XX(VALUE, 2)  /* chan_recv(), select(): the value (a slot) */                 \
  XX(SEQ, 3)    /* its wait number now: what its next block_external() waits   \
                   with (until it is woken), so that JS can arrange the wake   \
                   before it blocks */                                          \
  XX(SIZE, 4)   /* the record's length */

enum KsOutcome {
#define KS_XX(name, index) KS_OUT_##name = index,
  KS_OUTCOME_MAP(KS_XX)
#undef KS_XX
};

enum KsIo {
#define KS_XX(name, index) KS_IO_##name = index,
  KS_IO_MAP(KS_XX)
#undef KS_XX
};

namespace korutin {

// Adds `exports.sched`: the scheduler core of this environment (one per
// main thread or Worker), driven by ts/scheduler.ts.
void InitScheduler(Napi::Env env, Napi::Object exports);

}  // namespace korutin

#endif
