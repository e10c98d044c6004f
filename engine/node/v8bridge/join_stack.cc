// join_stack.cc - see join_stack.h.
#include "join_stack.h"

#include <cstring>

namespace korutin {
namespace {

using v8::internal::Address;
using I = v8::internal::Internals;

#ifdef V8_ENABLE_DIRECT_HANDLE
#error "join_stack.cc reads a handle's slot: direct handles hold the object itself"
#endif

// The object a handle names (a Local or a Global is a pointer to a slot
// that holds the object's tagged address).
template <class H>
Address ObjectOf(const H &handle) {
  static_assert(sizeof(H) == sizeof(Address *), "a handle is one pointer");
  Address *slot;
  memcpy(&slot, &handle, sizeof slot);
  return slot ? *slot : 0;
}

int SmiAt(Address object, int offset) {
  Address word = I::ReadTaggedSignedField(object, offset);
  if (word & 1) return -1;  // not a Smi
  return static_cast<int>(static_cast<intptr_t>(word) >> (v8::internal::kSmiShiftSize + v8::internal::kSmiTagSize));
}

Address SlotOf(Address context, int i) {
  return I::ReadTaggedPointerField(context, I::kFixedArrayHeaderSize + i * v8::internal::kApiTaggedSize);
}

// A FixedArray's length and elements (the join stack is one).
int LengthOf(Address array) { return SmiAt(array, v8::internal::kApiTaggedSize); }
Address ElementOf(Address array, int i) { return SlotOf(array, i); }

// Longer join stacks than this are not taken for it during the search (V8
// starts it at 4 and grows it with the nesting of joins).
constexpr int kSearchMaxLength = 64;

int Depth(v8::Isolate *iso, Address context, int slot) {
  Address stack = SlotOf(context, slot);
  if (!I::HasHeapObjectTag(stack) || stack == I::GetRoot(iso, I::kUndefinedValueRootIndex)) return 0;
  const Address hole = I::GetRoot(iso, I::kTheHoleValueRootIndex);
  int n = LengthOf(stack), depth = 0;
  for (int i = 0; i < n; i++) depth += ElementOf(stack, i) != hole;
  return depth;
}

// The slot JoinStackDiscover() found, or -1.
int found_slot = -1;

struct Search {
  Address context = 0;
  int slot = -1;
  int matches = 0;
  int depth_inside = -1;
};

// probe(outer, inner), called with both arrays' joins under way.
void Probe(const v8::FunctionCallbackInfo<v8::Value> &info) {
  auto *s = static_cast<Search *>(info.Data().As<v8::External>()->Value());
  if (info.Length() < 2) return;
  const Address outer = ObjectOf(info[0]), inner = ObjectOf(info[1]);
  const int length = SmiAt(s->context, v8::internal::kApiTaggedSize);
  for (int i = 0; i < length; i++) {
    Address v = SlotOf(s->context, i);
    if (!I::HasHeapObjectTag(v)) continue;
    int n = LengthOf(v);
    if (n < 2 || n > kSearchMaxLength) continue;
    // Joins under way elsewhere (discovery inside one) come first.
    for (int k = 0; k + 1 < n; k++) {
      if (ElementOf(v, k) == outer && ElementOf(v, k + 1) == inner) {
        s->slot = i;
        s->matches++;
        break;
      }
    }
  }
  if (s->matches == 1) s->depth_inside = Depth(info.GetIsolate(), s->context, s->slot);
}

const char kProbeSource[] =
    "(function (probe) {\n"
    "  const inner = [{ toString() { probe(outer, inner); return 'i'; } }];\n"
    "  const outer = [{ toString() { return inner.join(); } }];\n"
    "  return outer.join();\n"
    "})";

JoinStackDiscovery Run(v8::Isolate *iso, v8::Local<v8::Context> context) {
  JoinStackDiscovery d;
  v8::HandleScope scope(iso);
  v8::Context::Scope context_scope(context);
  v8::TryCatch try_catch(iso);
  Search s;
  s.context = ObjectOf(context);
  v8::Local<v8::Function> probe, run;
  v8::Local<v8::Script> script;
  v8::Local<v8::Value> fn, result;
  v8::Local<v8::Value> arg;
  if (!v8::Function::New(context, Probe, v8::External::New(iso, &s)).ToLocal(&probe) ||
      !v8::Script::Compile(context, v8::String::NewFromUtf8Literal(iso, kProbeSource)).ToLocal(&script) ||
      !script->Run(context).ToLocal(&fn) || !fn->IsFunction()) {
    d.reason = "the join-stack probe did not compile";
    return d;
  }
  arg = probe;
  run = fn.As<v8::Function>();
  if (!run->Call(context, v8::Undefined(iso), 1, &arg).ToLocal(&result)) {
    d.reason = "the join-stack probe threw";
    return d;
  }
  if (s.matches != 1) {
    d.reason = s.matches ? "more than one native-context slot looked like the join stack"
                         : "no native-context slot held both arrays of a nested join";
    return d;
  }
  if (s.depth_inside - Depth(iso, s.context, s.slot) != 2) {
    d.reason = "the join stack found did not hold two more entries inside two nested joins than after them";
    return d;
  }
  d.ok = true;
  d.slot = s.slot;
  return d;
}

}  // namespace

const JoinStackDiscovery &JoinStackDiscover(v8::Isolate *iso, v8::Local<v8::Context> context) {
  static const JoinStackDiscovery d = [&] {
    JoinStackDiscovery r = Run(iso, context);
    found_slot = r.ok ? r.slot : -1;
    return r;
  }();
  return d;
}

int JoinDepth(v8::Isolate *iso, const v8::Global<v8::Context> &context) {
  Address ctx = found_slot < 0 ? 0 : ObjectOf(context);
  return ctx ? Depth(iso, ctx, found_slot) : 0;
}

}  // namespace korutin
