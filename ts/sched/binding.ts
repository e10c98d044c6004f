/**
 * ts/sched/binding.ts - the scheduler core's binding, the shared io buffers, the clock and the slot table of channel values.
 * Part of the scheduler (ts/scheduler.ts says how the parts fit). @internal
 */
import { performance } from 'perf_hooks';
import { KorutinError } from '../errors';
import { describeGiven } from '../format';
import { native } from '../native';
import { K } from '../vocab';

/**
 * The scheduler core, as engine/node/sched_binding.cc exposes it: each
 * function is named as the core function it calls, without `ks_`. The
 * numbers it speaks are {@link K}'s. @internal
 */
export interface SchedBinding {
  /** Takes its arrays as JS values, and args[0] = {@link clock}(), from which the core's own clock (for its passes' budget) is set. */
  set_buffers(args: Float64Array, io: Int32Array, cases: Float64Array, outcome: Int32Array): number;
  spawn(): number;
  proxy(): number;
  release(h: number): number;
  /**
   * Runs tasks of the pass (the core decides who: ks_pass_next), each in a
   * chain, until JS must act: returns a proxy's handle that woke, or a
   * task's that runs alone (its outcome in its record); 0: a task's
   * coroutine ended; -1: the pass is over. io[RUNS]: the tasks it ran.
   * `begin` 1: a new pass; `wakeH` > 0: first, task wakeH's external
   * wait `wakeSeq` ends (as wake_external with K.OK).
   */
  run_pass(begin: number, wakeH: number, wakeSeq: number): number;
  exit(h: number, end: number): number;
  /** Task `h` runs in coroutine `no` (ts/coroutine.ts's number), which a blocked task may hand the turn to. */
  task_bind(h: number, no: number): number;
  cancel(h: number): number;
  wakeup(h: number): number;
  yield(h: number): number;
  sleep(h: number, now: number, dur: number): number;
  join(h: number, target: number, now: number, timeout: number): number;
  /** `armed` 1: the wake is arranged already (with the task's OUT_SEQ), so the task suspends in this call. */
  block_external(h: number, now: number, timeout: number, kind: number, armed: number): number;
  wake_external(h: number, seq: number, status: number): number;
  next_deadline(): number;
  task_info(h: number): number;
  describe(h: number, now: number): string;
  live_count(): number;
  chan_new(cap: number): number;
  chan_send(h: number, ch: number, slot: number, now: number, timeout: number): number;
  chan_recv(h: number, ch: number, now: number, timeout: number): number;
  chan_try_send(ch: number, slot: number): number;
  chan_try_recv(ch: number): number;
  chan_close(ch: number): number;
  chan_info(ch: number): number;
  select(h: number, n: number, now: number, timeout: number, nonblock: number): number;
  mutex_new(): number;
  mutex_lock(h: number, m: number, now: number, timeout: number): number;
  mutex_trylock(h: number, m: number): number;
  mutex_unlock(h: number, m: number): number;
  mutex_info(m: number): number;
  cond_new(): number;
  cond_wait(h: number, c: number, m: number, now: number, timeout: number): number;
  cond_signal(c: number): number;
  cond_broadcast(c: number): number;
  sem_new(n: number): number;
  sem_acquire(h: number, s: number, now: number, timeout: number): number;
  sem_try_acquire(s: number): number;
  sem_release(s: number, n: number): number;
  sem_count(s: number): number;
  wg_new(): number;
  wg_add(w: number, d: number): number;
  wg_wait(h: number, w: number, now: number, timeout: number): number;
  wg_count(w: number): number;
  obj_free(h: number): number;
}

type Op = (...a: unknown[]) => unknown;
const binding = (native as unknown as { sched: Record<string, Op> }).sched;

/**
 * The arguments of the binding call under way: its functions (set_buffers
 * aside) take their numbers from here, in order, and are called with none,
 * so that no N-API argument is converted (see sched_binding.cc).
 */
const args = new Float64Array(K.ARGS_SIZE);

/** Binding function `f`, called with its (up to ARGS_SIZE) numbers in {@link args} (one missing is NaN: the binding reads 0). */
function viaArgs(f: Op): Op {
  return (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => {
    args[0] = a as number;
    args[1] = b as number;
    args[2] = c as number;
    args[3] = d as number;
    args[4] = e as number;
    return f();
  };
}

const wrapped: Record<string, Op> = {};
for (const name of Object.keys(binding)) wrapped[name] = name === 'set_buffers' ? binding[name] : viaArgs(binding[name]);
/**
 * The binding's functions, in a plain object copied from `wrapped`: built
 * property by property, an object is left in V8's slow (dictionary) mode;
 * this copy has fast properties. @internal
 */
export const S = { ...wrapped } as unknown as SchedBinding;
/** Extra results of the core's calls (see sched_binding.cc). @internal */
export const io = new Int32Array(K.IO_SIZE);
/** Select cases: [op, handle, value] each. @internal */
export let caseBuf = new Float64Array(3 * 256);
/**
 * Each task's (and proxy's) record, at handle * OUT_SIZE: the outcome of its
 * last wait (OUT_STATUS, OUT_FIRED, OUT_VALUE), written by the binding when
 * the core pops it to run, read by the task itself (see outcomeOf). @internal
 */
export let outcome = new Int32Array(K.OUT_SIZE * 256);
setBuffers();

/** Hands the shared arrays to the binding (again when one has grown). */
function setBuffers(): void {
  args[0] = clock();
  S.set_buffers(args, io, caseBuf, outcome);
}

/** Makes room for n select cases. @internal */
export function caseRoom(n: number): Float64Array {
  if (3 * n > caseBuf.length) {
    caseBuf = new Float64Array(3 * Math.max(n, 2 * (caseBuf.length / 3)));
    setBuffers();
  }
  return caseBuf;
}

/** Makes room for the record of handle h (a new task or proxy), before it can be popped. @internal */
export function outcomeRoom(h: number): void {
  if (K.OUT_SIZE * (h + 1) <= outcome.length) return;
  const more = new Int32Array(Math.max(K.OUT_SIZE * (h + 1), 2 * outcome.length));
  more.set(outcome);
  outcome = more;
  setBuffers();
}

/** Where the record of handle h starts in {@link outcome}. @internal */
export function outcomeOf(h: number): number {
  return h * K.OUT_SIZE;
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
