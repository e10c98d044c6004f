/**
 * ts/sched/ops.ts - the operations tasks call: sleep, wakeup, yieldNow, await, after, listing tasks, spawning.
 * Part of the scheduler (ts/scheduler.ts says how the parts fit). @internal
 */
import { checkOptions } from '../coroutine';
import { KorutinError } from '../errors';
import { K } from '../vocab';
import type { Engine } from '../engine';
import { S, clock, timeoutUs } from './binding';
import { self, canRunNow, kick, runPassWaking, suspend, waitError, waitSeq } from './driver';
import { AwaitReactions, SpawnOptions, Task, TaskInfo, tasksByH } from './task';

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
  let st = S.yield(t.h);
  if (st === K.BLOCK) st = suspend(t);
  if (st !== K.OK) throw waitError(t, st, 'yieldNow()');
}

/** @internal */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Task `t`'s ko.await() reactions: one pair serves await after await (no
 * closures made per await) as long as each await ends by its own reaction,
 * so that at most one of them is pending at a time; an await that ends
 * otherwise drops its pair (see awaitPromise).
 */
function reactionsOf(t: Task<any>): AwaitReactions {
  let r = t.awaitReactions;
  if (r === null) {
    const made: AwaitReactions = {
      live: true,
      ok: (v: unknown) => settleAwait(t, made, true, v),
      err: (e: unknown) => settleAwait(t, made, false, e),
    };
    r = t.awaitReactions = made;
  }
  return r;
}

/** Task `t`'s await ends other than by reaction `r`, which may still come: the pair is done with. */
function dropReactions(t: Task<any>, r: AwaitReactions): void {
  r.live = false;
  t.awaitReactions = null;
  t.awaitSeq = -1;
}

/** A promise awaited by task `t` settled: wake it, unless that await already ended (timeout, cancel). */
function settleAwait(t: Task<any>, r: AwaitReactions, ok: boolean, v: unknown): void {
  const seq = t.awaitSeq;
  if (!r.live || seq < 0) return; // it has gone on
  t.awaitSeq = -1;
  t.awaitOk = ok;
  t.awaitValue = v;
  // where a plain await's continuation would run: now (the pass's first
  // call makes the wake), not a turn later
  if (canRunNow()) runPassWaking(t.h, seq);
  else {
    S.wake_external(t.h, seq, K.OK);
    kick();
  }
}

/**
 * Waits for a promise; only this task waits. Returns its value, or throws
 * its rejection here. With a timeout, throws `ERR_TIMEOUT` when it runs out.
 */
export function awaitPromise<T>(promise: PromiseLike<T> | T, timeoutMs?: number): T {
  const t = self('await()');
  const timeout = timeoutUs(timeoutMs, 'await()');
  if (!isThenable(promise)) return promise as T;
  // the wake is arranged before the task blocks, with the number its wait
  // will have, so that it suspends inside block_external (and nothing may
  // throw between blocking and suspending)
  const p = Promise.resolve(promise);
  const r = reactionsOf(t);
  t.awaitSeq = waitSeq(t);
  try {
    p.then(r.ok, r.err);
  } catch (e) {
    // a then() that throws (the promise's own, or a replaced one): nothing blocked
    dropReactions(t, r);
    throw e;
  }
  let st = S.block_external(t.h, timeout < 0 ? 0 : clock(), timeout, K.EXT_AWAIT, 1);
  if (st === K.BLOCK) st = suspend(t);
  if (st !== K.OK) {
    // it timed out, was cancelled or did not block (a settle that came
    // first is dropped)
    dropReactions(t, r);
    t.awaitValue = undefined;
    throw waitError(t, st, 'await()');
  }
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
