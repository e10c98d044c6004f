// binding.h - what the addon's two halves (binding.cc, sched_binding.cc)
// share, and the view of the switch state that JavaScript reads.
#ifndef KO_NODE_BINDING_H
#define KO_NODE_BINDING_H

// Slots of the Int32Array that binding.cc writes on every switch and
// ts/coroutine.ts reads (mirrored into ts/vocab.ts as VIEW_*): name, index.
// The addon owns which coroutine runs and whether it may hand off; JS only
// reads them here, without a call.
#define KO_VIEW_MAP(XX)                                                                        \
  XX(CURRENT, 0) /* the running coroutine's slot (its number's low KO_SLOT_BITS), -1: none */ \
  XX(HANDOFF, 1) /* 1: it may hand off (yield_to): resumed by resume_chain() or handed to */  \
  XX(SIZE, 2)    /* the array's length */

enum KoView {
#define KO_XX(name, index) KO_VIEW_##name = index,
  KO_VIEW_MAP(KO_XX)
#undef KO_XX
};

// A coroutine's number is its slot in the addon's table plus, above
// 2^KO_SLOT_BITS, the slot's generation (a stale number is refused).
#define KO_SLOT_BITS 24

// status(no) for a coroutine never resumed; otherwise it is the engine's
// state (KO_STATE_MAP). Mirrored into ts/vocab.ts.
#define KO_JS_CREATED 4

#endif
