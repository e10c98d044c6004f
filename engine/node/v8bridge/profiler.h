// profiler.h - lets V8's sampling profilers see a coroutine's frames.
//
// V8's CPU sampler (--cpu-prof, the inspector's Profiler domain) and the
// --prof ticker keep the PerIsolateThreadData of the thread that started
// them, and drop every sample unless that record's thread holds the isolate
// lock and is not archived. While a coroutine runs, the lock belongs to the
// coroutine's V8 thread and the resumer's record is archived, so every
// sample taken on the coroutine's stack was dropped (the profile then
// charges the gap to the last frame sampled before it: resumeNative).
//
// On backends that run a coroutine on its resumer's OS thread, the bridge
// lends that record to the running coroutine: after taking the lock it
// writes the coroutine's thread id into the record and clears its thread
// state, and before releasing the lock it puts both back. Nothing else in
// V8 reads those two fields of another thread's record while the coroutine
// runs (the thread table is keyed separately, see the discovery check).
// The record's layout is found and verified at load time (profiler.cc).
#ifndef KO_V8BRIDGE_PROFILER_H
#define KO_V8BRIDGE_PROFILER_H

#include <string>

#include <v8.h>

namespace korutin {

struct ProfilerDiscovery {
  bool ok = false;
  std::string reason;          // why not, when !ok
  long thread_id_offset = 0;   // in PerIsolateThreadData
  long thread_state_offset = 0;
  std::string from;            // "dynamic" or ".symtab"
};

// The discovery's result (runs it once, on the calling thread, which must
// hold the isolate and run no coroutine).
const ProfilerDiscovery &ProfilerDiscover(v8::Isolate *iso);
// The last discovery's result, or nullptr if it has not run yet.
const ProfilerDiscovery *ProfilerDiscovered();

// On the resumer's side before a switch from outside any coroutine: notes
// this OS thread's own record (once per thread).
void ProfilerNoteBase(v8::Isolate *iso);
// On a coroutine's side, right after taking the lock / right before
// releasing it (same-OS-thread backends only).
void ProfilerLend();
void ProfilerReturn();

// Own-thread backends (threads): V8's sampler signals the OS thread that
// started it, never a coroutine's thread. While a sampling profiler is on
// (a SIGPROF handler is installed), a ticker asks the isolate for an
// interrupt every millisecond while such a coroutine runs, and the
// interrupt records the coroutine's stack with the public
// v8::CpuProfiler::CollectSample (CPU profiles only; --prof misses them).
// On a coroutine's thread, right after taking the lock / right before
// releasing it.
void ProfilerOwnThreadIn(v8::Isolate *iso);
void ProfilerOwnThreadOut();

}  // namespace korutin

#endif
