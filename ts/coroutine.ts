/**
 * Coroutines whose bodies are plain JavaScript functions, running on their
 * own native stacks. Values and exceptions cross here; the addon switches
 * stacks and owns each coroutine's state, which one runs, and whether it may
 * suspend.
 */
import { AsyncResource, executionAsyncId, executionAsyncResource, triggerAsyncId } from 'async_hooks';
import * as path from 'path';
import * as vm from 'vm';
import { KorutinError, fail } from './errors';
import { describeGiven } from './format';
import { native } from './native';
import { CORO_STATES, K } from './vocab';

/** Where a coroutine is in its life. */
export type CoroutineState = 'created' | 'suspended' | 'running' | 'normal' | 'done';
/**
 * The words of the states the addon reports (status()): the engine's
 * (korutin.h's KO_STATE_MAP) and, for a coroutine never resumed, 'created'.
 */
const STATE_WORDS: readonly CoroutineState[] = Object.assign([...CORO_STATES] as CoroutineState[], { [K.JS_CREATED]: 'created' });

const enum Sig { Next, Throw, Return, Probe }
/** How a coroutine last came back to its resumer. @internal */
export const enum Out { Yield, Return, Throw }

/**
 * What a coroutine and its body share. The body's closure holds this record,
 * never the public {@link Coroutine}, so an abandoned coroutine can be
 * collected and unwound. @internal
 */
export interface CoroutineRecord {
  /** Whether it holds a native coroutine (number `no`): from creation until it finishes. */
  native: boolean;
  /** In the abandoned-coroutine registry (see {@link watch}); the record is its own unregister token. */
  watched: boolean;
  /** The body, until it starts. */
  fn: ((arg: unknown) => unknown) | null;
  /** The korutin/fibers state of a fiber's coroutine. */
  fiber: unknown;
  sig: Sig;
  sigValue: unknown;
  out: Out;
  outValue: unknown;
  /**
   * The public object while a resume() of it is under way, else null. Never
   * a WeakRef: V8 keeps a WeakRef's target alive to the end of the current
   * job, so coroutines created and dropped in one synchronous loop could not
   * be collected until the loop ended, and then no GC came.
   */
  self: Coroutine<any, any, any> | null;
  /** Per-coroutine data, set by the scheduler. */
  owner: unknown;
  /** The coroutine's own async context: entered on every resume, so that
   * AsyncLocalStorage state set inside it stays with it. */
  resource: AsyncResource;
  /** The async id on top of Node's stack when it was last resumed: what it must leave there. */
  baseAsyncId: number;
  /** The addon knows its async context (`resource`) and enters it natively on resume (resume_scoped). */
  scoped: boolean;
  /** The native coroutine's number, which the switch functions take. */
  no: number;
  /** Its slot in the addon's table (the number's low bits): its index in {@link live}. */
  slot: number;
}

/** Thrown inside a coroutine by `return()`: unwinds it, running `finally` blocks. */
class ReturnSignal {
  constructor(readonly rec: CoroutineRecord, readonly value: unknown) {
    returnSignals.add(this);
  }
}

const returnSignals = new WeakSet<object>();

/**
 * Whether `e` is the ReturnSignal unwinding `rec`. Runs none of the thrown
 * value's code: `instanceof` would call a Proxy's getPrototypeOf trap, and
 * a revoked Proxy's throws.
 */
function isReturnOf(e: unknown, rec: CoroutineRecord): boolean {
  return typeof e === 'object' && e !== null && returnSignals.has(e) && (e as ReturnSignal).rec === rec;
}

// Which coroutine runs, who resumed whom, and each one's state are the
// addon's (the engine's records and the bridge's chains); JavaScript asks.
// The addon shows the running coroutine's slot in this view on every
// switch, so that reading it costs no call.
const view = new Int32Array(K.VIEW_SIZE);
native.set_view(view);
const SLOTS = 2 ** K.SLOT_BITS;

/**
 * The records of this thread's coroutines that run now (or wait on one they
 * resumed), by slot: set by whoever switches into one (and, for a task's,
 * from the start: see joinChains), set again by the coroutine itself when
 * it wakes, cleared when it yields or ends, so that nothing here keeps a
 * suspended coroutine from being collected (a task's is held by its
 * scheduler anyway). Which of them runs is the view's.
 */
const live: (CoroutineRecord | undefined)[] = [];

/**
 * The running coroutine's record, or undefined. Never `live[-1]`: an index
 * below zero is a property name to V8, looked up the slow way.
 */
function topOfRunning(): CoroutineRecord | undefined {
  const slot = view[K.VIEW_CURRENT];
  return slot >= 0 ? live[slot] : undefined;
}

/** The record that last switched back to its resumer (yielded or ended): what a chain ends with. */
let switchedOut: CoroutineRecord | null = null;

/** Where `rec` is in its life: the addon's word for it. */
function stateOf(rec: CoroutineRecord): CoroutineState {
  return rec.native ? STATE_WORDS[nativeStatus(rec.no)] : 'done';
}

/** The record of the innermost running coroutine, or undefined. @internal */
export function currentRecord(): CoroutineRecord | undefined {
  return topOfRunning();
}

/**
 * Suspends the running coroutine, handing `value` to its resumer; returns
 * the value of the next `resume()`. Works at any call depth. @internal
 */
export function yieldValue<TIn = unknown>(value?: unknown): TIn {
  const rec = topOfRunning();
  if (!rec) fail('ERR_NOT_IN_COROUTINE', 'yield() was called outside a coroutine; call it from inside a coroutine body');
  suspendWith(rec, value);
  return (rec.sig === Sig.Probe ? answerProbes(rec) : takeSignal(rec)) as TIn;
}

/**
 * Hands `value` to the resumer and suspends `rec` (the running coroutine)
 * until it is resumed. Where it may not suspend, the addon throws
 * (ERR_UNSAFE_YIELD) and nothing has changed.
 */
function suspendWith(rec: CoroutineRecord, value: unknown): void {
  rec.out = Out.Yield;
  rec.outValue = value;
  const saved = executionAsyncId() === rec.baseAsyncId ? null : popAsyncScopes(rec);
  live[rec.slot] = undefined;
  switchedOut = rec;
  try {
    nativeYield();
  } catch (e) {
    // it never left
    live[rec.slot] = rec;
    switchedOut = null;
    rec.outValue = undefined;
    if (saved) restoreAsyncScopes(rec, saved);
    throw e;
  }
  live[rec.slot] = rec; // whoever resumed it (a resume, a chain, a hand-off)
  if (saved) restoreAsyncScopes(rec, saved);
}

/**
 * The resumer asks where this coroutine is suspended (see {@link unsafeToUnwind}):
 * answer from here, suspend again, and take the signal that follows.
 */
function answerProbes(rec: CoroutineRecord): unknown {
  while (rec.sig === Sig.Probe) {
    rec.sig = Sig.Next;
    suspendWith(rec, unsafeFrame());
  }
  return takeSignal(rec);
}

/**
 * Why an exception thrown here would not unwind the coroutine, or null.
 * V8 catches an exception thrown inside a Promise executor (the promise
 * rejects with it, the executor's caller goes on) and inside an ES module's
 * evaluation (the module is left errored with it, for every later import);
 * no JavaScript can catch it first, so korutin refuses to unwind there.
 */
function unsafeFrame(): string | null {
  const limit = Error.stackTraceLimit;
  const prepare = Error.prepareStackTrace;
  let sites: NodeJS.CallSite[] = [];
  try {
    Error.stackTraceLimit = Infinity;
    Error.prepareStackTrace = (_e, s) => s;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, unsafeFrame);
    if (Array.isArray(holder.stack)) sites = holder.stack as NodeJS.CallSite[];
  } catch {
    return null;
  } finally {
    Error.stackTraceLimit = limit;
    Error.prepareStackTrace = prepare;
  }
  for (const site of sites) {
    if (site.isConstructor() && site.getFunctionName() === 'Promise') {
      return 'it is suspended inside a Promise executor (new Promise(executor)), which would catch the unwinding and reject the promise with it';
    }
    const file = site.getFileName() ?? '';
    if (file.startsWith('node:internal/modules/esm/')) {
      return "it is suspended inside an ES module's evaluation, which would keep the unwinding as the module's error for every later import";
    }
  }
  return null;
}

/** Asks a suspended coroutine whether it can be unwound (see {@link unsafeFrame}). */
function unsafeToUnwind(rec: CoroutineRecord): string | null {
  if (stateOf(rec) !== 'suspended') return null;
  const r = switchInto(rec, Sig.Probe, undefined);
  return typeof r.value === 'string' ? r.value : null;
}

/** Resuming: pushes back the async scopes popAsyncScopes() took off. */
function restoreAsyncScopes(rec: CoroutineRecord, saved: { ids: number[]; resources: object[] }): void {
  native.async_restore(saved.ids, saved.resources);
  // Node's JS side pops a scope by shortening its resource array: an empty
  // scope here stretches that array to the stack's new depth.
  rec.resource.runInAsyncScope(noop);
}

let asyncStackOk: boolean | undefined;
const noop = (): void => undefined;

/** Whether this runtime lets a coroutine move its async contexts (see engine/node/v8bridge/async_stack.h). */
function canMoveAsyncScopes(): boolean {
  return (asyncStackOk ??= native.async_stack().ok);
}

/**
 * The coroutine suspends inside async scopes it entered since it was resumed
 * (AsyncResource#runInAsyncScope): take them off Node's async-context stack,
 * to be pushed back on resume, so that the resumer finds its own on top.
 */
function popAsyncScopes(rec: CoroutineRecord): { ids: number[]; resources: object[] } {
  if (!canMoveAsyncScopes()) {
    fail(
      'ERR_ASYNC_CONTEXT',
      `cannot suspend inside an async scope on this runtime (${native.async_stack().reason}); leave runInAsyncScope() before yielding`,
    );
  }
  const base = rec.baseAsyncId;
  const ids: number[] = [];
  const resources: object[] = [];
  for (let id = executionAsyncId(); id !== base; id = executionAsyncId()) {
    ids.push(id, triggerAsyncId());
    resources.push(executionAsyncResource());
    native.async_pop(id);
  }
  // outermost first, for pushing back
  const n = resources.length;
  const order = Array.from({ length: n }, (_, i) => n - 1 - i);
  return { ids: order.flatMap((i) => [ids[2 * i], ids[2 * i + 1]]), resources: order.map((i) => resources[i]) };
}

function takeSignal(rec: CoroutineRecord): unknown {
  const v = rec.sigValue;
  rec.sigValue = undefined;
  if (rec.sig === Sig.Throw) throw v;
  if (rec.sig === Sig.Return) throw new ReturnSignal(rec, v);
  return v;
}

/** Options of one coroutine. */
export interface CoroutineOptions {
  /** A name for diagnostics. */
  name?: string;
}

/**
 * Throws ERR_INVALID_ARGUMENT unless `options` is undefined or an object
 * whose `name`, if any, is a string. @internal
 */
export function checkOptions(options: unknown, what: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `${what}: options must be an object like { name: 'reader' } (or left out); got ${describeGiven(options)}`);
  }
  const name = (options as { name?: unknown }).name;
  if (name !== undefined && typeof name !== 'string') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `${what}: options.name must be a string (or left out); got ${describeGiven(name)}`);
  }
}

/** Where a coroutine runs: backend and stack (from an engine's config). @internal */
export interface SpawnTarget {
  backend: string;
  stackSize: number;
  guardSize: number;
  /** The backend's index in the addon's backends(), filled in on first use. */
  backendIndex?: number;
}

let nextId = 1;

/**
 * The native body of every coroutine (one function, so that a pooled native
 * coroutine needs no new handle): runs the body of the coroutine being
 * entered, the running one. Named so that stack traces can leave it out
 * (see stripKorutinFrames).
 */
function korutinCoroutineBody(): void {
  const rec = live[view[K.VIEW_CURRENT]]!; // the coroutine being entered
  const fn = rec.fn!;
  rec.fn = null;
  try {
    rec.outValue = fn(takeSignal(rec));
    rec.out = Out.Return;
  } catch (e) {
    if (isReturnOf(e, rec)) {
      rec.out = Out.Return;
      rec.outValue = (e as ReturnSignal).value;
    } else {
      rec.out = Out.Throw;
      rec.outValue = e;
    }
  }
  live[rec.slot] = undefined;
  switchedOut = rec;
}

/** The addon's switch functions, read once (its exports object is slow to read from). */
const nativeCreate = native.create;
const nativeResume = native.resume;
const nativeResumeScoped = native.resume_scoped;
const nativeYield = native.yield;
const nativeStatus = native.status;

/**
 * From its first suspension on (or, for a task, from its creation), a
 * coroutine is in the abandoned-coroutine registry: one dropped while
 * suspended is unwound. One that never suspends costs no registration. @internal
 */
export function watch(co: Coroutine): void {
  const rec = co.rec;
  if (rec.watched || !rec.native) return;
  rec.watched = true;
  abandoned.register(co, rec, rec);
}

/** Backend names to their index in the addon's backends(), which create() takes. */
let backendIndexes: Map<string, number> | null = null;
function backendIndex(name: string): number {
  backendIndexes ??= new Map(native.backends().map((b, i) => [b.name, i]));
  return backendIndexes.get(name) ?? -1;
}
const abandoned = new FinalizationRegistry<CoroutineRecord>((rec) => unwindAbandoned(rec));

/**
 * A coroutine: `resume(v)` runs it until it yields or returns. The first
 * resume's value is the body's argument.
 */
export class Coroutine<TIn = any, TYield = any, TReturn = any> implements Iterator<TYield, TReturn, TIn> {
  /** Unique within this thread. */
  readonly id: number;
  /** @internal */
  readonly rec: CoroutineRecord;
  /** The name given in the options, if any. */
  private readonly given: string | undefined;

  /** @internal Use `engine.create(fn)`. */
  constructor(fn: (arg: TIn) => TReturn, target: SpawnTarget, options?: CoroutineOptions) {
    if (typeof fn !== 'function') {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `a coroutine body must be a function, got ${describeGiven(fn)}`);
    }
    if (options !== undefined) checkOptions(options, 'create(fn, options)');
    this.id = nextId++;
    this.given = options?.name;
    const rec: CoroutineRecord = {
      native: false, watched: false, sig: Sig.Next, sigValue: undefined,
      out: Out.Return, outValue: undefined, self: null, owner: undefined, fiber: undefined,
      fn: fn as (arg: unknown) => unknown,
      resource: new AsyncResource('korutin.Coroutine'),
      baseAsyncId: 0, scoped: false, no: -1, slot: -1,
    };
    if (!traceHookInstalled) installTraceHook();
    if (target.backendIndex === undefined) {
      const index = backendIndex(target.backend);
      if (index < 0) fail('ERR_BACKEND_UNAVAILABLE', `backend '${target.backend}' is not usable here: no such backend`);
      target.backendIndex = index;
    }
    // The addon frees it if this object is dropped before it starts; once
    // it has suspended, the abandoned-coroutine registry looks after it.
    // Where async contexts can be moved natively, the addon enters the
    // coroutine's own on every resume (see switchInto).
    const resource = rec.resource;
    if (canMoveAsyncScopes()) {
      rec.baseAsyncId = resource.asyncId();
      rec.scoped = true;
      rec.no = nativeCreate(target.backendIndex, target.stackSize, target.guardSize, korutinCoroutineBody, this,
        rec.baseAsyncId, resource.triggerAsyncId(), resource);
    } else {
      rec.no = nativeCreate(target.backendIndex, target.stackSize, target.guardSize, korutinCoroutineBody, this);
    }
    rec.native = true;
    rec.slot = rec.no % SLOTS;
    while (live.length <= rec.slot) live.push(undefined);
    this.rec = rec;
  }

  /** A name for diagnostics (defaults to `coroutine-<id>`). */
  get name(): string {
    return this.given ?? `coroutine-${this.id}`;
  }

  /** Where the coroutine is in its life. */
  get state(): CoroutineState {
    return stateOf(this.rec);
  }

  /** True once the body has returned or thrown. */
  get done(): boolean {
    return !this.rec.native;
  }

  /** Runs the coroutine until it yields (`done: false`) or returns (`done: true`). */
  resume(value?: TIn): IteratorResult<TYield, TReturn> {
    return switchInto(this.rec, Sig.Next, value, this) as IteratorResult<TYield, TReturn>;
  }

  /** Iterator protocol: the same as `resume(value)`. */
  next(value?: TIn): IteratorResult<TYield, TReturn> {
    return this.resume(value);
  }

  /** Throws `error` at the coroutine's suspension point. */
  throw(error: unknown): IteratorResult<TYield, TReturn> {
    return switchInto(this.rec, Sig.Throw, error, this) as IteratorResult<TYield, TReturn>;
  }

  /** Unwinds the coroutine from its suspension point (its `finally` blocks run) and finishes it with `value`. */
  return(value?: TReturn): IteratorResult<TYield, TReturn> {
    if (!this.rec.native) return { value: value as TReturn, done: true };
    const unsafe = unsafeToUnwind(this.rec);
    if (unsafe !== null) {
      throw new KorutinError(
        'ERR_UNWIND_UNSAFE',
        `cannot return() ${this.name}: ${unsafe}; it stays suspended: resume() it to the end (or out of there) instead`,
      );
    }
    return switchInto(this.rec, Sig.Return, value, this) as IteratorResult<TYield, TReturn>;
  }

  /**
   * Frees the coroutine now instead of when GC finds it dropped: a suspended
   * one is unwound from its suspension point (its `finally` blocks run, as
   * with `return()`), one never started is discarded without running its
   * body, a finished one is left as it is. Also `[Symbol.dispose]`, so
   * `using co = ko.create(fn)` frees it at the end of the block.
   * Throws ERR_ALREADY_RUNNING on a running coroutine (or one waiting on
   * another it resumed), ERR_UNWIND_UNSAFE where `return()` would.
   */
  dispose(): void {
    const rec = this.rec;
    const state = stateOf(rec);
    if (state === 'done') return;
    if (state === 'running' || state === 'normal') {
      fail('ERR_ALREADY_RUNNING', `cannot dispose() ${this.name} while it runs (or waits on a coroutine it resumed); dispose it after it yields or from outside`);
    }
    if (state === 'created') {
      finishUnstarted(rec, Sig.Return, undefined);
      return;
    }
    this.return(undefined);
  }

  [Symbol.iterator](): Iterator<TYield, TReturn, TIn> {
    return this;
  }
}

/** `Symbol.dispose` where the runtime has it (Node 20.4+): `using co = ko.create(...)`. */
const disposeSymbol: symbol | undefined = (Symbol as { dispose?: symbol }).dispose;
if (typeof disposeSymbol === 'symbol') {
  Object.defineProperty(Coroutine.prototype, disposeSymbol, {
    value: function (this: Coroutine): void {
      this.dispose();
    },
    writable: true,
    configurable: true,
  });
}

function resumeNative(rec: CoroutineRecord): void {
  rec.baseAsyncId = executionAsyncId();
  nativeResume(rec.no);
}

/**
 * Resumes `rec` with a signal. The addon refuses one that is running (or
 * waits on one it resumed) before anything switches: then nothing here has
 * changed either.
 */
function switchInto(rec: CoroutineRecord, sig: Sig, value: unknown, self?: Coroutine): IteratorResult<unknown, unknown> {
  if (!rec.native) fail('ERR_COROUTINE_DONE', 'this coroutine has finished; create a new one to run the body again');
  // throw() and return() before the first resume: the body never runs
  if (sig !== Sig.Next && nativeStatus(rec.no) === K.JS_CREATED) return finishUnstarted(rec, sig, value);
  // its first entry finds it here; after that it sets its entry itself when it wakes
  const first = rec.fn !== null;
  const wasSelf = rec.self;
  const wasSig = rec.sig;
  const wasSigValue = rec.sigValue;
  rec.sig = sig;
  rec.sigValue = value;
  if (first) live[rec.slot] = rec;
  if (self) rec.self = self;
  try {
    if (rec.scoped) nativeResumeScoped(rec.no);
    else rec.resource.runInAsyncScope(resumeNative, null, rec);
  } catch (e) {
    // the switch itself failed: it never ran
    if (first) live[rec.slot] = undefined;
    rec.self = wasSelf;
    rec.sig = wasSig;
    rec.sigValue = wasSigValue;
    throw e;
  }
  rec.self = null;
  const out = rec.outValue;
  rec.outValue = undefined;
  if (rec.out === Out.Yield) {
    if (!rec.watched && self) watch(self);
    return { value: out, done: false };
  }
  finished(rec);
  if (rec.out === Out.Throw) throw out;
  return { value: out, done: true };
}

/** throw()/return() before the first resume: the body never runs, like a generator's. */
function finishUnstarted(rec: CoroutineRecord, sig: Sig, value: unknown): IteratorResult<unknown, unknown> {
  if (rec.native) native.destroy(rec.no);
  finished(rec);
  if (sig === Sig.Throw) throw value;
  return { value, done: true };
}

function finished(rec: CoroutineRecord): void {
  if (live[rec.slot] === rec) live[rec.slot] = undefined;
  rec.native = false;
  rec.fn = null;
  if (rec.watched) abandoned.unregister(rec);
  if (poolTimer === null) armPoolTimer();
}

// A finished coroutine may wait in the addon's pool (its stack and V8
// thread kept for the next create()). While any may, a timer ticks: a pool
// from which nothing was taken for a tick is emptied.
const POOL_IDLE_MS = 2000;
let poolTimer: NodeJS.Timeout | null = null;

function armPoolTimer(): void {
  poolTimer = setTimeout(poolTick, POOL_IDLE_MS);
  poolTimer.unref();
}

function poolTick(): void {
  poolTimer = null;
  if (native.pool_tick() > 0) armPoolTimer();
}

/** A suspended coroutine nobody can resume any more: unwind it so its finally blocks run and its stack is freed. */
function unwindAbandoned(rec: CoroutineRecord): void {
  if (stateOf(rec) === 'created') {
    native.destroy(rec.no);
    rec.native = false;
    return;
  }
  try {
    const unsafe = unsafeToUnwind(rec);
    if (unsafe !== null) {
      // left suspended: its stack stays mapped, its finally blocks never run
      process.emitWarning(`an abandoned coroutine was not unwound: ${unsafe}; its stack is kept`, {
        type: 'KorutinWarning',
        code: 'KORUTIN_UNWIND_UNSAFE',
      });
      return;
    }
  } catch {
    return;
  }
  for (let tries = 0; stateOf(rec) === 'suspended' && tries < 8; tries++) {
    try {
      switchInto(rec, Sig.Return, undefined);
    } catch {
      // an error thrown while unwinding has no one left to report to
    }
  }
}

// ------------------------------------------------------------ stack traces
//
// A coroutine's native stack starts with korutin's body function, which
// calls the user's (through korutin/fibers' or the scheduler's wrappers).
// Stack traces should end at the user's function, as a fiber's did in
// node-fibers. V8 gives JavaScript no way to hide a frame, so korutin
// filters the structured trace before it is formatted: Error.prepareStackTrace
// becomes an accessor whose getter hands V8 (through Node) a wrapper of
// whatever function is stored there, Node's default one or the user's. The
// wrapper drops the frames of korutin's own files from the bottom of a trace
// whose last frame is the coroutine body, then calls the stored function
// with the rest. Nothing runs on the coroutine hot path: the work is done
// only when a stack is formatted (once per error, on the first `.stack`).

/** The frames to drop: korutin's built modules, in this directory. */
const KORUTIN_DIR = __dirname + path.sep;
const BODY_NAME = 'korutinCoroutineBody';

/** What korutin reads from V8's structured stack frames. */
interface Frame {
  getFileName(): string | null | undefined;
  getFunctionName(): string | null;
  isAsync?(): boolean;
}

function isKorutinFrame(f: Frame): boolean {
  const file = f.getFileName();
  return typeof file === 'string' && file.startsWith(KORUTIN_DIR);
}

/**
 * The trace without korutin's frames below the user's function, when it was
 * taken on a coroutine's stack; otherwise the trace itself. @internal
 */
export function stripKorutinFrames<T>(trace: T): T {
  if (!Array.isArray(trace) || trace.length === 0) return trace;
  const frames = trace as unknown[] as Frame[];
  // a trace ends with the frames of the stack it was taken on, then any async frames
  let last = frames.length - 1;
  while (last >= 0 && typeof frames[last]?.isAsync === 'function' && frames[last].isAsync!()) last--;
  const bottom = frames[last];
  if (!bottom || typeof bottom.getFunctionName !== 'function' || bottom.getFunctionName() !== BODY_NAME || !isKorutinFrame(bottom)) {
    return trace;
  }
  let first = last;
  while (first > 0 && isKorutinFrame(frames[first - 1])) first--;
  // a trace of nothing but korutin's own frames (an error korutin raised in the body) stays whole
  if (first === 0) return trace;
  return [...frames.slice(0, first), ...frames.slice(last + 1)] as unknown as T;
}

type Prepare = (error: Error, trace: unknown[]) => unknown;

let traceHookInstalled = false;
/** What `Error.prepareStackTrace` holds, as user code sees it. */
let storedPrepare: unknown;
const wrappers = new WeakMap<Function, Prepare>();
const wrapped = new WeakMap<Function, Function>();

/** The V8 format, for a runtime without Node's default Error.prepareStackTrace. */
function v8Format(error: Error, trace: unknown[]): string {
  let head: string;
  try {
    head = Error.prototype.toString.call(error);
  } catch {
    head = 'Error';
  }
  return trace.length === 0 ? head : `${head}\n    at ${trace.join('\n    at ')}`;
}

function wrapperOf(fn: Function): Prepare {
  let w = wrappers.get(fn);
  if (!w) {
    w = function (this: unknown, error: Error, trace: unknown[]): unknown {
      return fn.call(this, error, stripKorutinFrames(trace));
    };
    Object.defineProperty(w, 'name', { value: fn.name });
    wrappers.set(fn, w);
    wrapped.set(w, fn);
  }
  return w;
}

function installTraceHook(): void {
  traceHookInstalled = true;
  const d = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');
  if (d && (!d.configurable || !('value' in d))) return; // someone else's accessor: leave it alone
  storedPrepare = d ? d.value : undefined;
  // With nothing stored (unset, or set to undefined later), Node's default
  // formatter if it was there when korutin came (it applies source maps), or
  // V8's format (older Node 20 releases, or someone had replaced it).
  const nodeDefault = typeof storedPrepare === 'function' && storedPrepare.name === 'ErrorPrepareStackTrace' ? storedPrepare : undefined;
  const fallback = wrapperOf(nodeDefault ?? v8Format);
  Object.defineProperty(Error, 'prepareStackTrace', {
    get(): unknown {
      if (typeof storedPrepare === 'function') return wrapperOf(storedPrepare);
      return storedPrepare === undefined ? fallback : storedPrepare;
    },
    set(v: unknown) {
      storedPrepare = (typeof v === 'function' && wrapped.get(v)) || v;
      // assigning back what an unset Error.prepareStackTrace read as leaves it unset
      if (storedPrepare === v8Format) storedPrepare = undefined;
    },
    configurable: true,
    enumerable: d ? d.enumerable : false,
  });
}

/** The public object of the innermost running coroutine. @internal */
export function currentCoroutine(): Coroutine | undefined {
  const rec = topOfRunning();
  if (!rec) return undefined;
  if (rec.self) return rec.self;
  // resumed by a chain (the scheduler's pass, a hand-off): its owner (a scheduler task) holds it
  const co = (rec.owner as { co?: unknown } | null | undefined)?.co;
  return co instanceof Coroutine ? co : undefined;
}

// ------------------------------------------------------------------ chains
//
// The scheduler runs tasks in chains: its binding's pass resumes one
// natively (JsRunChain), and a task that blocks hands the turn straight to
// the next ready one, which
// costs one switch of V8's thread state instead of two (there and back
// through the scheduler). The scheduler's binding decides and makes that
// hand-off inside the blocking call (sched_binding.cc, Blocked()); which
// coroutine of a chain runs is the addon's (the view). Each coroutine of a
// chain runs in its own async context, entered natively on Node's async
// stack (with async_hooks' before and after hooks around each slice it runs).

/** Whether chains work here (they move async contexts). @internal */
export function chainsSupported(): boolean {
  return canMoveAsyncScopes();
}

/** Lets the coroutine take part in chains (once, before its first pass). @internal */
export function joinChains(rec: CoroutineRecord): void {
  // a chain may enter it without a resume that would say who it is
  live[rec.slot] = rec;
  if (rec.scoped) return; // its base was given at creation
  native.set_base(rec.no, rec.resource.asyncId(), rec.resource.triggerAsyncId(), rec.resource);
  rec.baseAsyncId = rec.resource.asyncId();
}

/**
 * A chain (the scheduler binding's pass resumes a task's coroutine in one,
 * natively) came back with its last coroutine ended: that one, released;
 * its `out` and `outValue` say how it ended. @internal
 */
export function chainEnded(): CoroutineRecord {
  const last = switchedOut!;
  switchedOut = null;
  finished(last);
  return last;
}

// ------------------------------------------------------------ vm watchdogs
//
// vm's `timeout` (and `breakOnSigint`) arm a watchdog per isolate, not per
// stack: a coroutine suspended inside such a call would leave it armed, and
// when it fired it would terminate whatever JavaScript ran then, in any
// coroutine. So korutin tells the addon, per coroutine, of the vm calls with
// a watchdog under way on its stack, and the addon refuses to suspend inside
// one (ERR_UNSAFE_YIELD), as it does inside an Array.prototype.join (see
// engine/node/v8bridge/join_stack.h): one owner of every such refusal.

function hasWatchdog(options: unknown): boolean {
  if (options === null || typeof options !== 'object') return false;
  const o = options as { timeout?: unknown; breakOnSigint?: unknown };
  return o.timeout !== undefined || o.breakOnSigint === true;
}

function guardVmTimeouts(): void {
  const proto = vm.Script.prototype as unknown as Record<string, unknown>;
  // runInThisContext(options), runInContext(context, options), runInNewContext(context, options);
  // vm.runInContext() and the rest call these.
  for (const [name, at] of [['runInThisContext', 0], ['runInContext', 1], ['runInNewContext', 1]] as const) {
    const original = proto[name];
    if (typeof original !== 'function' || guarded.has(original)) continue;
    const guard = function (this: unknown, ...args: unknown[]): unknown {
      if (view[K.VIEW_CURRENT] < 0 || !hasWatchdog(args[at])) return original.apply(this, args);
      native.vm_watch(1);
      try {
        return original.apply(this, args);
      } finally {
        native.vm_watch(-1);
      }
    };
    Object.defineProperty(guard, 'name', { value: name });
    Object.defineProperty(guard, 'length', { value: original.length });
    guarded.add(guard);
    proto[name] = guard;
  }
}

const guarded = new WeakSet<object>();
guardVmTimeouts();
