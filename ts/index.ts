/**
 * korutin: stackful coroutines for Node.js.
 *
 * ```ts
 * import { createEngine } from 'korutin';
 * const ko = createEngine();
 * const co = ko.create((x: number) => ko.yield(x + 1) * 2);
 * co.resume(1); // { value: 2, done: false }
 * co.resume(5); // { value: 10, done: true }
 * ```
 */
export { createEngine, Engine } from './engine';
export { Coroutine } from './coroutine';
export type { CoroutineState, CoroutineOptions } from './coroutine';
export { ConfigSchema, UnhandledSchema, parseConfig, parseSize, BACKENDS, MIN_STACK, MAX_STACK } from './config';
export type { EngineConfig, ResolvedConfig, BackendName, UnhandledPolicy } from './config';
export { backends, autoBackend } from './backends';
export type { BackendInfo } from './backends';
export { KorutinError, CancelledError } from './errors';
export type { ErrorCode } from './errors';
export { Task, liveTaskCount } from './scheduler';
export type { TaskState, TaskInfo, SpawnOptions, AfterCase } from './scheduler';
export { Channel, select, trySelect, selectAsync } from './channel';
export type { RecvCase, SendCase, SelectCase, SelectResult, TryRecvResult } from './channel';
export { Mutex, Cond, Semaphore, WaitGroup } from './sync';
export { sync } from './sync-call';
export type { SyncFunction } from './sync-call';
export { compute, computeWith, closeCompute, transferResult } from './compute';
export type { ComputeOptions } from './compute';
