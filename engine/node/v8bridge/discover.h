// discover.h - finds V8's thread-local slots in the running Node, and proves
// it found them. Nothing is hard-coded: symbols come from the dynamic table
// (dlsym) or the ELF .symtab of the object that holds V8; each slot's TLS
// offset is decoded from the first instructions of the function that reads
// it, then checked by reading and by writing a sentinel.
#ifndef KO_V8BRIDGE_DISCOVER_H
#define KO_V8BRIDGE_DISCOVER_H

#include <cstdint>
#include <cstddef>
#include <string>

namespace v8 { class Isolate; }

namespace korutin {

// The two per-thread V8 values a coroutine must own (see v8-bridge design note).
struct V8Slots {
  int *thread_id;         // v8::internal::ThreadId's thread_local int
  void **stack_start;     // v8::base::Stack's cached stack start
};

struct Discovery {
  bool ok = false;
  std::string reason;     // why not, when !ok
  long thread_id_offset = 0;    // from the thread pointer
  long stack_start_offset = 0;
  std::string thread_id_from;   // "dynamic" or ".symtab"
  std::string stack_start_from;
  // V8 13.6+ (Node 24, 26): v8::Isolate::SetStackLimit also stores, in the isolate,
  // the stack size GetStackStart() - limit, and Isolate::Throw CHECKs that
  // the current sp lies within that many bytes (plus a margin) below the
  // stack start ("central stack"). That field is per isolate, not per V8
  // thread: each side of a switch must put back its own value. Its offset
  // in the isolate, decoded from SetStackLimit; -1 where there is none (V8
  // before 13.6) or it could not be decoded. Verified on the first coroutine
  // entry (StackSizeField() turns to nullptr when that fails).
  long stack_size_offset = -1;
};

// The isolate's per-isolate stack-size field (see Discovery), or nullptr.
size_t *StackSizeField(v8::Isolate *iso);
// After SetStackLimit(limit) on a stack starting at `start`: does the field
// hold start - limit? If not, StackSizeField() gives nullptr from now on.
void VerifyStackSizeField(v8::Isolate *iso, void *start, uintptr_t limit);

// Runs once per process, on a thread that has entered a V8 isolate.
const Discovery &Discover();
// The slots of the calling OS thread (Discover() must have succeeded).
V8Slots SlotsOfThisThread();
// Finds a function of the object that holds V8 by its mangled name (dynamic
// table, then .symtab); `from` tells which, `why` why not.
void *FindV8Function(const char *name, std::string *from, std::string *why);

}  // namespace korutin

#endif
