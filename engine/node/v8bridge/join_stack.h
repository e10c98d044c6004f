// join_stack.h - whether an Array.prototype.join is under way on a
// coroutine's stack.
//
// V8 guards join (and Array.prototype.toString and toLocaleString, and
// TypedArray join, which call it) against cycles with one stack per native
// context, not per stack: a FixedArray in a slot of the native context.
// Each join pushes its receiver there and removes it when it returns, and
// expects them to come off in the order they went on. A coroutine suspended
// inside a join (an element's toString yields) leaves its entry there: every
// other join of that array returns '' while it waits, and two such joins
// finished out of order kill the process (V8's JoinStackPop finds no entry:
// SIGTRAP). So the bridge notes how many entries that stack holds when a
// coroutine is resumed, and a coroutine that would suspend with more is
// refused (see bridge.h, JsSuspendRefusal).
//
// V8 has no API for that stack. The slot is found once per process: a join
// is run whose element's toString, nested in a second join, looks through
// the native context's slots for the one stack that holds both arrays, in
// order, and then checks that it is empty again when they return.
#ifndef KO_V8BRIDGE_JOIN_STACK_H
#define KO_V8BRIDGE_JOIN_STACK_H

#include <string>

#include <v8.h>

namespace korutin {

struct JoinStackDiscovery {
  bool ok = false;
  std::string reason;  // why not, when !ok
  int slot = -1;       // the join stack's index among the native context's slots
};

// Runs once per process (later calls return the first answer), on a thread
// that holds the isolate, outside any coroutine, in `context`.
const JoinStackDiscovery &JoinStackDiscover(v8::Isolate *iso, v8::Local<v8::Context> context);
// The joins under way (on every stack) in the native context `context`;
// 0 when the slot was not found.
int JoinDepth(v8::Isolate *iso, const v8::Global<v8::Context> &context);

}  // namespace korutin

#endif
