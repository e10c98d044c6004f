// async_stack.cc - see async_stack.h.
#include "async_stack.h"

#include <dlfcn.h>
#include <node.h>
#include <node_version.h>

#include <cstdint>
#include <cstring>
#include <variant>

namespace korutin {
namespace {

// Itanium C++ ABI: a member function is a function whose first argument is
// `this`. The resource argument changed shape across Node majors.
// Node stores what it is given (a Local is a pointer to a handle slot), so
// a Local aliasing a Global's slot stays valid as long as the Global does.
v8::Local<v8::Object> Alias(v8::Global<v8::Object> *g) {
  static_assert(sizeof(v8::Global<v8::Object>) == sizeof(v8::Local<v8::Object>), "handle layout");
  v8::Local<v8::Object> l;
  memcpy(static_cast<void *>(&l), static_cast<const void *>(g), sizeof l);
  return l;
}
#if NODE_MAJOR_VERSION >= 26
using ResourceArg = std::variant<v8::Local<v8::Object> *, v8::Global<v8::Object> *>;
const char kPushSym[] =
    "_ZN4node10AsyncHooks18push_async_contextEddSt7variantIJPN2v85LocalINS2_6ObjectEEEPNS2_6GlobalIS4_EEEE";
ResourceArg Arg(AsyncEntry *e) { return ResourceArg(&e->global); }
#elif NODE_MAJOR_VERSION >= 21
using ResourceArg = v8::Local<v8::Object> *;
const char kPushSym[] = "_ZN4node10AsyncHooks18push_async_contextEddPN2v85LocalINS1_6ObjectEEE";
ResourceArg Arg(AsyncEntry *e) { return &e->alias; }
#else
using ResourceArg = v8::Local<v8::Object>;
const char kPushSym[] = "_ZN4node10AsyncHooks18push_async_contextEddN2v85LocalINS1_6ObjectEEE";
ResourceArg Arg(AsyncEntry *e) { return e->alias; }
#endif
const char kPopSym[] = "_ZN4node10AsyncHooks17pop_async_contextEd";
const char kEmitBeforeSym[] = "_ZN4node9AsyncWrap10EmitBeforeEPNS_11EnvironmentEd";
const char kEmitAfterSym[] = "_ZN4node9AsyncWrap9EmitAfterEPNS_11EnvironmentEd";
const char kVtableSym[] = "_ZTVN4node10AsyncHooksE";

using PushFn = void (*)(void *, double, double, ResourceArg);
using PopFn = bool (*)(void *, double);
using EmitFn = void (*)(void *, double);

struct Functions {
  PushFn push = nullptr;
  PopFn pop = nullptr;
  EmitFn emit_before = nullptr;  // optional: without them no hooks are called
  EmitFn emit_after = nullptr;
  uintptr_t vptr = 0;  // what an AsyncHooks object holds in its first word
};

// Out of line, as Discover(): the switch path need not carry it inlined.
__attribute__((noinline)) const Functions &Lookup() {
  static const Functions f = [] {
    Functions r;
    r.push = reinterpret_cast<PushFn>(dlsym(RTLD_DEFAULT, kPushSym));
    r.pop = reinterpret_cast<PopFn>(dlsym(RTLD_DEFAULT, kPopSym));
    r.emit_before = reinterpret_cast<EmitFn>(dlsym(RTLD_DEFAULT, kEmitBeforeSym));
    r.emit_after = reinterpret_cast<EmitFn>(dlsym(RTLD_DEFAULT, kEmitAfterSym));
    if (void *vt = dlsym(RTLD_DEFAULT, kVtableSym)) r.vptr = reinterpret_cast<uintptr_t>(vt) + 2 * sizeof(void *);
    return r;
  }();
  return f;
}

// How far into node::Environment the AsyncHooks member may lie.
constexpr size_t kScanBytes = 4096;

}  // namespace

AsyncStack::AsyncStack(v8::Local<v8::Context> context) {
  const Functions &f = Lookup();
  if (!f.push || !f.pop || !f.vptr) {
    reason_ = "this Node does not export node::AsyncHooks' push/pop functions and vtable";
    return;
  }
  auto *env = reinterpret_cast<const unsigned char *>(node::GetCurrentEnvironment(context));
  if (!env) {
    reason_ = "no Node environment for this context";
    return;
  }
  void *found = nullptr;
  for (size_t off = 0; off + sizeof(uintptr_t) <= kScanBytes; off += sizeof(uintptr_t)) {
    uintptr_t word;
    memcpy(&word, env + off, sizeof word);
    if (word == f.vptr) {
      found = const_cast<unsigned char *>(env + off);
      break;
    }
  }
  if (!found) {
    reason_ = "node::AsyncHooks was not found inside node::Environment";
    return;
  }
  // Verify: a sentinel pushed there must be what Node reports as current.
  // Not in a Worker being terminated: its environment is on its way out.
  v8::Isolate *iso = v8::Isolate::GetCurrent();
  if (iso->IsExecutionTerminating()) {
    reason_ = "the thread's JavaScript is being terminated";
    return;
  }
  v8::HandleScope scope(iso);
  double before = node::AsyncHooksGetExecutionAsyncId(iso);
  const double sentinel = 9007199254740000.0;  // far beyond any id Node hands out
  AsyncEntry resource(iso, v8::Object::New(iso));
  f.push(found, sentinel, before, Arg(&resource));
  bool seen = node::AsyncHooksGetExecutionAsyncId(iso) == sentinel;
  f.pop(found, sentinel);
  if (!seen || node::AsyncHooksGetExecutionAsyncId(iso) != before) {
    reason_ = "a sentinel pushed through the found node::AsyncHooks was not seen by Node";
    return;
  }
  hooks_ = found;
  env_ = const_cast<unsigned char *>(env);
}

void AsyncStack::Pop(double async_id) { Lookup().pop(hooks_, async_id); }

void AsyncStack::Push(double async_id, double trigger_id, AsyncEntry *resource) {
  Lookup().push(hooks_, async_id, trigger_id, Arg(resource));
}

void AsyncStack::Enter(double async_id, double trigger_id, AsyncEntry *resource) {
  Push(async_id, trigger_id, resource);
  if (EmitFn f = Lookup().emit_before) f(env_, async_id);
}

void AsyncStack::Leave(double async_id) {
  if (EmitFn f = Lookup().emit_after) f(env_, async_id);
  Pop(async_id);
}

AsyncEntry::AsyncEntry(v8::Isolate *iso, v8::Local<v8::Object> resource)
    : global(iso, resource), alias(Alias(&global)) {}

void AsyncEntry::Set(v8::Isolate *iso, v8::Local<v8::Object> resource) {
  global.Reset(iso, resource);
  alias = Alias(&global);
}

}  // namespace korutin
