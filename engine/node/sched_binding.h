// sched_binding.h - the scheduler core (engine/src/sched) for JavaScript.
#ifndef KO_NODE_SCHED_BINDING_H
#define KO_NODE_SCHED_BINDING_H

#include <napi.h>

namespace korutin {

// Adds `exports.sched`: the scheduler core of this environment (one per
// main thread or Worker), driven by ts/scheduler.ts.
void InitScheduler(Napi::Env env, Napi::Object exports);

}  // namespace korutin

#endif
