/**
 * `korutin/future`: node-fibers' futures on `korutin/fibers`.
 *
 * ```js
 * const Future = require('korutin/future');   // or: import Future from 'korutin/future'
 * const fs = Future.wrap(require('fs'));
 *
 * Future.task(() => {
 *   const names = fs.readdirFuture('.').wait();      // this fiber waits; the event loop runs on
 *   const stats = names.map((n) => fs.statFuture(n));
 *   Future.wait(stats);
 *   return stats.map((f) => f.get().size);
 * }).resolve((err, sizes) => console.log(err ?? sizes));
 * ```
 *
 * As in node-fibers, requiring this module installs `Function.prototype.future`
 * (non-enumerable here); {@link Future.installFunctionFuture} installs it again
 * if something removed it.
 *
 * @packageDocumentation
 */
import Fiber = require('./fibers');
import { KorutinError } from './errors';

/** A node-style callback: `(err)` on failure, `(null, value)` on success. */
type NodeCallback<T> = (err: any, value?: T) => void;

/** Reports an error no caller can receive (a callback that threw) as an uncaught exception, without cutting the other callbacks short. */
function reportUncaught(e: unknown): void {
  process.nextTick(() => {
    throw e;
  });
}

/** A falsy thrown value cannot travel through a node-style callback: give it an Error that carries it. */
function asError(e: unknown, what: string): unknown {
  return e ? e : new Error(`${what} with ${String(e)}`, { cause: e });
}

/**
 * A value (or an error) that will be ready later. Inside a fiber,
 * {@link Future.wait} suspends the fiber until it is; everywhere,
 * {@link Future.resolve} takes a node-style callback.
 *
 * As in node-fibers, the state is in three public fields, absent until the
 * future resolves: `resolved` (true once resolved), `value` (what
 * `return()` gave) and `error` (what `throw()` gave).
 */
interface Future<T = any> {
  /** True once `return()` or `throw()` has been called; absent (undefined) before. */
  resolved?: boolean;
  /** The value `return()` resolved it with; absent until then. */
  value?: T;
  /** The error `throw()` resolved it with; absent until then. */
  error?: unknown;
  /** On a future made by a `Future.wrap()` function: what the wrapped function returned. */
  _?: unknown;

  /**
   * Returns the value, or throws the error, of a resolved future.
   *
   * @throws an Error if the future has not resolved yet.
   */
  get(): T;
  /** Resolves the future with `value`; every pending callback runs now. Throws if already resolved. */
  return(value?: T): void;
  /**
   * Resolves the future with an error; every pending callback runs now.
   * Throws if already resolved, or if `error` is falsy (a node-style
   * callback could not tell it from success).
   */
  throw(error: unknown): void;
  /** True once `return()` or `throw()` has been called. */
  isResolved(): boolean;
  /**
   * A node-style callback that resolves this future: `(err)` throws it,
   * `(null, value)` returns `value`.
   */
  resolver(): NodeCallback<T>;
  /**
   * Calls `callback(err, value)` once the future resolves (now, if it has).
   * With two arguments, an error goes to `errorTarget.throw(err)` and a
   * value to `callback(value)`.
   */
  resolve(callback: NodeCallback<T>): this;
  resolve(errorTarget: Future<any>, callback: (value: T) => void): this;
  /** Calls `callback(value)` if the future resolves with a value; errors are ignored. */
  resolveSuccess(callback: (value: T) => void): this;
  /** Resolves `other` the same way this future resolves. */
  proxy(other: Future<T>): void;
  /** If this future resolves with an error, throws it into `others` (one future or several). */
  proxyErrors(others: Future<any> | Array<Future<any>>): this;
  /**
   * For a future whose value nobody waits for: if it resolves with an
   * error, the error is thrown to the event loop (an uncaught exception).
   */
  detach(): void;
  /**
   * Inside a fiber, suspends the fiber until the future resolves, then
   * returns its value or throws its error. A resolved future returns (or
   * throws) at once, also outside a fiber.
   *
   * @throws `ERR_NOT_IN_COROUTINE` when the future is not resolved and no fiber is running.
   */
  wait(): T;
  /** A Promise that settles as this future resolves. */
  promise(): Promise<T>;
}

/** The `Future` export: a constructor, and node-fibers' static functions. */
interface FutureConstructor {
  /** A future nobody has resolved yet. */
  new <T = any>(): Future<T>;
  /**
   * Old-style subclassing, as node-fibers allowed: `Future.call(this)` in a
   * function constructor whose prototype inherits from `Future.prototype`.
   * (A future needs no set-up: this does nothing.)
   */
  (this: unknown): void;
  readonly prototype: Future<any>;

  /**
   * Suspends the running fiber until every future given (or in an array
   * given) has resolved. Errors are not thrown: call `get()` on each.
   *
   * @throws `ERR_NOT_IN_COROUTINE` outside a fiber; `ERR_INVALID_ARGUMENT`
   * if an argument is not a future.
   */
  wait(...futures: Array<Future<any> | Array<Future<any>>>): void;
  /**
   * Runs `fn` in a new fiber (started on the next tick) and returns a
   * future of what it returns or throws. Given several functions, runs each
   * in its own fiber and returns a future of the array of their results
   * (or of the last error one of them threw), as node-fibers did.
   */
  task<R>(fn: () => R): Future<R>;
  task(...fns: Array<() => unknown>): Future<unknown[]>;
  /**
   * Wraps a node-style function (its last parameter a callback) into one
   * that takes the same arguments without the callback and returns a
   * future (whose `_` is what the function returned). With `multi`, the
   * future's value is the array of every result after `err`.
   *
   * Given an object, returns an object inheriting from it with a
   * `<name><suffix>` future-returning version of each of its function
   * properties (`fs.readFileFuture`); a function with function properties
   * gets the same treatment for those.
   */
  wrap<A extends any[] = any[], R = any>(fn: (...args: [...A, NodeCallback<R>]) => unknown, multi?: false, suffix?: string): (...args: A) => Future<R>;
  wrap(fn: (...args: any[]) => unknown, multi: true, suffix?: string): (...args: any[]) => Future<any[]>;
  wrap<O extends object>(object: O, multi?: boolean, suffix?: string): O & Record<string, (...args: any[]) => Future<any>>;
  /** A future that resolves as `promise` settles; `Future.fromPromise(p).wait()` waits for a Promise inside a fiber. */
  fromPromise<R>(promise: PromiseLike<R> | R): Future<Awaited<R>>;
  /**
   * Installs `Function.prototype.future` (done already when this module is
   * loaded, as node-fibers did): `fn.future()` returns a function that runs
   * `fn` with the same `this` and arguments in a new fiber and returns a
   * future of its result; `fn.future(true)` also detaches that future.
   */
  installFunctionFuture(): void;
}

/** The pending callbacks of an unresolved future: a non-enumerable symbol-keyed property. */
const kCallbacks = Symbol('korutin.future.callbacks');

interface FutureState<T> extends Future<T> {
  [kCallbacks]?: Array<NodeCallback<T>>;
}

/**
 * A function, not a class, so that node-fibers-era subclasses can call
 * `Future.call(this)` (a class constructor refuses to be called). `class X
 * extends Future` works as well. A future needs no set-up: its fields appear
 * when it resolves, as in node-fibers.
 */
const Future = function Future(this: unknown): void {
  // nothing to set up
} as unknown as FutureConstructor;

function settle<T>(self: FutureState<T>, failed: boolean, value: T | undefined, error: unknown): void {
  if (failed) self.error = error;
  else self.value = value;
  self.resolved = true;
  const callbacks = self[kCallbacks];
  if (!callbacks) return;
  delete self[kCallbacks];
  for (const cb of callbacks) {
    try {
      if (failed) cb(error);
      else cb(undefined, value);
    } catch (e) {
      reportUncaught(e);
    }
  }
}

/**
 * What node-fibers' get() did to the error it rethrows: keeps the error's
 * own `stack` property as `futureStack` (not enumerable) and, where `stack`
 * is an accessor, makes it join the trace of the get() caller above the
 * error's own, split by a `    - - - - -` line. Where V8 makes `stack` a
 * plain value (Node 20), only `futureStack` appears, as with node-fibers
 * there. The error object itself is the one the future was resolved with.
 */
function linkStacks(error: unknown): void {
  if ((typeof error !== 'object' && typeof error !== 'function') || error === null) return;
  try {
    let futureStack = Object.getOwnPropertyDescriptor(error, 'futureStack');
    if (!futureStack) {
      futureStack = Object.getOwnPropertyDescriptor(error, 'stack');
      if (futureStack) Object.defineProperty(error, 'futureStack', futureStack);
    }
    const read = futureStack?.get;
    if (!read) return;
    const local: { stack?: string } = {};
    Error.captureStackTrace(local, methods.get);
    Object.defineProperty(error, 'stack', {
      get(): unknown {
        const own: unknown = read.call(error);
        if (!own) return local.stack;
        const lines = String(own).split('\n');
        return [lines[0], ...String(local.stack).split('\n').slice(1), '    - - - - -', ...lines.slice(1)].join('\n');
      },
      set(stack: unknown) {
        Object.defineProperty(error, 'stack', { value: stack, configurable: true, enumerable: false, writable: true });
      },
      configurable: true,
      enumerable: false,
    });
  } catch {
    // a frozen or exotic error keeps its stack as it is
  }
}

function alreadyResolved(): never {
  throw new KorutinError('ERR_FUTURE_RESOLVED', 'Future resolved more than once', {
    name: 'Error',
    hint: 'a future takes one return() or throw()',
  });
}

/** The methods; the data fields are own properties of a resolved future, not of the prototype. */
const methods: Omit<Future, 'resolved' | 'value' | 'error' | '_'> & ThisType<FutureState<any>> = {
  get(this: FutureState<any>): any {
    if (!this.resolved) {
      throw new KorutinError('ERR_FUTURE_UNRESOLVED', 'Future must resolve before value is ready', {
        name: 'Error',
        hint: 'wait() for it (inside a fiber) or use resolve(callback)',
      });
    }
    if (this.error) {
      linkStacks(this.error);
      throw this.error;
    }
    return this.value;
  },

  return(this: FutureState<any>, value?: any): void {
    if (this.resolved) alreadyResolved();
    settle(this, false, value, undefined);
  },

  throw(this: FutureState<any>, error: unknown): void {
    if (this.resolved) alreadyResolved();
    if (!error) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', 'Must throw non-empty error', {
        name: 'Error',
        hint: `Future.throw() needs a truthy error (a node-style callback could not tell ${String(error)} from success), got ${String(error)}`,
      });
    }
    settle(this, true, undefined, error);
  },

  isResolved(this: FutureState<any>): boolean {
    return this.resolved === true;
  },

  resolver(this: FutureState<any>): NodeCallback<any> {
    return (err, value) => {
      if (err) this.throw(err);
      else this.return(value);
    };
  },

  resolve(this: FutureState<any>, first: NodeCallback<any> | Future<any>, second?: (value: any) => void): any {
    let cb: NodeCallback<any>;
    if (second !== undefined) {
      if (!(first instanceof Future) || typeof second !== 'function') {
        throw new KorutinError('ERR_INVALID_ARGUMENT', 'resolve(future, callback) needs a Future and a function');
      }
      const target = first;
      cb = (err, value) => (err ? target.throw(err) : second(value));
    } else {
      if (typeof first !== 'function') throw new KorutinError('ERR_INVALID_ARGUMENT', 'resolve(callback) needs a function');
      cb = first as NodeCallback<any>;
    }
    if (this.resolved) {
      if (this.error) cb(this.error);
      else cb(undefined, this.value);
    } else {
      let callbacks = this[kCallbacks];
      if (!callbacks) {
        callbacks = [];
        Object.defineProperty(this, kCallbacks, { value: callbacks, writable: true, configurable: true, enumerable: false });
      }
      callbacks.push(cb);
    }
    return this;
  },

  resolveSuccess(this: FutureState<any>, callback: (value: any) => void): any {
    return this.resolve((err, value) => {
      if (!err) callback(value);
    });
  },

  proxy(this: FutureState<any>, other: Future<any>): void {
    this.resolve((err, value) => (err ? other.throw(err) : other.return(value)));
  },

  proxyErrors(this: FutureState<any>, others: Future<any> | Array<Future<any>>): any {
    return this.resolve((err) => {
      if (!err) return;
      for (const f of Array.isArray(others) ? others : [others]) f.throw(err);
    });
  },

  detach(this: FutureState<any>): void {
    this.resolve((err) => {
      if (err) throw err;
    });
  },

  wait(this: FutureState<any>): any {
    if (!this.isResolved()) Future.wait(this);
    return this.get();
  },

  promise(this: FutureState<any>): Promise<any> {
    return new Promise<any>((resolve, reject) => {
      this.resolve((err, value) => (err ? reject(err) : resolve(value)));
    });
  },
};

for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Future.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });
}

const statics: Omit<FutureConstructor, 'prototype'> = {
  wait(...futures: Array<Future<any> | Array<Future<any>>>): void {
    const pending: Array<Future<any>> = [];
    const add = (f: unknown): void => {
      if (!(f instanceof Future)) throw new KorutinError('ERR_INVALID_ARGUMENT', `${String(f)} is not a future`, { name: 'Error' });
      if (!f.isResolved()) pending.push(f);
    };
    for (const arg of futures) {
      if (Array.isArray(arg)) arg.forEach(add);
      else add(arg);
    }
    const waiting = arm(pending);
    while (waiting.pending > 0) {
      waiting.suspended = true;
      try {
        Fiber.yield();
      } finally {
        waiting.suspended = false;
      }
    }
  },

  task(...fns: Array<() => unknown>): any {
    for (const fn of fns) {
      if (typeof fn !== 'function') throw new KorutinError('ERR_INVALID_ARGUMENT', 'Future.task(fn) needs a function');
    }
    if (fns.length === 1) return startTask(fns[0], undefined, []);
    if (fns.length === 0) throw new KorutinError('ERR_INVALID_ARGUMENT', 'Future.task(fn) needs a function');
    const all = new Future<unknown[]>();
    const values = new Array<unknown>(fns.length);
    let pending = fns.length;
    let error: unknown;
    fns.forEach((fn, i) => {
      startTask(fn, undefined, []).resolve((err, value) => {
        if (err) error = err;
        values[i] = value;
        if (--pending === 0) {
          if (error) all.throw(error);
          else all.return(values);
        }
      });
    });
    return all;
  },

  wrap(target: unknown, multi = false, suffix = 'Future'): any {
    if (typeof target === 'function') return wrapFunction(target as (...args: unknown[]) => unknown, multi, suffix, true);
    if (typeof target === 'object' && target !== null) return wrapObject(target, multi, suffix);
    throw new KorutinError('ERR_INVALID_ARGUMENT', `Future.wrap() needs a function or an object, got ${target === null ? 'null' : typeof target}`);
  },

  fromPromise<R>(promise: PromiseLike<R> | R): Future<Awaited<R>> {
    const f = new Future<Awaited<R>>();
    Promise.resolve(promise).then(
      (value) => f.return(value),
      (err) => f.throw(asError(err, 'the promise was rejected')),
    );
    return f;
  },

  installFunctionFuture(): void {
    Object.defineProperty(Function.prototype, 'future', {
      value: functionFuture,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  },
};
for (const [name, fn] of Object.entries(statics)) {
  Object.defineProperty(Future, name, { value: fn, writable: true, configurable: true, enumerable: false });
}

/**
 * The bookkeeping of one `Future.wait()`. The futures' callbacks hold the
 * waiting fiber (whoever can resolve a future can resume it). A fiber waiting
 * on a future nobody will resolve stays in memory, as in node-fibers: its own
 * suspended stack holds that future.
 */
interface Waiting {
  pending: number;
  /** True while the fiber is suspended in this wait (so only then does the last callback resume it). */
  suspended: boolean;
}

function arm(pending: Array<Future<any>>): Waiting {
  const fiber = Fiber.current;
  if (!fiber) {
    throw new KorutinError('ERR_NOT_IN_COROUTINE', "Can't wait without a fiber", {
      name: 'Error',
      hint: 'call wait() inside a Fiber (for example in Future.task(fn))',
    });
  }
  const waiting: Waiting = { pending: pending.length, suspended: false };
  const onResolved = (): void => {
    if (--waiting.pending === 0 && waiting.suspended) {
      waiting.suspended = false;
      fiber.run();
    }
  };
  for (const f of pending) f.resolve(onResolved);
  return waiting;
}

/** Runs `fn` in its own fiber on the next tick; the future gets its result. */
function startTask<R>(fn: (...args: any[]) => R, self: unknown, args: unknown[]): Future<R> {
  const future = new Future<R>();
  process.nextTick(() => {
    Fiber(() => {
      let value: R;
      try {
        value = fn.apply(self, args);
      } catch (e) {
        future.throw(asError(e, 'the task threw'));
        return;
      }
      future.return(value);
    }).run();
  });
  return future;
}

function functionFuture<A extends any[], R>(this: (...args: A) => R, detach?: boolean): (...args: A) => Future<R> {
  const fn = this;
  if (typeof fn !== 'function') throw new KorutinError('ERR_INVALID_ARGUMENT', 'future() must be called on a function');
  const ret = function (this: unknown, ...args: A): Future<R> {
    const f = startTask(fn, this, args);
    if (detach) f.detach();
    return f;
  };
  ret.toString = () => `<<Future ${String(fn)}.future()>>`;
  return ret;
}

function wrapFunction(fn: (...args: unknown[]) => unknown, multi: boolean, suffix: string, withProperties: boolean): (...args: unknown[]) => Future<unknown> {
  const wrapped = function (this: unknown, ...args: unknown[]): Future<unknown> {
    const future = new Future<unknown>();
    const resolve = future.resolver();
    args.push(multi ? (err: unknown, ...results: unknown[]) => resolve(err, results) : resolve);
    future._ = fn.apply(this, args);
    return future;
  };
  // Modules that export a function with more functions on it (`request.get`): wrap those too.
  if (withProperties && Object.keys(fn).some((k) => typeof (fn as unknown as Record<string, unknown>)[k] === 'function')) {
    Object.setPrototypeOf(wrapped, wrapObject(fn, multi, suffix));
  }
  return wrapped;
}

function wrapObject(target: object, multi: boolean, suffix: string): Record<string, unknown> {
  const out = Object.create(target) as Record<string, unknown>;
  for (const key in target) {
    let value: unknown;
    try {
      value = (target as Record<string, unknown>)[key];
    } catch {
      continue; // a throwing getter is not a method
    }
    if (typeof value === 'function') out[key + suffix] = wrapFunction(value as (...args: unknown[]) => unknown, multi, suffix, false);
  }
  return out;
}

declare global {
  interface Function {
    /**
     * Installed by `korutin/future` (as by node-fibers' `fibers/future`):
     * a version of this function that runs it in a new fiber and returns a
     * future of its result. With `detach`, an error is thrown to the event
     * loop instead of waiting in the future.
     */
    future<A extends any[], R>(this: (...args: A) => R, detach?: boolean): (...args: A) => Future<R>;
  }
}

Future.installFunctionFuture();

export = Future;
