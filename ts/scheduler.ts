/**
 * The scheduler on the Node event loop: tasks, sleep, await, yield, and the
 * driver every blocking primitive (channels, select, sync) goes through.
 *
 * Who runs, who blocks and who wakes is decided by the scheduler core in C
 * (engine/src/sched, the same core the C API uses); this module is its JS
 * driver: it switches coroutines, reads the clock, arms one Node timer for
 * the earliest deadline and runs "passes" from `setImmediate` (so
 * microtasks run and errors surface between passes). There is one
 * scheduler per thread (main thread or Worker); engines of any backend
 * spawn tasks into it.
 *
 * Values sent on channels stay in JavaScript: the core carries slot numbers
 * of {@link slotPut}'s table.
 *
 * The parts, in ts/sched/: binding.ts (the core's binding, io buffers,
 * clock, slots), unhandled.ts (unobserved task errors), task.ts (Task),
 * driver.ts (passes, suspend and wake) and ops.ts (what tasks call). This
 * module is their one entry for the API and the tools; korutin's own
 * modules import the parts themselves, since a CommonJS `export *` reads
 * every name through a getter whose load is megamorphic (it cost a channel
 * message about 50 ns).
 */
export * from './sched/binding';
export * from './sched/unhandled';
export * from './sched/task';
export * from './sched/driver';
export * from './sched/ops';
