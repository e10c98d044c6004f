/**
 * ts/sched/driver.ts - the JS driver: passes, suspending and waking tasks (a hand-off is the binding's, inside the blocking call).
 * Part of the scheduler (ts/scheduler.ts says how the parts fit). @internal
 */
import { executionAsyncId } from 'async_hooks';
import { chainEnded, CoroutineRecord, currentRecord, Out, yieldValue } from '../coroutine';
import { CancelledError, isCancelledError, KorutinError } from '../errors';
import { native } from '../native';
import { ERRNO_CODE, K } from '../vocab';
import { S, clock, io, outcome, outcomeOf, outcomeRoom } from './binding';
import { Task, tasksByH } from './task';

/** Proxies (waits of plain async code) by handle: what to do when they wake. */
const proxiesByH: (((status: number, fired: number, value: number) => void) | undefined)[] = [];
const freeProxies: number[] = [];

/** The task running now, or null. @internal */
export let running: Task<any> | null = null;
/**
 * Passes are the binding's (run_pass, on the core's ks_pass_run: who runs
 * next, the pass's budget, timers); this driver starts them from the event
 * loop and does what only JavaScript can between its tasks.
 */
let inPass = false;
let passQueued = false;
let timer: NodeJS.Timeout | null = null;
let armedAt = -1;


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

function queuedPass(): void {
  passQueued = false;
  runPass();
}

function onTimer(): void {
  timer = null;
  armedAt = -1;
  runPass();
}

/** Keeps the Node timer on the earliest deadline (none without a call when io[TIMED] is 0). */
function arm(): void {
  const d = io[K.IO_TIMED] > 0 ? S.next_deadline() : -1;
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
 * A wake from a promise reaction (ko.await) may run the woken task now, in
 * this microtask, where a plain `await`'s continuation would run, not one
 * event-loop turn later: outside a pass and a task. Inside one, the pass
 * picks it up (kick()). @internal
 */
export function canRunNow(): boolean {
  return !inPass && running === null;
}

/**
 * Ends task h's external wait `seq` and runs a pass now, in one call (a
 * promise reaction, outside a pass and a task: see canRunNow). @internal
 */
export function runPassWaking(h: number, seq: number): void {
  runPass(h, seq);
}

/**
 * A pass: the binding runs the tasks the core pops, each in a chain, and
 * comes back here only for what JavaScript must do before it goes on (a
 * task ended, a proxy woke, a task runs alone).
 */
function runPass(wakeH = 0, wakeSeq = 0): void {
  if (inPass) return;
  inPass = true;
  stats.passes++;
  try {
    for (let begin = 1; ; begin = 0) {
      const h = S.run_pass(begin, wakeH, wakeSeq);
      wakeH = 0;
      running = null;
      stats.resumes += io[K.IO_RUNS];
      if (h < 0) break;
      if (h === 0) {
        ended(chainEnded());
        continue;
      }
      const t = tasksByH[h];
      if (t !== undefined) {
        stats.resumes++;
        stepAlone(t); // it reads its outcome itself (see wake)
        continue;
      }
      const settle = proxiesByH[h];
      if (settle) {
        proxiesByH[h] = undefined;
        freeProxies.push(h);
        const at = outcomeOf(h);
        settle(outcome[at + K.OUT_STATUS], outcome[at + K.OUT_FIRED], outcome[at + K.OUT_VALUE]);
      }
    }
  } finally {
    running = null;
    inPass = false;
  }
  if (io[K.IO_READY] > 0 && !passQueued) {
    passQueued = true;
    setImmediate(queuedPass);
  }
  arm();
}

/** A task's coroutine ended (returned or threw), last of its chain: the task ends so. */
function ended(last: CoroutineRecord): void {
  const t = last.owner as Task<any>;
  const v = last.outValue;
  last.outValue = undefined;
  if (last.out === Out.Return) t.finish(K.END_OK, v);
  else t.finish(isCancelledError(v) ? K.END_CANCELLED : K.END_ERROR, v);
}

/**
 * Where chains cannot work (async contexts cannot move here; asked on
 * first use, at spawn, so that a Worker that only loads korutin never
 * probes): the task runs alone, and comes back here.
 */
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
  if (t instanceof Task) {
    // a block may hand the turn straight on only from the task's base async context
    io[K.IO_HAND] = executionAsyncId() === rec!.baseAsyncId ? 1 : 0;
    return t;
  }
  throw new KorutinError(
    'ERR_NOT_IN_COROUTINE',
    rec
      ? `${what} blocks, and must be called from a task's own coroutine, not from a coroutine it created`
      : `${what} blocks, and must be called inside a task (started with ko.spawn()); outside one, use the async variant or await`,
  );
}

/**
 * {@link self}, for an operation that starts work before it blocks
 * (compute()): refused at once (ERR_UNSAFE_YIELD) where the task may not
 * suspend, as the addon decides. Every other blocking operation is refused
 * by the core's binding when it would block (K.EUNSAFE, see waitError),
 * before anything has changed. @internal
 */
export function blocker(what: string): Task<any> {
  const t = self(what);
  const refused = native.suspend_refusal();
  if (refused) throw refused;
  return t;
}

/**
 * After a task operation returned K.BLOCK: suspends the calling task until
 * the core wakes it, unless the binding has already suspended it inside the
 * op and `t` runs again (io[NEXT] NEXT_HANDED: it handed the turn straight
 * to the next task; NEXT_PASSED: back to the pass). Either way `t` then
 * finds its outcome in its own record (the binding wrote it when the core
 * popped `t`); returns its status, and {@link wokeFired} and
 * {@link wokeValue} the rest. @internal
 */
export function suspend(t: Task<any>): number {
  const next = io[K.IO_NEXT];
  if (next === K.NEXT_HANDED) stats.handOffs++;
  else if (next !== K.NEXT_PASSED) yieldValue(); // back to the pass
  return wake(t);
}

/** `t` runs again: it is the running task; its outcome is in its record. */
function wake(t: Task<any>): number {
  running = t;
  return wokeStatus(t);
}

/** Task `t`'s coroutine is entered for the first time: it is the running task. @internal */
export function entered(t: Task<any>): void {
  running = t;
}

/** The status of the last wait of `t` (what it was popped with: cancelled before it started, for one). @internal */
export function wokeStatus(t: Task<any>): number {
  return outcome[outcomeOf(t.h) + K.OUT_STATUS];
}

/** The case of a select that fired, after {@link suspend} returned. @internal */
export function wokeFired(t: Task<any>): number {
  return outcome[outcomeOf(t.h) + K.OUT_FIRED];
}

/** The wait number of running task `t`: what its next block_external() waits with, until it is woken. @internal */
export function waitSeq(t: Task<any>): number {
  return outcome[outcomeOf(t.h) + K.OUT_SEQ] >>> 0;
}

/** The value (a slot) the wait received, after {@link suspend} returned. @internal */
export function wokeValue(t: Task<any>): number {
  return outcome[outcomeOf(t.h) + K.OUT_VALUE];
}

/** The error a failed wait throws. @internal */
export function waitError(t: Task<any> | null, st: number, what: string): Error {
  if (st === K.ECANCELED) return new CancelledError(t?.cancelReason);
  // refused where the task may not suspend: the addon says why
  if (st === K.EUNSAFE) return native.suspend_refusal() ?? new KorutinError('ERR_UNSAFE_YIELD', `${what}: the task may not suspend here`);
  const code = ERRNO_CODE.get(st);
  if (st === K.ETIMEDOUT && code) return new KorutinError(code, `${what} timed out`);
  if (st === K.ECLOSED && code) return new KorutinError(code, `${what}: the channel is closed`);
  if (st === K.ENOMEM && code) return new KorutinError(code, `${what}: out of memory`);
  // another refusal (EINVAL, EBUSY: a second joiner...) is a misuse of the call
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
    outcomeRoom(h);
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

/** The running task (also inside coroutines it created), or undefined. */
export function current(): Task<any> | undefined {
  return running ?? undefined;
}
