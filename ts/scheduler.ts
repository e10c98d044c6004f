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
 */
import { performance } from 'perf_hooks';
import { canHandOff, chainsSupported, checkOptions, currentRecord, Coroutine, handOff, joinChains, Out, runChain, watch, yieldValue } from './coroutine';
import { UnhandledPolicy, UnhandledSchema } from './config';
import { CancelledError, isCancelledError, KorutinError } from './errors';
import { describeGiven, describeValue } from './format';
import { native } from './native';
import type { Engine } from './engine';

// ------------------------------------------------------------ the binding

/** Numbers shared with engine/node/sched_binding.cc. */
interface SchedConstants {
  OK: number; BLOCK: number; WOKEN: number; EINVAL: number; ENOMEM: number; EDONE: number; EBUSY: number;
  ETIMEDOUT: number; ECLOSED: number; ECANCELED: number; EAGAIN: number;
  OP_RECV: number; OP_SEND: number; OP_AFTER: number;
  END_OK: number; END_ERROR: number; END_CANCELLED: number;
  READY: number; RUNNING: number; BLOCKED: number; DONE: number; EXT_AWAIT: number;
  IO_READY: number; IO_STATUS: number; IO_FIRED: number; IO_VALUE: number; IO_SEQ: number;
  IO_SERIAL: number; IO_AUX: number; IO_AUX2: number; IO_NEXT: number; IO_SIZE: number;
}

/** The scheduler core, as engine/node/sched_binding.cc exposes it. @internal */
export interface SchedBinding {
  K: SchedConstants;
  setBuffers(io: Int32Array, cases: Float64Array): number;
  spawn(): number;
  proxy(): number;
  release(h: number): number;
  next(): number;
  unnext(h: number): number;
  exit(h: number, end: number): number;
  cancel(h: number): number;
  wakeup(h: number): number;
  yieldNow(h: number): number;
  sleep(h: number, now: number, dur: number): number;
  join(h: number, target: number, now: number, timeout: number): number;
  blockExternal(h: number, now: number, timeout: number, kind: number): number;
  wakeExternal(h: number, seq: number, status: number): number;
  expire(now: number): number;
  nextDeadline(): number;
  taskInfo(h: number): number;
  describe(h: number, now: number): string;
  liveCount(): number;
  chanNew(cap: number): number;
  send(h: number, ch: number, slot: number, now: number, timeout: number): number;
  recv(h: number, ch: number, now: number, timeout: number): number;
  trySend(ch: number, slot: number): number;
  tryRecv(ch: number): number;
  close(ch: number): number;
  chanInfo(ch: number): number;
  select(h: number, n: number, now: number, timeout: number, nonblock: number): number;
  mutexNew(): number;
  lock(h: number, m: number, now: number, timeout: number): number;
  tryLock(h: number, m: number): number;
  unlock(h: number, m: number): number;
  mutexInfo(m: number): number;
  condNew(): number;
  condWait(h: number, c: number, m: number, now: number, timeout: number): number;
  signal(c: number): number;
  broadcast(c: number): number;
  semNew(n: number): number;
  acquire(h: number, s: number, now: number, timeout: number): number;
  tryAcquire(s: number): number;
  semRelease(s: number, n: number): number;
  semCount(s: number): number;
  wgNew(): number;
  wgAdd(w: number, d: number): number;
  wgWait(h: number, w: number, now: number, timeout: number): number;
  wgCount(w: number): number;
  free(h: number): number;
}

const binding = (native as unknown as { sched: SchedBinding }).sched;
/**
 * The binding's functions and constants, copied into plain objects: the
 * addon builds its objects property by property, which leaves them in
 * V8's slow (dictionary) mode; these copies have fast properties. @internal
 */
export const S: SchedBinding = { ...binding };
/** @internal */
export const K: SchedConstants = { ...binding.K };
/** Extra results of the core's calls (see sched_binding.cc). @internal */
export const io = new Int32Array(K.IO_SIZE);
/** Select cases: [op, handle, value] each. @internal */
export let caseBuf = new Float64Array(3 * 256);
S.setBuffers(io, caseBuf);

/** Makes room for n select cases. @internal */
export function caseRoom(n: number): Float64Array {
  if (3 * n > caseBuf.length) {
    caseBuf = new Float64Array(3 * Math.max(n, 2 * (caseBuf.length / 3)));
    S.setBuffers(io, caseBuf);
  }
  return caseBuf;
}

/** The scheduler's clock: microseconds of `performance.now()`. @internal */
export function clock(): number {
  return Math.floor(performance.now() * 1000);
}

/** A timeout in milliseconds (undefined or Infinity: none) to the core's microseconds (-1: none). @internal */
export function timeoutUs(ms: number | undefined, what: string): number {
  if (ms === undefined || ms === Infinity) return -1;
  if (typeof ms !== 'number' || !(ms >= 0)) {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `${what}: the timeout must be a number of milliseconds >= 0 (or undefined for none), got ${describeGiven(ms)}`);
  }
  return Math.round(ms * 1000);
}

// ------------------------------------------------------------------ slots

const slotVals: unknown[] = [];
const slotFree: number[] = [];

/** Parks a JS value for the core to carry; returns its slot. @internal */
export function slotPut(v: unknown): number {
  const s = slotFree.length > 0 ? slotFree.pop()! : slotVals.length;
  slotVals[s] = v;
  return s;
}

/** Takes a parked value back, freeing its slot. @internal */
export function slotTake(s: number): unknown {
  const v = slotVals[s];
  slotVals[s] = undefined;
  slotFree.push(s);
  return v;
}

// ------------------------------------------------------ unhandled errors

const policies = new WeakMap<Engine, UnhandledPolicy>();

/** Sets an engine's policy for unhandled task errors. @internal */
export function setUnhandledPolicy(engine: Engine, policy: UnhandledPolicy): void {
  const r = UnhandledSchema.safeParse(policy);
  if (!r.success) {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `unhandled must be 'throw', 'warn', 'ignore' or a function (error, task) => void`);
  }
  policies.set(engine, policy);
}

function policyOf(engine: Engine): UnhandledPolicy {
  const p = policies.get(engine);
  if (p) return p;
  return engine.config.unhandled;
}

/** What the finalization registry keeps of a task (never the Task itself). */
interface TaskFin {
  h: number;
  id: number;
  name: string;
  engine: Engine;
  failed: boolean;
  error: unknown;
  observed: boolean;
  reported: boolean;
}

function reportUnhandled(fin: TaskFin): void {
  if (fin.reported || fin.observed) return;
  fin.reported = true;
  const policy = policyOf(fin.engine);
  const err = fin.error;
  const who = { id: fin.id, name: fin.name };
  if (policy === 'ignore') return;
  if (policy === 'warn') {
    const text = describeValue(err, true);
    process.emitWarning(`unhandled error in task#${fin.id} (${fin.name}): ${text}`, {
      type: 'KorutinWarning',
      code: 'KORUTIN_UNHANDLED_TASK_ERROR',
    });
    return;
  }
  if (policy === 'throw') {
    // as Node's default for rejections: 'unhandledRejection' listeners get
    // it (with a promise of the task's outcome); without one it is thrown
    if (process.listenerCount('unhandledRejection') > 0) {
      const outcome = Promise.reject(err);
      outcome.catch(() => undefined);
      process.emit('unhandledRejection', err, outcome);
      return;
    }
    process.nextTick(() => {
      throw err;
    });
    return;
  }
  try {
    policy(err, who);
  } catch (e) {
    process.nextTick(() => {
      throw e;
    });
  }
}

/**
 * A failed task nobody joins, awaits or detaches by the time the event loop
 * has gone round once more (a setImmediate after the failure, so after the
 * microtasks and the rest of this turn) is reported: an error is never lost
 * just because no garbage collection came.
 */
function reportLater(fin: TaskFin): void {
  setImmediate(() => {
    if (!fin.observed) reportUnhandled(fin);
  });
}

/** Something a task holds (a Mutex) and gives up when the task ends. @internal */
export interface Holdable {
  ownerEnded(t: Task<any>): void;
}

const taskRegistry = new FinalizationRegistry<TaskFin>((fin) => {
  S.release(fin.h);
  if (fin.failed) reportUnhandled(fin);
});

// ------------------------------------------------------------------ tasks

/** Where a task is in its life. */
export type TaskState = 'ready' | 'running' | 'blocked' | 'done' | 'failed' | 'cancelled';

/** Options of {@link Engine.spawn}. */
export interface SpawnOptions {
  /** A name for `ko.tasks()` and error reports (default `task-<id>`). */
  name?: string;
}

/** One line of {@link tasks}. */
export interface TaskInfo {
  id: number;
  name: string;
  state: TaskState;
  /** What a blocked task waits on: `'sleep 50ms'`, `'recv channel#3'`, `'join task#2'`, `'await promise'`...; null otherwise. */
  waitingOn: string | null;
  backend: string;
}

const enum End { None = -1 }

/**
 * A task: a function running in a coroutine of its own, scheduled on the
 * event loop. Inside another task, `join()` waits for it; anywhere,
 * `await task` does (a Task is a thenable).
 */
export class Task<T = unknown> implements PromiseLike<T> {
  /** Unique in this thread; the `#N` of `'join task#N'`. */
  readonly id: number;
  /** From `spawn(..., { name })`, or `task-<id>`. */
  readonly name: string;
  /** Coroutine-local data: anything the task wants to keep (lthread's get/set_data). */
  data: unknown = undefined;
  /** @internal the core's handle */
  readonly h: number;
  /** @internal */
  co: Coroutine | null;
  /** @internal the outcome of the last wait, copied by the driver */
  wStatus = 0;
  /** @internal */
  wFired = -1;
  /** @internal */
  wValue = 0;
  /** @internal */
  end: number = End.None;
  /** @internal */
  result: unknown = undefined;
  /** @internal */
  cancelReason: unknown = undefined;
  /** @internal the deadline of its last sleep, on the scheduler's clock (µs) */
  sleepUntil = 0;
  /** @internal ko.await()'s outcome */
  awaitOk = false;
  /** @internal */
  awaitValue: unknown = undefined;
  /** @internal what {@link tasks} shows while it waits in korutin/net or compute ('read 127.0.0.1:80'); null: the core's description */
  waitLabel: string | null = null;
  /** @internal */
  readonly fin: TaskFin;
  /** @internal the task this one waits for in an untimed join (for deadlock detection) */
  joining: Task<any> | null = null;
  /** @internal what this task holds (mutexes): told when it ends */
  held: Set<Holdable> | null = null;
  private detachedFlag = false;
  private promise: Promise<T> | null = null;

  /** @internal Use `engine.spawn()`. */
  constructor(engine: Engine, fn: (...args: any[]) => T, args: unknown[], options: SpawnOptions) {
    if (typeof fn !== 'function') {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `spawn() needs a function, got ${describeGiven(fn)}`);
    }
    const h = S.spawn();
    if (h <= 0) throw new KorutinError('ERR_OUT_OF_MEMORY', 'cannot create a task: out of memory');
    this.h = h;
    this.id = io[K.IO_SERIAL];
    this.name = options.name ?? `task-${this.id}`;
    // the body holds the task only until it starts, so that a finished
    // task nobody references can be collected (and its error reported)
    let me: Task<T> | null = this;
    const body = (): T => {
      const t = me!;
      me = null;
      if (t.wStatus === K.ECANCELED) throw new CancelledError(t.cancelReason); // cancelled before it started
      const r = fn(...args);
      // a promise (an async function's result) is awaited: the task ends as it settles
      return isThenable(r) ? (awaitPromise(r) as T) : r;
    };
    try {
      this.co = engine.create(body, { name: this.name });
    } catch (e) {
      S.exit(h, K.END_ERROR);
      S.release(h);
      throw e;
    }
    this.co.rec.owner = this;
    watch(this.co);
    if (chains) joinChains(this.co.rec);
    this.fin = { h, id: this.id, name: this.name, engine, failed: false, error: undefined, observed: false, reported: false };
    tasksByH[h] = this;
    liveTasks++;
    taskRegistry.register(this, this.fin);
    kick();
  }

  /** Where the task is in its life. */
  get state(): TaskState {
    const st = S.taskInfo(this.h);
    if (st === K.READY) return 'ready';
    if (st === K.RUNNING) return 'running';
    if (st === K.BLOCKED) return 'blocked';
    const end = io[K.IO_AUX];
    return end === K.END_OK ? 'done' : end === K.END_CANCELLED ? 'cancelled' : 'failed';
  }

  /** True once the task has ended (returned, thrown or been cancelled). */
  get done(): boolean {
    return this.end !== End.None;
  }

  /**
   * Inside a task: waits until this one ends and returns its result (or
   * throws its error). With a timeout, throws KorutinError `ERR_TIMEOUT`
   * when it runs out; the task keeps running and can be joined again.
   */
  join(timeoutMs?: number): T {
    const me = self('Task.join()');
    this.fin.observed = true;
    const timeout = timeoutUs(timeoutMs, 'join()');
    if (this === me) {
      throw new KorutinError('ERR_DEADLOCK', `task#${me.id} (${me.name}) joins itself: it would wait forever; join another task, or just return`);
    }
    if (timeout < 0 && this.end === End.None) {
      // a cycle of joins without timeouts never ends: refuse the join that closes it
      const path: Task<any>[] = [];
      for (let t: Task<any> | null = this; t !== null && path.length <= liveTasks; t = t.joining) {
        path.push(t);
        if (t.joining === me) {
          const chain = [me, ...path, me].map((x) => `task#${x.id} (${x.name})`).join(' -> ');
          throw new KorutinError(
            'ERR_DEADLOCK',
            `join task#${this.id} would deadlock: ${chain} would all wait for each other forever; break the cycle (join with a timeout, or let one side end without joining the other)`,
          );
        }
      }
    }
    let st = S.join(me.h, this.h, timeout < 0 ? 0 : clock(), timeout);
    if (st === K.BLOCK) {
      if (timeout < 0) me.joining = this;
      try {
        st = suspend(me);
      } finally {
        me.joining = null;
      }
    }
    if (st === K.EINVAL) throw new KorutinError('ERR_INVALID_ARGUMENT', `join task#${this.id}: invalid join (status ${st})`);
    if (st !== K.OK) throw waitError(me, st, `join task#${this.id}`);
    if (this.end === K.END_OK) return this.result as T;
    if (this.end === K.END_CANCELLED) {
      // not ERR_CANCELLED: the joiner was not cancelled itself
      const reason = isCancelledError(this.result) ? this.result.reason : undefined;
      throw new KorutinError(
        'ERR_JOINED_CANCELLED',
        `task#${this.id} (${this.name}), which this task joined, was cancelled${reason === undefined ? '' : `: ${describeValue(reason)}`}; this task was not (the CancelledError is the cause)`,
        { cause: this.result },
      );
    }
    throw this.result;
  }

  /** Thenable: `await task` resolves with its result or rejects with its error. */
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.toPromise().then(onfulfilled, onrejected);
  }

  /** The same as `then(undefined, onrejected)`. */
  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.toPromise().catch(onrejected);
  }

  /** A Promise of the task's result. */
  toPromise(): Promise<T> {
    if (!this.promise) {
      this.fin.observed = true;
      this.promise = new Promise<T>((resolve, reject) => {
        const settle = (): void => (this.end === K.END_OK ? resolve(this.result as T) : reject(this.result));
        proxyWait((px) => S.join(px, this.h, 0, -1), settle);
      });
    }
    return this.promise;
  }

  /**
   * Nobody will join this task: if it fails, its error is reported as
   * unhandled (see {@link UnhandledPolicy}).
   */
  detach(): void {
    this.detachedFlag = true;
    if (this.fin.failed && !this.promise) reportUnhandled(this.fin);
  }

  /** True once `detach()` was called. */
  get detached(): boolean {
    return this.detachedFlag;
  }

  /**
   * Cancels the task: a {@link CancelledError} (carrying `reason`) is thrown
   * at its suspension point, or at its next one if it is running or ready;
   * its finally blocks run. A task cancelled before it started never runs.
   * Returns false when it had already ended.
   */
  cancel(reason?: unknown): boolean {
    const st = S.cancel(this.h);
    if (st !== K.OK) return false; // it had ended
    this.cancelReason = reason;
    kick();
    return true;
  }

  /** @internal */
  get [Symbol.toStringTag](): string {
    return `Task#${this.id}`;
  }

  /** @internal the driver calls this when the body has ended */
  finish(end: number, value: unknown): void {
    if (this.co) this.co.rec.owner = null;
    this.co = null;
    this.end = end;
    this.result = value;
    tasksByH[this.h] = undefined;
    liveTasks--;
    const held = this.held;
    this.held = null;
    if (held) for (const x of held) x.ownerEnded(this);
    S.exit(this.h, end);
    if (end === K.END_ERROR) {
      this.fin.failed = true;
      this.fin.error = value;
      if (this.detachedFlag && !this.promise) reportUnhandled(this.fin);
      else if (!this.fin.observed) reportLater(this.fin);
    }
  }
}

// ------------------------------------------------------------ the driver

/** Live tasks by handle. */
const tasksByH: (Task<any> | undefined)[] = [];
let liveTasks = 0;
/** Proxies (waits of plain async code) by handle: what to do when they wake. */
const proxiesByH: (((status: number, fired: number, value: number) => void) | undefined)[] = [];
const freeProxies: number[] = [];

let running: Task<any> | null = null;
/**
 * When a task blocks, the core pops the task to run after it at once
 * (sched_binding.cc, Blocked()): its handle and outcome wait here for the
 * driver, which then needs no next() call. -1: none; -2: the queue was empty.
 */
let pfH = -1;
let pfStatus = 0;
let pfFired = -1;
let pfValue = 0;
let inPass = false;
/** Tasks run (and handed the turn) in this pass, its start, and whether its budget is spent. */
let passSteps = 0;
let passStart = 0;
let passOver = false;
let passQueued = false;
let timer: NodeJS.Timeout | null = null;
let armedAt = -1;

/** A pass gives the event loop a turn after this many microseconds. */
const PASS_BUDGET_US = 10_000;

/**
 * Tasks are run in chains (see ts/coroutine.ts): a task that blocks hands
 * the turn straight to the next ready one, without going back to the pass.
 */
const chains = chainsSupported();

/** Counters of this thread's scheduler (see {@link schedulerStats}). */
const stats = { passes: 0, resumes: 0, handOffs: 0 };

/**
 * How the scheduler has run tasks so far on this thread: event-loop passes,
 * resumes from a pass, and hand-offs (a blocking task passing the turn
 * straight to the next). @internal (tests, benchmarks)
 */
export function schedulerStats(): { passes: number; resumes: number; handOffs: number } {
  return { ...stats };
}

/** Every 64 steps of a pass: expire timers, see whether the budget is spent. Returns whether timers woke tasks. */
function passCheck(): boolean {
  if ((++passSteps & 63) !== 0) return false;
  const now = clock();
  const woke = S.expire(now) > 0;
  if (now - passStart > PASS_BUDGET_US) passOver = true;
  return woke;
}

function queuedPass(): void {
  passQueued = false;
  runPass();
}

function onTimer(): void {
  timer = null;
  armedAt = -1;
  runPass();
}

/** Keeps the Node timer on the earliest deadline. */
function arm(): void {
  const d = S.nextDeadline();
  if (d < 0) {
    if (timer) {
      clearTimeout(timer);
      timer = null;
      armedAt = -1;
    }
    return;
  }
  if (timer && armedAt <= d) return; // it fires first, then re-arms
  if (timer) clearTimeout(timer);
  armedAt = d;
  timer = setTimeout(onTimer, Math.max(0, Math.ceil((d - clock()) / 1000)));
}

/**
 * After an operation that may have woken tasks or set a deadline: outside
 * a pass, make sure one runs (and the timer is right). @internal
 */
export function kick(): void {
  if (inPass) return;
  if (io[K.IO_READY] > 0 && !passQueued) {
    passQueued = true;
    setImmediate(queuedPass);
  }
  arm();
}

/**
 * A wake from a promise reaction (ko.await): the woken task runs now, in
 * this microtask, where a plain `await`'s continuation would run, not one
 * event-loop turn later. Inside a pass or a task, the pass picks it up.
 */
function wakeFromReaction(): void {
  if (inPass || running !== null) return kick();
  runPass();
}

function runPass(): void {
  if (inPass) return;
  inPass = true;
  stats.passes++;
  passStart = clock();
  passSteps = 0;
  passOver = false;
  try {
    S.expire(passStart);
    while (!passOver) {
      let h: number;
      let status: number;
      let fired: number;
      let value: number;
      if (pfH >= 0) {
        h = pfH;
        status = pfStatus;
        fired = pfFired;
        value = pfValue;
        pfH = -1;
      } else if (pfH === -2) {
        pfH = -1;
        break;
      } else {
        h = S.next();
        if (h < 0) break;
        status = io[K.IO_STATUS];
        fired = io[K.IO_FIRED];
        value = io[K.IO_VALUE];
      }
      const t = tasksByH[h];
      if (t !== undefined) {
        t.wStatus = status;
        t.wFired = fired;
        t.wValue = value;
        step(t);
      } else {
        const settle = proxiesByH[h];
        if (settle) {
          proxiesByH[h] = undefined;
          freeProxies.push(h);
          settle(status, fired, value);
        }
      }
      if (passCheck() && pfH === -2) pfH = -1; // the queue is not empty any more
    }
  } finally {
    if (pfH >= 0) S.unnext(pfH); // popped early but not run: back to the head
    pfH = -1;
    inPass = false;
  }
  if (io[K.IO_READY] > 0 && !passQueued) {
    passQueued = true;
    setImmediate(queuedPass);
  }
  arm();
}

function step(t: Task<any>): void {
  stats.resumes++;
  if (!chains) return stepAlone(t);
  running = t;
  const last = runChain(t.co!.rec);
  running = null;
  if (last.out === Out.Yield) return;
  const lt = last.owner as Task<any>;
  const v = last.outValue;
  last.outValue = undefined;
  if (last.out === Out.Return) lt.finish(K.END_OK, v);
  else lt.finish(isCancelledError(v) ? K.END_CANCELLED : K.END_ERROR, v);
}

/** Where chains cannot work: the task runs alone, and comes back here. */
function stepAlone(t: Task<any>): void {
  running = t;
  let r: IteratorResult<unknown, unknown>;
  try {
    r = t.co!.resume();
  } catch (e) {
    running = null;
    t.finish(isCancelledError(e) ? K.END_CANCELLED : K.END_ERROR, e);
    return;
  }
  running = null;
  if (r.done) t.finish(K.END_OK, r.value);
}

/**
 * The task whose coroutine is running now, for a blocking call; throws
 * ERR_NOT_IN_COROUTINE anywhere else. @internal
 */
export function self(what: string): Task<any> {
  const rec = currentRecord();
  const t = rec?.owner;
  if (t instanceof Task) return t;
  throw new KorutinError(
    'ERR_NOT_IN_COROUTINE',
    rec
      ? `${what} blocks, and must be called from a task's own coroutine, not from a coroutine it created`
      : `${what} blocks, and must be called inside a task (started with ko.spawn()); outside one, use the async variant or await`,
  );
}

/** Suspends the calling task until the core wakes it; returns the outcome. @internal */
export function suspend(t: Task<any>): number {
  const next = io[K.IO_NEXT];
  const status = io[K.IO_STATUS];
  const fired = io[K.IO_FIRED];
  const value = io[K.IO_VALUE];
  const woke = inPass && passCheck();
  if (next >= 0) {
    const nt = tasksByH[next];
    if (nt !== undefined && nt !== t && !passOver && inPass && canHandOff()) {
      // straight to the next task; back here when t is resumed
      nt.wStatus = status;
      nt.wFired = fired;
      nt.wValue = value;
      running = nt;
      stats.handOffs++;
      try {
        handOff(nt.co!.rec);
      } catch (e) {
        // it never left (a broken invariant): nt goes back to the head of the queue
        running = t;
        stats.handOffs--;
        S.unnext(next);
        throw e;
      }
      running = t;
      return t.wStatus;
    }
    pfStatus = status;
    pfFired = fired;
    pfValue = value;
    pfH = next;
  } else {
    pfH = woke ? -1 : -2;
  }
  yieldValue();
  return t.wStatus;
}

/** The error a failed wait throws. @internal */
export function waitError(t: Task<any> | null, st: number, what: string): Error {
  if (st === K.ETIMEDOUT) return new KorutinError('ERR_TIMEOUT', `${what} timed out`);
  if (st === K.ECANCELED) return new CancelledError(t?.cancelReason);
  if (st === K.ECLOSED) return new KorutinError('ERR_CHANNEL_CLOSED', `${what}: the channel is closed`);
  if (st === K.ENOMEM) return new KorutinError('ERR_OUT_OF_MEMORY', `${what}: out of memory`);
  return new KorutinError('ERR_INVALID_ARGUMENT', `${what}: invalid operation (status ${st})`);
}

/**
 * Runs a core operation for plain async code: `op(proxy)` returns a status;
 * if it blocks, `settle` is called when the proxy wakes; otherwise at once.
 * @internal
 */
export function proxyWait(
  op: (proxy: number) => number,
  settle: (status: number, fired: number, value: number) => void,
): void {
  let h = freeProxies.pop();
  if (h === undefined) {
    h = S.proxy();
    if (h <= 0) throw new KorutinError('ERR_OUT_OF_MEMORY', 'out of memory');
  }
  const st = op(h);
  if (st === K.BLOCK) {
    proxiesByH[h] = settle;
    kick();
    return;
  }
  freeProxies.push(h);
  const fired = io[K.IO_FIRED];
  const value = io[K.IO_VALUE];
  kick();
  settle(st, fired, value);
}

// -------------------------------------------------------- the operations

/** The running task (also inside coroutines it created), or undefined. */
export function current(): Task<any> | undefined {
  return running ?? undefined;
}

/**
 * Sleeps for `ms` milliseconds (only this task waits). Returns true when
 * {@link wakeup} ended the sleep early.
 */
export function sleep(ms: number): boolean {
  const t = self('sleep()');
  const dur = timeoutUs(ms, 'sleep()');
  if (dur < 0) throw new KorutinError('ERR_INVALID_ARGUMENT', 'sleep(): give a finite number of milliseconds');
  const now = clock();
  t.sleepUntil = now + dur;
  let st = S.sleep(t.h, now, dur);
  if (st === K.BLOCK) st = suspend(t);
  if (st === K.WOKEN) return true;
  if (st !== K.OK) throw waitError(t, st, 'sleep()');
  return false;
}

/** Ends a task's sleep early; returns false if it was not sleeping. */
export function wakeup(task: Task<any>): boolean {
  if (!(task instanceof Task)) throw new KorutinError('ERR_INVALID_ARGUMENT', 'wakeup() needs a Task');
  const st = S.wakeup(task.h);
  kick();
  return st === K.OK;
}

/** Lets every other ready task run once before this one continues. */
export function yieldNow(): void {
  const t = self('yieldNow()');
  let st = S.yieldNow(t.h);
  if (st === K.BLOCK) st = suspend(t);
  if (st !== K.OK) throw waitError(t, st, 'yieldNow()');
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Waits for a promise; only this task waits. Returns its value, or throws
 * its rejection here. With a timeout, throws `ERR_TIMEOUT` when it runs out.
 */
/** A promise awaited by task `t` (wait number `seq`) settled: wake it, unless that wait already ended (timeout, cancel). */
function settleAwait(t: Task<any>, seq: number, ok: boolean, v: unknown): void {
  if (S.wakeExternal(t.h, seq, K.OK) !== K.OK) return;
  t.awaitOk = ok;
  t.awaitValue = v;
  wakeFromReaction();
}

export function awaitPromise<T>(promise: PromiseLike<T> | T, timeoutMs?: number): T {
  const t = self('await()');
  const timeout = timeoutUs(timeoutMs, 'await()');
  if (!isThenable(promise)) return promise as T;
  // adopt it first: nothing may throw between blocking and suspending
  const p = Promise.resolve(promise);
  let st = S.blockExternal(t.h, timeout < 0 ? 0 : clock(), timeout, K.EXT_AWAIT);
  if (st === K.BLOCK) {
    const seq = io[K.IO_SEQ];
    p.then(
      (v) => settleAwait(t, seq, true, v),
      (e) => settleAwait(t, seq, false, e),
    );
    st = suspend(t);
  }
  if (st !== K.OK) throw waitError(t, st, 'await()');
  const v = t.awaitValue;
  t.awaitValue = undefined;
  if (!t.awaitOk) throw v;
  return v as T;
}

/** A select case that fires after `ms` milliseconds (counted from the select call). */
export interface AfterCase {
  readonly kind: 'after';
  readonly ms: number;
}

/** A select case firing after `ms` milliseconds. */
export function after(ms: number): AfterCase {
  const us = timeoutUs(ms, 'after()');
  if (us < 0) throw new KorutinError('ERR_INVALID_ARGUMENT', 'after(): give a finite number of milliseconds');
  return { kind: 'after', ms };
}

/** Every task not ended yet (all engines), with what each waits on. */
export function tasks(): TaskInfo[] {
  const now = clock();
  const out: TaskInfo[] = [];
  for (const t of tasksByH) {
    if (!t) continue;
    const state = t.state;
    out.push({
      id: t.id,
      name: t.name,
      state,
      waitingOn: state === 'blocked' ? t.waitLabel ?? S.describe(t.h, now) : null,
      backend: t.fin.engine.backend,
    });
  }
  return out.sort((a, b) => a.id - b.id);
}

/** How many tasks have not ended. */
export function liveTaskCount(): number {
  return liveTasks;
}

/**
 * Starts `fn(...args)` as a task (it starts soon, on the event loop). When
 * the last argument is a plain object whose only keys are spawn options
 * (`name`) and `fn` declares fewer parameters than were passed, it is taken
 * as the options. @internal (use `engine.spawn`)
 */
export function spawnTask<R>(engine: Engine, fn: (...args: any[]) => R, args: unknown[]): Task<R> {
  let options: SpawnOptions = {};
  const last = args[args.length - 1];
  if (args.length > 0 && args.length > (typeof fn === 'function' ? fn.length : 0) && isOptions(last)) {
    checkOptions(last, 'spawn(fn, ...args, options)');
    options = last as SpawnOptions;
    args = args.slice(0, -1);
  }
  return new Task<R>(engine, fn, args, options);
}

/** Starts `fn(...args)` as a task with explicit options. @internal */
export function spawnTaskWith<R>(engine: Engine, options: SpawnOptions, fn: (...args: any[]) => R, args: unknown[]): Task<R> {
  checkOptions(options, 'spawnWith(options, fn, ...args)');
  return new Task<R>(engine, fn, args, options ?? {});
}

/** A plain object whose only key is `name` (of any type: a wrong one is refused by checkOptions). */
function isOptions(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  try {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    const keys = Object.keys(v);
    return keys.length > 0 && keys.every((k) => k === 'name');
  } catch {
    return false; // a Proxy whose traps throw: an argument, not options
  }
}
