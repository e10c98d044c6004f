// binding.h - what the addon's two halves (binding.cc, sched_binding.cc)
// share, and the view of the switch state that JavaScript reads.
#ifndef KO_NODE_BINDING_H
#define KO_NODE_BINDING_H

#include <node_api.h>

#include <cstddef>

// Slots of the Int32Array that binding.cc writes on every switch and
// ts/coroutine.ts reads (mirrored into ts/vocab.ts as VIEW_*): name, index.
// The addon owns which coroutine runs; JS only reads it here, without a call.
#define KO_VIEW_MAP(XX)                                                                        \
  XX(CURRENT, 0) /* the running coroutine's slot (its number's low KO_SLOT_BITS), -1: none */ \
  XX(SIZE, 1)    /* the array's length */

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

namespace korutin {

struct JsCoroutine;

// A hand-off (the scheduler's binding decides when): the running coroutine
// `c`, run by a chain (JsRunChain, or handed the turn), suspends and its
// chain resumes coroutine `no` at once, in no's base async context; `no`
// must be suspended, started, with a base. Returns true once `c` is resumed again;
// false, having done nothing, when `no` cannot take the turn so.
bool JsHandOff(napi_env env, JsCoroutine *c, double no);

// The running coroutine `c`, run by a chain, suspends back to the pass
// that ran the chain, as a yield from JS would (in its base async context:
// the chain leaves it, and enters it again when it resumes `c`). Returns
// true once `c` is resumed again; false, having done nothing, when `c`
// does not run in a chain.
bool JsYieldToChain(JsCoroutine *c);

// How a chain came back to the pass that resumed it (JsRunChain): its last
// coroutine yielded, or ended (returned or threw: JS finds which, and its
// value, in ts/coroutine.ts); or it could not run, an exception pending.
enum JsChainEnd { kJsChainYielded, kJsChainEnded, kJsChainFailed };

// The scheduler binding's pass resumes a task's coroutine `no` (started or
// not, suspended, with a base) from outside any coroutine, as a chain: the
// coroutines it hands the turn to run in turn (JsHandOff) until one
// yields back or ends.
JsChainEnd JsRunChain(napi_env env, double no);

// A typed array that JavaScript shares with the addon (the view, the
// scheduler's io and select cases): when `value` is one of `type` with at
// least `min` elements, *ref (replacing what it held) keeps it alive and
// its data is returned (its length in *len); else nullptr, nothing changed.
void *HoldTypedArray(napi_env env, napi_value value, napi_typedarray_type type, size_t min, napi_ref *ref,
                     size_t *len = nullptr);

}  // namespace korutin

#endif
