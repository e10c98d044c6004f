/**
 * Coroutines whose bodies are plain JavaScript functions, running on their
 * own native stacks. Values and exceptions cross here; the addon only
 * switches stacks.
 */
import { AsyncResource, executionAsyncId, executionAsyncResource, triggerAsyncId } from 'async_hooks';
import * as path from 'path';
import * as vm from 'vm';
import { KorutinError, fail } from './errors';
import { describeGiven } from './format';
import { native } from './native';
import { CORO_STATES } from './vocab';

/** Where a coroutine is in its life. */
export type CoroutineState = 'created' | 'suspended' | 'running' | 'normal' | 'done';
// The C states' words (korutin.h's KO_STATE_MAP) are these; 'created' is a suspended one never resumed.
void (CORO_STATES satisfies readonly CoroutineState[]);

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
  state: CoroutineState;
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
  /** Resumed by {@link runChain} or handed the turn by {@link handOff}: it may hand off in turn. */
  chained: boolean;
  /** The native coroutine's number, which the switch functions take. */
  no: number;
  /** vm calls with a timeout (or breakOnSigint) under way on its stack: it must not suspend (see guardVmTimeouts). */
  vmWatchdogs: number;
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

/** The coroutines running on this thread, innermost last. */
const running: CoroutineRecord[] = [];

/**
 * The innermost running record, or undefined. Never `running[-1]`: an
 * index below zero is a property name to V8, looked up the slow way (it
 * cost a resume two runtime calls).
 */
function topOfRunning(): CoroutineRecord | undefined {
  const n = running.length;
  return n > 0 ? running[n - 1] : undefined;
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
  refuseUnsafeSuspend(rec);
  suspendWith(rec, value);
  return (rec.sig === Sig.Probe ? answerProbes(rec) : takeSignal(rec)) as TIn;
}

/** Hands `value` to the resumer and suspends `rec` (the running coroutine) until it is resumed. */
function suspendWith(rec: CoroutineRecord, value: unknown): void {
  rec.out = Out.Yield;
  rec.outValue = value;
  rec.state = 'suspended';
  running.pop();
  const saved = executionAsyncId() === rec.baseAsyncId ? null : popAsyncScopes(rec);
  if (nativeYield() === true) {
    // it never left: a join it began is under way
    rec.outValue = undefined;
    rec.state = 'running';
    running.push(rec);
    if (saved) restoreAsyncScopes(rec, saved);
    refuseJoinYield();
  }
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
  if (rec.state !== 'suspended') return null;
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
    rec.state = 'running';
    running.push(rec);
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
 * entered, which is on top of `running`. Named so that stack traces can
 * leave it out (see stripKorutinFrames).
 */
function korutinCoroutineBody(): void {
  const rec = running[running.length - 1]; // never empty here: the coroutine being entered
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
  rec.state = 'done';
  running.pop();
}

/** The addon's switch functions, read once (its exports object is slow to read from). */
const nativeCreate = native.create;
const nativeResume = native.resume;
const nativeResumeScoped = native.resume_scoped;
const nativeYield = native.yield;

/**
 * From its first suspension on (or, for a task, from its creation), a
 * coroutine is in the abandoned-coroutine registry: one dropped while
 * suspended is unwound. One that never suspends costs no registration. @internal
 */
export function watch(co: Coroutine): void {
  const rec = co.rec;
  if (rec.watched || rec.state === 'done') return;
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
      native: false, watched: false, state: 'created', sig: Sig.Next, sigValue: undefined,
      out: Out.Return, outValue: undefined, self: null, owner: undefined, fiber: undefined,
      fn: fn as (arg: unknown) => unknown,
      resource: new AsyncResource('korutin.Coroutine'),
      baseAsyncId: 0, scoped: false, chained: false, no: -1, vmWatchdogs: 0,
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
    this.rec = rec;
  }

  /** A name for diagnostics (defaults to `coroutine-<id>`). */
  get name(): string {
    return this.given ?? `coroutine-${this.id}`;
  }

  /** Where the coroutine is in its life. */
  get state(): CoroutineState {
    return this.rec.state;
  }

  /** True once the body has returned or thrown. */
  get done(): boolean {
    return this.rec.state === 'done';
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
    if (this.rec.state === 'done') return { value: value as TReturn, done: true };
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
    if (rec.state === 'done') return;
    if (rec.state === 'running' || rec.state === 'normal') {
      fail('ERR_ALREADY_RUNNING', `cannot dispose() ${this.name} while it runs (or waits on a coroutine it resumed); dispose it after it yields or from outside`);
    }
    if (rec.state === 'created') {
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

function switchInto(rec: CoroutineRecord, sig: Sig, value: unknown, self?: Coroutine): IteratorResult<unknown, unknown> {
  switch (rec.state) {
    case 'done':
      fail('ERR_COROUTINE_DONE', 'this coroutine has finished; create a new one to run the body again');
    case 'running':
    case 'normal':
      fail('ERR_ALREADY_RUNNING', 'this coroutine is running: a coroutine cannot resume itself or a coroutine that is waiting on it');
    case 'created':
      if (sig !== Sig.Next) return finishUnstarted(rec, sig, value);
  }
  const outer = topOfRunning();
  if (outer) outer.state = 'normal';
  rec.sig = sig;
  rec.sigValue = value;
  rec.state = 'running';
  rec.chained = false;
  running.push(rec);
  if (self) rec.self = self;
  try {
    if (rec.scoped) nativeResumeScoped(rec.no);
    else rec.resource.runInAsyncScope(resumeNative, null, rec);
  } finally {
    rec.self = null;
    if (topOfRunning() === rec) running.pop(); // only if the switch itself failed
    if (outer) outer.state = 'running';
  }
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
  rec.state = 'done';
  if (rec.native) native.destroy(rec.no);
  finished(rec);
  if (sig === Sig.Throw) throw value;
  return { value, done: true };
}

function finished(rec: CoroutineRecord): void {
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
  if (rec.state === 'created') {
    if (rec.native) native.destroy(rec.no);
    rec.native = false;
    rec.state = 'done';
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
  for (let tries = 0; rec.state === 'suspended' && tries < 8; tries++) {
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
  // resumed by a chain (runChain, handOff): its owner (a scheduler task) holds it
  const co = (rec.owner as { co?: unknown } | null | undefined)?.co;
  return co instanceof Coroutine ? co : undefined;
}

// ------------------------------------------------------------------ chains
//
// The scheduler runs tasks in chains: it resumes one with runChain(), and a
// task that blocks hands the turn straight to the next ready one with
// handOff(), which costs one switch of V8's thread state instead of two
// (there and back through the scheduler). Each coroutine of a chain runs in
// its own async context, entered natively on Node's async stack (with
// async_hooks' before and after hooks around each slice it runs).

/** The coroutine a chain is in now. */
let chainTail: CoroutineRecord | null = null;

/** `rec` is about to run in the chain. */
function enterChain(rec: CoroutineRecord): void {
  rec.sig = Sig.Next;
  rec.sigValue = undefined;
  rec.state = 'running';
  rec.chained = true;
  running.push(rec);
  chainTail = rec;
}

/** Undoes enterChain() when the switch into `rec` failed. */
function leaveChain(rec: CoroutineRecord, prior: CoroutineState): void {
  running.pop();
  rec.state = prior;
  rec.chained = false;
  chainTail = null;
}

/** Whether chains work here (they move async contexts). @internal */
export function chainsSupported(): boolean {
  return canMoveAsyncScopes();
}

/** Lets the coroutine take part in chains (once, before its first runChain or handOff). @internal */
export function joinChains(rec: CoroutineRecord): void {
  if (rec.scoped) return; // its base was given at creation
  native.set_base(rec.no, rec.resource.asyncId(), rec.resource.triggerAsyncId(), rec.resource);
  rec.baseAsyncId = rec.resource.asyncId();
}

/**
 * Resumes `rec` (outside any coroutine) in its own async context; coroutines
 * it hands off to run in turn. Returns the one that came back (yielded or
 * ended); its `out` and `outValue` say how. @internal
 */
export function runChain(rec: CoroutineRecord): CoroutineRecord {
  if (running.length > 0 || (rec.state !== 'suspended' && rec.state !== 'created')) {
    fail('ERR_ALREADY_RUNNING', 'runChain() resumes a suspended coroutine from outside any coroutine');
  }
  const prior = rec.state;
  enterChain(rec);
  try {
    native.resume_chain(rec.no);
  } catch (e) {
    leaveChain(rec, prior); // the switch itself failed
    throw e;
  }
  const last = chainTail!;
  chainTail = null;
  last.chained = false;
  if (last.out !== Out.Yield) finished(last);
  return last;
}

/** Inside a coroutine run by runChain() (only it running): whether it may hand off. @internal */
export function canHandOff(): boolean {
  return running.length === 1 && running[0].chained;
}

/**
 * Suspends the running coroutine (see {@link canHandOff}) and hands the turn
 * to `to`, a suspended coroutine that joined chains; returns when this one
 * is resumed again (its signal applies as after a yield). @internal
 */
export function handOff(to: CoroutineRecord): unknown {
  const rec = running[0];
  refuseUnsafeSuspend(rec);
  rec.out = Out.Yield;
  rec.outValue = undefined;
  rec.state = 'suspended';
  running.pop();
  const saved = executionAsyncId() === rec.baseAsyncId ? null : popAsyncScopes(rec);
  const prior = to.state;
  enterChain(to);
  try {
    if (native.yield_to(to.no) === true) refuseJoinYield();
  } catch (e) {
    // it never left: undo
    leaveChain(to, prior);
    chainTail = rec;
    rec.state = 'running';
    running.push(rec);
    if (saved) restoreAsyncScopes(rec, saved);
    throw e;
  }
  if (saved) restoreAsyncScopes(rec, saved);
  return takeSignal(rec);
}

// ------------------------------------------------------------ vm watchdogs
//
// vm's `timeout` (and `breakOnSigint`) arm a watchdog per isolate, not per
// stack: a coroutine suspended inside such a call would leave it armed, and
// when it fired it would terminate whatever JavaScript ran then, in any
// coroutine. So korutin counts, per coroutine, the vm calls with a watchdog
// under way on its stack, and refuses to suspend inside one.

/**
 * Refuses (throws) when the running coroutine `rec` may not suspend here
 * because of a vm watchdog: for the scheduler's operations, before they
 * change anything. @internal
 */
export function refuseUnsafeSuspend(rec: CoroutineRecord): void {
  if (rec.vmWatchdogs > 0) refuseVmYield();
}

function refuseVmYield(): never {
  fail(
    'ERR_UNSAFE_YIELD',
    "cannot suspend inside vm code run with a timeout (or breakOnSigint): its watchdog is per isolate and would stop other code; run the vm code without suspending, or put the timeout around the coroutine's work instead",
  );
}

// V8's Array.prototype.join cycle guard is one stack per context, not per
// stack (see engine/node/v8bridge/join_stack.h): the addon reports a join
// begun by the coroutine and still under way, and korutin refuses to
// suspend there.
function refuseJoinYield(): never {
  throw joinYieldError();
}

/** The error of a suspension refused inside a join (also the scheduler's, see ts/sched/driver.ts). @internal */
export function joinYieldError(): KorutinError {
  return new KorutinError(
    'ERR_UNSAFE_YIELD',
    "cannot suspend inside Array.prototype.join (or an array's toString/toLocaleString, or a TypedArray's join): V8 keeps one join stack per context, not per coroutine, and other joins of the array would see it as a cycle; build the string after suspending (e.g. map the elements to strings first, then join)",
  );
}

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
      const rec = topOfRunning();
      if (!rec || !hasWatchdog(args[at])) return original.apply(this, args);
      rec.vmWatchdogs++;
      try {
        return original.apply(this, args);
      } finally {
        rec.vmWatchdogs--;
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
