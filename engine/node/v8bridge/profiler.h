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
// The thread whose samplers see coroutines resumed from here (its "home":
// the isolate's own thread, where V8's samplers were started), or nullptr
// if it has no noted record. An own-thread coroutine is told it on resume
// (JsCoroutine::profiler_home).
void *ProfilerHome();
// On a coroutine's side, right after taking the lock / right before
// releasing it; on a resumer's side, the same around its switch.
//
// Same OS thread as the home (asm, boost, ucontext): the home's record is
// lent to the coroutine while it holds the lock (see above).
//
// Own thread (threads): V8's samplers signal the home thread, never the
// coroutine's. While a SIGPROF handler is installed (a sampling profiler is
// on), the bridge puts its own handler in front of it and arms a relay for
// the running coroutine: a SIGPROF on the home thread is sent on to the
// coroutine's thread, which hands over its register state and waits; the
// home thread's handler lends its record for the moment and calls the
// profiler's handler with that state, so V8 walks the coroutine's stack,
// which stands still meanwhile (as V8's samplers on macOS and Windows
// sample a suspended thread from another one). Every sampler sees it:
// --prof, --cpu-prof, the inspector's Profiler.
void ProfilerLend();
void ProfilerReturn();

}  // namespace korutin

#endif
