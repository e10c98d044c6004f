/**
 * The engine: a validated configuration bound to one backend, and the
 * coroutine operations that use it.
 */
import { requireBackend } from './backends';
import { BackendName, EngineConfig, parseConfig, ResolvedConfig, UnhandledPolicy } from './config';
import { Coroutine, CoroutineOptions, currentCoroutine, currentRecord, SpawnTarget, yieldValue } from './coroutine';
import { native } from './native';
import { select, SelectCase, SelectResult } from './channel';
import { closeCompute, compute, ComputeOptions, computeWith } from './compute';
import type { Net } from './net/index';
import { sync, SyncFunction } from './sync-call';
import { current as schedCurrent } from './sched/driver';
import { after as schedAfter, awaitPromise, AfterCase, sleep as schedSleep, spawnTask, spawnTaskWith, tasks as schedTasks, wakeup as schedWakeup, yieldNow as schedYieldNow } from './sched/ops';
import { SpawnOptions, Task, TaskInfo } from './sched/task';
import { setUnhandledPolicy } from './sched/unhandled';

/** Coroutines on one backend with one stack configuration. */
export class Engine {
  /** The backend in use (resolved when `'auto'` was asked for). */
  readonly backend: BackendName;
  /** The validated configuration. */
  readonly config: Readonly<ResolvedConfig>;
  /** What its coroutines are made with. */
  private target: SpawnTarget | undefined;

  constructor(config: EngineConfig = {}) {
    this.config = Object.freeze(parseConfig(config));
    this.backend = requireBackend(this.config.backend);
    // The stack pool is process-wide: an engine may raise its limit, never lower it.
    const before = native.stack_pool_limit(this.config.poolSize);
    if (before > this.config.poolSize) native.stack_pool_limit(before);
  }

  /**
   * Creates a suspended coroutine running `fn`. Its first `resume(v)` calls
   * `fn(v)`; inside, `engine.yield()` suspends it at any call depth.
   */
  create<TIn = any, TYield = any, TReturn = any>(
    fn: (arg: TIn) => TReturn,
    options?: CoroutineOptions,
  ): Coroutine<TIn, TYield, TReturn> {
    return new Coroutine<TIn, TYield, TReturn>(fn, (this.target ??= { backend: this.backend, stackSize: this.config.stackSize, guardSize: this.config.guardSize }), options);
  }

  /** Suspends the running coroutine with `value`; returns what the next `resume()` passes. */
  yield<TIn = any>(value?: unknown): TIn {
    // In a task's own coroutine nobody resumes it with a value: the
    // scheduler does. There it is yieldNow(): other ready tasks run first,
    // then it returns undefined (the value is dropped).
    if (currentRecord()?.owner instanceof Task) {
      schedYieldNow();
      return undefined as TIn;
    }
    return yieldValue<TIn>(value);
  }

  /** The innermost running coroutine, or undefined outside any. */
  currentCoroutine(): Coroutine | undefined {
    return currentCoroutine();
  }

  /** True when called from inside a coroutine. */
  inCoroutine(): boolean {
    return native.in_coroutine();
  }

  // --- scheduler (ts/scheduler.ts) ---

  /**
   * Starts `fn(...args)` as a task on this engine's backend; it starts soon
   * (on the event loop), not inside this call. A trailing `{ name }` object
   * is taken as options when `fn` declares fewer parameters than were
   * passed (use {@link Engine.spawnWith} to be explicit).
   */
  spawn<A extends unknown[], R>(fn: (...args: A) => R, ...args: A | [...A, SpawnOptions]): Task<Awaited<R>> {
    return spawnTask(this, fn as (...a: unknown[]) => R, args) as unknown as Task<Awaited<R>>;
  }

  /** Starts `fn(...args)` as a task with these options. */
  spawnWith<A extends unknown[], R>(options: SpawnOptions, fn: (...args: A) => R, ...args: A): Task<Awaited<R>> {
    return spawnTaskWith(this, options, fn as (...a: unknown[]) => R, args) as unknown as Task<Awaited<R>>;
  }

  /** The running task, or undefined outside tasks. */
  current(): Task | undefined {
    return schedCurrent();
  }

  /** Every task not ended yet: id, name, state and what it waits on. */
  tasks(): TaskInfo[] {
    return schedTasks();
  }

  /** Inside a task: sleeps `ms` milliseconds; true when `wakeup()` ended it early. */
  sleep(ms: number): boolean {
    return schedSleep(ms);
  }

  /** Ends a task's sleep early; false if it was not sleeping. */
  wakeup(task: Task<any>): boolean {
    return schedWakeup(task);
  }

  /** Inside a task: lets every other ready task run once first. */
  yieldNow(): void {
    schedYieldNow();
  }

  /**
   * Inside a task: waits for a promise (only this task waits) and returns
   * its value; a rejection is thrown here. `ERR_TIMEOUT` after `timeoutMs`.
   */
  await<T>(promise: PromiseLike<T> | T, timeoutMs?: number): T {
    return awaitPromise(promise, timeoutMs);
  }

  /** A select case that fires after `ms` milliseconds. */
  after(ms: number): AfterCase {
    return schedAfter(ms);
  }

  /** Inside a task: waits for one of the cases (see {@link select}). */
  select(cases: readonly SelectCase[]): SelectResult {
    return select(cases);
  }

  /**
   * What to do with errors of tasks nobody joins (detached, or collected
   * unjoined): `'throw'` (default), `'warn'`, `'ignore'`, or a function.
   */
  setUnhandled(policy: UnhandledPolicy): this {
    setUnhandledPolicy(this, policy);
    return this;
  }

  // --- end scheduler ---

  // --- I/O and compute (ts/net/, ts/sync-call.ts, ts/compute.ts) ---

  private netNs: Net | null = null;

  /** Blocking-style TCP, TLS and UDP for tasks (as `korutin/net`; handler tasks run on this engine). */
  get net(): Net {
    // loaded on first use: node:net, node:tls and node:dgram are not needed before
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (this.netNs ??= (require('./net/index') as typeof import('./net/index')).netFor(this));
  }

  /**
   * Wraps an async function: called inside a task, the wrapper suspends
   * only that task until the promise settles and returns its value (a
   * rejection is thrown there); outside a task it throws ERR_NOT_IN_COROUTINE.
   */
  sync<F extends (...args: any[]) => unknown>(asyncFn: F): SyncFunction<F> {
    return sync(asyncFn);
  }

  /**
   * Inside a task: runs `exportName(...args)` of `modulePath` (absolute, or
   * a file: URL) on a worker thread; only this task waits. Returns its
   * (awaited) result; its error is thrown here with its stack.
   */
  compute<R = unknown>(modulePath: string | URL, exportName: string, ...args: unknown[]): R {
    return compute(modulePath, exportName, ...args) as R;
  }

  /** {@link Engine.compute} with options: `transferList`, `timeoutMs`. */
  computeWith<R = unknown>(options: ComputeOptions, modulePath: string | URL, exportName: string, ...args: unknown[]): R {
    return computeWith(options, modulePath, exportName, ...args) as R;
  }

  /** Releases what the engine started in the background: the compute pool (waits for running jobs). */
  close(): Promise<void> {
    return closeCompute();
  }
}

/** Creates an engine; throws ERR_INVALID_CONFIG or ERR_BACKEND_UNAVAILABLE. */
export function createEngine(config?: EngineConfig): Engine {
  return new Engine(config);
}
