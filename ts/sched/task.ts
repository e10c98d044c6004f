/**
 * ts/sched/task.ts - Task: a coroutine the scheduler runs, its life and its result.
 * Part of the scheduler (ts/scheduler.ts says how the parts fit). @internal
 */
import { chainsSupported, Coroutine, joinChains, watch } from '../coroutine';
import { CancelledError, isCancelledError, KorutinError } from '../errors';
import { describeGiven, describeValue } from '../format';
import { END_STATES, K, TASK_STATES } from '../vocab';
import type { Engine } from '../engine';
import { S, clock, io, outcomeRoom, timeoutUs } from './binding';
import { entered, self, kick, proxyWait, suspend, waitError, wokeStatus } from './driver';
import { awaitPromise, isThenable } from './ops';
import { Holdable, TaskFin, reportLater, reportUnhandled, taskRegistry } from './unhandled';

/** Live tasks by handle. @internal */
export const tasksByH: (Task<any> | undefined)[] = [];
let liveTasks = 0;

/** Where a task is in its life. */
export type TaskState = 'ready' | 'running' | 'blocked' | 'done' | 'failed' | 'cancelled';
// The core's words (KS_STATE_MAP, KS_END_MAP in sched/core.h) are these: checked at compile time.
void ([...TASK_STATES, ...END_STATES] satisfies readonly TaskState[]);

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
 * A task's pair of ko.await() reactions (see ops.ts awaitPromise). `live`
 * false: registered by an await that ended otherwise (a timeout, a
 * cancel), so a settle that comes later does nothing. @internal
 */
export interface AwaitReactions {
  live: boolean;
  ok(v: unknown): void;
  err(e: unknown): void;
}

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
  /** @internal */
  end: number = End.None;
  /** @internal */
  result: unknown = undefined;
  /** @internal */
  cancelReason: unknown = undefined;
  /** @internal the deadline of its last sleep, on the scheduler's clock (µs) */
  sleepUntil = 0;
  /** @internal the wait number (unsigned) of the ko.await() under way, -1: none */
  awaitSeq = -1;
  /** @internal its ko.await() reactions, reused while each await ends by its own (see ops.ts); null: none yet */
  awaitReactions: AwaitReactions | null = null;
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
    outcomeRoom(h);
    this.name = options.name ?? `task-${this.id}`;
    // the body holds the task only until it starts, so that a finished
    // task nobody references can be collected (and its error reported)
    let me: Task<T> | null = this;
    const body = (): T => {
      const t = me!;
      me = null;
      entered(t);
      if (wokeStatus(t) === K.ECANCELED) throw new CancelledError(t.cancelReason); // cancelled before it started
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
    if (chainsSupported()) {
      joinChains(this.co.rec);
      S.task_bind(h, this.co.rec.no);
    }
    this.fin = { h, id: this.id, name: this.name, engine, failed: false, error: undefined, observed: false, reported: false };
    tasksByH[h] = this;
    liveTasks++;
    taskRegistry.register(this, this.fin);
    kick();
  }

  /** Where the task is in its life. */
  get state(): TaskState {
    const st = S.task_info(this.h);
    return st === K.DONE ? END_STATES[io[K.IO_AUX]] : TASK_STATES[st];
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
    // what it waits for, for the deadlock check of other joins (the join may hand the turn on before it returns)
    if (timeout < 0) me.joining = this;
    let st: number;
    try {
      st = S.join(me.h, this.h, timeout < 0 ? 0 : clock(), timeout);
      if (st === K.BLOCK) st = suspend(me);
    } finally {
      me.joining = null;
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

/** How many tasks have not ended. */
export function liveTaskCount(): number {
  return liveTasks;
}
