// async_stack.h - moving a coroutine's part of Node's async-context stack.
//
// Node keeps one stack of async contexts (async ids and resources) per
// environment. A coroutine that suspends inside AsyncResource#runInAsyncScope
// would leave its entries on top of its resumer's, and Node aborts ("async
// hook stack has become corrupted") when the resumer pops its own. So a
// suspending coroutine pops the entries it pushed since it was resumed, and
// pushes them back when it is resumed again.
//
// Node exports the two operations (node::AsyncHooks::pop_async_context and
// push_async_context), and the hooks' emitters (node::AsyncWrap::EmitBefore
// and EmitAfter), but the AsyncHooks object is a member of the
// environment: it is found by its vtable pointer inside node::Environment and
// verified by pushing and popping a sentinel context before use.
#ifndef KO_V8BRIDGE_ASYNC_STACK_H
#define KO_V8BRIDGE_ASYNC_STACK_H

#include <string>

#include <v8.h>

namespace korutin {

// A resource pushed back by a coroutine. Node keeps a handle to it (or a
// pointer to that handle) while the entry is on its stack, so an entry must
// stay alive and in place until then.
struct AsyncEntry {
  v8::Global<v8::Object> global;
  v8::Local<v8::Object> alias;  // a Local naming the Global's slot
  AsyncEntry(v8::Isolate *iso, v8::Local<v8::Object> resource);
  // Names another resource (a pooled coroutine's base, reused).
  void Set(v8::Isolate *iso, v8::Local<v8::Object> resource);
  AsyncEntry(const AsyncEntry &) = delete;
  AsyncEntry &operator=(const AsyncEntry &) = delete;
};

class AsyncStack {
 public:
  // Finds the current environment's AsyncHooks (call on its JS thread).
  explicit AsyncStack(v8::Local<v8::Context> context);
  AsyncStack(const AsyncStack &) = delete;
  AsyncStack &operator=(const AsyncStack &) = delete;
  bool ok() const { return hooks_ != nullptr; }
  const std::string &reason() const { return reason_; }
  // The current top entry must be `async_id`.
  void Pop(double async_id);
  void Push(double async_id, double trigger_id, AsyncEntry *resource);
  // Push and Pop that also call async_hooks' before and after hooks, as
  // entering and leaving a callback of that resource does
  // (node::AsyncWrap::EmitBefore/EmitAfter, when this Node exports them).
  void Enter(double async_id, double trigger_id, AsyncEntry *resource);
  void Leave(double async_id);

 private:
  void *hooks_ = nullptr;
  void *env_ = nullptr;  // node::Environment
  std::string reason_;
};

}  // namespace korutin

#endif
