/**
 * `korutin/fibers`: the node-fibers API on korutin's coroutines, so code
 * written for `require('fibers')` runs on modern Node.
 *
 * ```js
 * const Fiber = require('korutin/fibers');   // or: import Fiber from 'korutin/fibers'
 *
 * function sleep(ms) {
 *   const fiber = Fiber.current;
 *   setTimeout(() => fiber.run(), ms);
 *   Fiber.yield();
 * }
 * Fiber(() => { sleep(100); console.log('later'); }).run();
 * ```
 *
 * Every fiber is a korutin coroutine with a 512 KiB stack on one engine
 * shared by the module, created on first use with backend `'auto'`; set the
 * `KORUTIN_BACKEND` environment variable (`asm`, `boost`, `ucontext`,
 * `threads`) to choose another. See docs/fibers-migration.md.
 *
 * @packageDocumentation
 */
import { BACKENDS, BackendName } from './config';
import { Coroutine, currentRecord } from './coroutine';
import { createEngine, Engine } from './engine';
import { codedError, KorutinError } from './errors';
import { native } from './native';

/** A fiber: a function with its own stack that can suspend with {@link FiberConstructor.yield}. */
interface Fiber {
  /**
   * Starts the fiber, or resumes it where it yielded. The first run of a
   * fiber calls its function with `value` (with no argument if `run()` has
   * none) and the global object as `this`; later runs make the pending
   * `Fiber.yield()` return `value`. Stack traces taken in the function end
   * at it, as in node-fibers.
   *
   * @returns what the fiber passes to `Fiber.yield()`, or what its function
   * returns when it finishes.
   * @throws what the fiber's function throws; "This Fiber is already
   * running" (`ERR_ALREADY_RUNNING`) when the fiber is running (it cannot run
   * itself, nor a fiber that is waiting on it); node-fibers' `RangeError`
   * "Out of memory" (`ERR_OUT_OF_MEMORY`) when no stack can be had.
   */
  run(value?: unknown): any;
  /**
   * Unwinds a suspended fiber: its pending `Fiber.yield()` throws, and so
   * does every further `Fiber.yield()` until the function has returned, so
   * its `finally` blocks run. Afterwards the fiber is as if it had never
   * been started. Does nothing on a fiber that is not started.
   *
   * @returns what the function returns if it catches the unwinding and
   * returns a value; otherwise `undefined`.
   * @throws "This Fiber is not yielding" (`ERR_ALREADY_RUNNING`) on a running fiber.
   */
  reset(): any;
  /**
   * Makes the pending `Fiber.yield()` of a suspended fiber throw `error`.
   *
   * @returns what the fiber yields or returns next, like {@link Fiber.run}.
   * @throws `error` back at the caller if the fiber does not catch it;
   * "This Fiber is not yielding" if the fiber is not suspended
   * (`ERR_NOT_SUSPENDED` not started, `ERR_ALREADY_RUNNING` running).
   */
  throwInto(error: unknown): any;
  /** True from the first `run()` until the function returns or throws. */
  readonly started: boolean;
}

/** The `Fiber` export: call it with or without `new`. */
interface FiberConstructor {
  /** Creates a fiber that runs `fn` on its own stack when first run. */
  new (fn: (value?: any) => unknown): Fiber;
  /** Creates a fiber; the same as `new Fiber(fn)`. */
  (fn: (value?: any) => unknown): Fiber;
  readonly prototype: Fiber;
  /**
   * The running fiber, or `undefined` outside any fiber (also inside a
   * plain korutin coroutine that is not a fiber). Keeping this object on
   * the fiber's own stack keeps the fiber alive while it is suspended.
   */
  readonly current: Fiber | undefined;
  /**
   * Suspends the running fiber: its `run()` returns `value`. Returns the
   * value of the `run()` that resumes it.
   *
   * @throws "yield() called with no fiber running" (`ERR_NOT_IN_COROUTINE`);
   * the "This Fiber is a zombie" Error while the fiber is being reset; what
   * `throwInto()` delivers.
   */
  yield(value?: unknown): any;
  /**
   * How many freed stacks korutin keeps for reuse (process-wide, shared
   * with every korutin engine). node-fibers' default was 120.
   */
  poolSize: number;
  /** How many fibers have been started in this process (each run to completion counts once). */
  readonly fibersCreated: number;
}

/**
 * What a fiber's coroutine body can see. A started coroutine's body is held
 * by the addon until it finishes, so this must not reference the Coroutine,
 * nor the Fiber except through `active` while a `run()` is under way;
 * otherwise an abandoned suspended fiber could never be collected.
 */
interface Body {
  readonly fn: (value?: unknown) => unknown;
  /** The engine of the current incarnation (for yield). */
  engine: Engine | null;
  /** True while `reset()` (or the collector) unwinds the fiber: every yield throws. */
  resetting: boolean;
  /** The Fiber object, only while a `run()` of it is under way (so `Fiber.current` works and keeps it alive). */
  active: Fiber | null;
  /** Whether the first run() of this incarnation had no argument: the function is then called with none, as in node-fibers. */
  noArgument: boolean;
  /** While resetting: the one error every Fiber.yield() throws (node-fibers threw the same object each time). */
  zombie: FiberReset | null;
  /** The coroutine body that runs `fn` (made once, for every incarnation). */
  entry?: (value: unknown) => unknown;
}

/** What a Fiber object owns. */
interface Handle {
  readonly body: Body;
  /** The coroutine of the current incarnation; null before the first run and after finishing. */
  co: Coroutine | null;
  /** In the reaper (from its first suspension on: a fiber that never suspends needs no unwinding). */
  watched: boolean;
}

/**
 * Thrown at `Fiber.yield()` to unwind a fiber that is being reset: an
 * `Error` with node-fibers' message, which korutin recognises by its class.
 */
class FiberReset extends Error {
  /** @internal */
  declare readonly body: Body;

  constructor(body: Body) {
    super('This Fiber is a zombie');
    Object.defineProperties(this, {
      body: { value: body, enumerable: false },
      hint: { value: 'the fiber is being reset: Fiber.yield() throws until the fiber function returns', enumerable: false },
    });
  }
}

/** node-fibers' stack (512 KiB on 64-bit). */
const STACK_SIZE = '512k';
/** node-fibers' default pool size. */
const DEFAULT_POOL = 120;
const MAX_POOL = 1_000_000;

/**
 * Where a Fiber object keeps its Handle: a symbol-keyed own property (a
 * WeakMap entry per fiber cost more than creating and running a short fiber
 * did, through its ephemeron barrier and GC work).
 */
const HANDLE: unique symbol = Symbol('korutin.fiber');
type WithHandle = { [HANDLE]?: Handle };
/** The Handle of a Fiber object, or undefined. */
function handleIn(o: unknown): Handle | undefined {
  if (typeof o !== 'object' || o === null) return undefined;
  const h = (o as WithHandle)[HANDLE];
  return h !== undefined && Object.prototype.hasOwnProperty.call(o, HANDLE) ? h : undefined;
}
let shared: Engine | null = null;
let override: Engine | null = null;
let poolSize = DEFAULT_POOL;
let created = 0;

/** The engine new fiber incarnations run on. */
function engine(): Engine {
  if (override) return override;
  if (!shared) {
    const requested = (process.env.KORUTIN_BACKEND ?? '').trim() || 'auto';
    if (requested !== 'auto' && !(BACKENDS as readonly string[]).includes(requested)) {
      throw new KorutinError(
        'ERR_INVALID_CONFIG',
        `KORUTIN_BACKEND='${requested}' is not a korutin backend: use one of auto, ${BACKENDS.join(', ')} (or leave it unset)`,
      );
    }
    shared = createEngine({ backend: requested as BackendName | 'auto', stackSize: STACK_SIZE, poolSize });
  }
  return shared;
}

function handleOf(self: unknown, method: string): Handle {
  const h = handleIn(self);
  if (!h) {
    // V8's message for a method called on the wrong receiver, which is what node-fibers' native methods threw
    throw codedError(TypeError, 'ERR_INVALID_ARGUMENT', 'Illegal invocation', `Fiber.prototype.${method} was called on something that is not a Fiber; call it on an object made by Fiber(fn)`);
  }
  return h;
}

/** node-fibers' TypeError for a call with too many arguments (its message, typo included). */
function arity(message: string): never {
  throw codedError(TypeError, 'ERR_INVALID_ARGUMENT', message);
}

/** Whether the fiber's coroutine runs now, or waits on one it resumed (the addon says: one call). */
function isActive(co: Coroutine): boolean {
  const state = co.state;
  return state === 'running' || state === 'normal';
}

/** The fiber body of the innermost running coroutine, if that coroutine is a fiber. */
function currentBody(): Body | undefined {
  // a fiber's coroutine carries its Body (see start)
  return currentRecord()?.fiber as Body | undefined;
}

/**
 * The coroutine body of one incarnation: calls the fiber function (with the
 * global object as `this`, as node-fibers did), and turns its own reset
 * signal into a return. Stack traces leave this frame out (see
 * stripKorutinFrames in coroutine.ts).
 */
function entry(body: Body): (value: unknown) => unknown {
  return function korutinFiberEntry(value) {
    try {
      return body.noArgument ? body.fn.call(globalThis) : body.fn.call(globalThis, value);
    } catch (e) {
      if (e instanceof FiberReset && e.body === body) return undefined;
      throw e;
    }
  };
}

function start(h: Handle): Coroutine {
  const ko = engine();
  let co: Coroutine;
  try {
    co = ko.create((h.body.entry ??= entry(h.body)), { name: `fiber-${created + 1}` });
  } catch (e) {
    // node-fibers' RangeError when no stack could be had; korutin's reason goes in the hint
    if ((e as KorutinError)?.code === 'ERR_OUT_OF_MEMORY') {
      const oom = codedError(RangeError, 'ERR_OUT_OF_MEMORY', 'Out of memory', (e as Error).message);
      throw Object.defineProperty(oom, 'cause', { value: e, configurable: true, writable: true, enumerable: false });
    }
    throw e;
  }
  created++;
  co.rec.fiber = h.body;
  h.body.engine = ko;
  h.co = co;
  return co;
}

const RUNNING_HINT = 'a fiber cannot run (or reset, or throw into) itself or a fiber that is waiting on it';

function alreadyRunning(): never {
  throw new KorutinError('ERR_ALREADY_RUNNING', 'This Fiber is already running', { hint: RUNNING_HINT, name: 'Error' });
}

/** reset() or throwInto() on a fiber that is running: node-fibers' "not yielding", with korutin's code for it. */
function runningNotYielding(): never {
  throw new KorutinError('ERR_ALREADY_RUNNING', 'This Fiber is not yielding', { hint: RUNNING_HINT, name: 'Error' });
}

/** One `run()` or `throwInto()`: switches into the fiber and back. */
function step(self: Fiber, h: Handle, throwing: boolean, value: unknown, noArgument = false): unknown {
  let co = h.co;
  if (!co) {
    if (throwing) {
      throw new KorutinError('ERR_NOT_SUSPENDED', 'This Fiber is not yielding', {
        name: 'Error',
        hint: 'throwInto() needs a fiber suspended in Fiber.yield(); run() it first',
      });
    }
    h.body.noArgument = noArgument;
    co = start(h);
  }
  if (isActive(co)) {
    if (throwing) runningNotYielding();
    alreadyRunning();
  }
  h.body.active = self;
  try {
    const r = throwing ? co.throw(value) : co.resume(value);
    if (!r.done && !h.watched) {
      h.watched = true;
      reaper.register(self, h);
    }
    return r.value;
  } finally {
    h.body.active = null;
    if (co.done && h.co === co) h.co = null;
  }
}

/** Unwinds a suspended incarnation; returns what its function returns. */
function unwind(self: Fiber | null, h: Handle, co: Coroutine): unknown {
  const body = h.body;
  body.resetting = true;
  body.active = self;
  try {
    const zombie = (body.zombie = new FiberReset(body));
    let r = co.throw(zombie);
    // Only a raw engine.yield() can suspend a resetting fiber (Fiber.yield() throws): keep unwinding.
    while (!r.done) r = co.throw(zombie);
    return r.value;
  } finally {
    body.resetting = false;
    body.zombie = null;
    body.active = null;
    if (co.done && h.co === co) h.co = null;
  }
}

/** Abandoned suspended fibers are unwound like `reset()`, so their finally blocks run and their stacks are freed. */
const reaper = new FinalizationRegistry<Handle>((h) => {
  const co = h.co;
  if (!co || co.state !== 'suspended') return;
  try {
    unwind(null, h, co);
  } catch (e) {
    process.emitWarning(
      // node-fibers' words (it then exited; korutin warns and goes on)
      `An exception was thrown from a Fiber which was being garbage collected. The exception appears below:\n\n${e instanceof Error ? e.stack ?? e.message : String(e)}`,
      { code: 'KORUTIN_FIBER_UNWIND' },
    );
  }
});

const Fiber = function Fiber(this: unknown, fn: (value?: any) => unknown): Fiber {
  // Inside, `Fiber` names this function expression itself: the same object as the export.
  const ctor = Fiber as unknown as FiberConstructor;
  if (arguments.length !== 1) {
    throw codedError(TypeError, 'ERR_INVALID_ARGUMENT', 'Fiber expects 1 argument', 'call Fiber(fn) with the fiber function only');
  }
  if (typeof fn !== 'function') {
    throw codedError(TypeError, 'ERR_INVALID_ARGUMENT', 'Fiber expects a function', `Fiber(fn) needs a function, got ${fn === null ? 'null' : typeof fn}`);
  }
  if (!(this instanceof ctor)) return new ctor(fn);
  const self = this as Fiber;
  const h: Handle = { body: { fn, engine: null, resetting: false, active: null, noArgument: false, zombie: null }, co: null, watched: false };
  // not enumerable: util.inspect, Object.assign and spreads do not see it
  Object.defineProperty(self, HANDLE, { value: h });
  return self;
} as unknown as FiberConstructor;

const method = (value: Function): PropertyDescriptor => ({ value, writable: true, configurable: true, enumerable: false });

Object.defineProperties(Fiber.prototype, {
  run: method(function run(this: Fiber, value?: unknown): unknown {
    const h = handleOf(this, 'run');
    // node-fibers checked a running fiber first (step() does), then the arguments ("excepts" is its spelling)
    if (arguments.length > 1) {
      if (h.co && isActive(h.co)) alreadyRunning();
      arity('run() excepts 1 or no arguments');
    }
    return step(this, h, false, value, arguments.length === 0);
  }),
  throwInto: method(function throwInto(this: Fiber, error: unknown): unknown {
    const h = handleOf(this, 'throwInto');
    if (arguments.length > 1 && h.co?.state === 'suspended') arity('throwInto() expects 1 or no arguments');
    return step(this, h, true, error);
  }),
  reset: method(function reset(this: Fiber): unknown {
    const h = handleOf(this, 'reset');
    const co = h.co;
    if (!co) return undefined;
    if (isActive(co)) runningNotYielding();
    if (arguments.length > 0) arity('reset() expects no arguments');
    return unwind(this, h, co);
  }),
  started: {
    get(this: Fiber): boolean | undefined {
      // Like node-fibers: undefined (rather than an error) on something that is not a fiber, e.g. the prototype itself.
      const h = handleIn(this);
      return h ? h.co !== null : undefined;
    },
    configurable: true,
    enumerable: false,
  },
});

Object.defineProperties(Fiber, {
  current: {
    get(): Fiber | undefined {
      return currentBody()?.active ?? undefined;
    },
    configurable: true,
    enumerable: true,
  },
  yield: {
    value: Object.defineProperty(function yield_(value?: unknown): unknown {
      const body = currentBody();
      if (!body) {
        throw new KorutinError('ERR_NOT_IN_COROUTINE', 'yield() called with no fiber running', {
          name: 'Error',
          hint: 'call Fiber.yield() from inside a fiber (a plain korutin coroutine yields with engine.yield())',
        });
      }
      if (body.resetting) throw body.zombie ?? new FiberReset(body);
      if (arguments.length > 1) arity('yield() expects 1 or no arguments');
      return body.engine!.yield(value);
    }, 'name', { value: 'yield' }),
    writable: true,
    configurable: true,
    enumerable: true,
  },
  poolSize: {
    get(): number {
      return poolSize;
    },
    set(n: number) {
      if (!Number.isInteger(n) || n < 0 || n > MAX_POOL) {
        throw new KorutinError('ERR_INVALID_ARGUMENT', `Fiber.poolSize must be an integer from 0 to ${MAX_POOL}, got ${String(n)}`);
      }
      poolSize = n;
      if (shared || override) native.stack_pool_limit(n);
    },
    configurable: true,
    enumerable: true,
  },
  fibersCreated: {
    get(): number {
      return created;
    },
    configurable: true,
    enumerable: true,
  },
  /*
   * Internal, not part of the node-fibers API: the engine that new fiber
   * incarnations run on. Reading gives the engine in use (or undefined
   * before the first fiber ran); assigning an Engine makes later first
   * runs use it; assigning undefined goes back to the shared engine. Tests
   * use it to run the fibers suite on every backend in one process.
   */
  [Symbol.for('korutin.fibers.engine')]: {
    get(): Engine | undefined {
      return override ?? shared ?? undefined;
    },
    set(e: Engine | undefined) {
      if (e !== undefined && !(e instanceof Engine)) {
        throw new KorutinError('ERR_INVALID_ARGUMENT', 'the fibers engine must be a korutin Engine (from createEngine) or undefined');
      }
      override = e ?? null;
    },
    configurable: false,
    enumerable: false,
  },
});

export = Fiber;
