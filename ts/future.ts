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
 */
class Future<T = any> {
  #resolved = false;
  #failed = false;
  #value: T | undefined = undefined;
  #error: unknown = undefined;
  #callbacks: Array<NodeCallback<T>> | null = null;

  /**
   * Returns the value, or throws the error, of a resolved future.
   *
   * @throws an Error if the future has not resolved yet.
   */
  get(): T {
    if (!this.#resolved) throw new KorutinError('ERR_FUTURE_UNRESOLVED', 'Future must resolve before value is ready: wait() for it (inside a fiber) or use resolve(callback)');
    if (this.#failed) throw this.#error;
    return this.#value as T;
  }

  /** Resolves the future with `value`; every pending callback runs now. Throws if already resolved. */
  return(value?: T): void {
    this.#settle(false, value, undefined);
  }

  /**
   * Resolves the future with an error; every pending callback runs now.
   * Throws if already resolved, or if `error` is falsy (a node-style
   * callback could not tell it from success).
   */
  throw(error: unknown): void {
    if (!error) throw new KorutinError('ERR_INVALID_ARGUMENT', `Future.throw() needs a truthy error, got ${String(error)}`);
    this.#settle(true, undefined, error);
  }

  #settle(failed: boolean, value: T | undefined, error: unknown): void {
    if (this.#resolved) throw new KorutinError('ERR_FUTURE_RESOLVED', 'Future resolved more than once: a future takes one return() or throw()');
    this.#resolved = true;
    this.#failed = failed;
    this.#value = value;
    this.#error = error;
    const callbacks = this.#callbacks;
    this.#callbacks = null;
    if (!callbacks) return;
    for (const cb of callbacks) {
      try {
        if (failed) cb(error);
        else cb(undefined, value);
      } catch (e) {
        reportUncaught(e);
      }
    }
  }

  /** True once `return()` or `throw()` has been called. */
  isResolved(): boolean {
    return this.#resolved;
  }

  /**
   * A node-style callback that resolves this future: `(err)` throws it,
   * `(null, value)` returns `value`.
   */
  resolver(): NodeCallback<T> {
    return (err, value) => {
      if (err) this.throw(err);
      else this.return(value);
    };
  }

  /**
   * Calls `callback(err, value)` once the future resolves (now, if it has).
   * With two arguments, an error goes to `errorTarget.throw(err)` and a
   * value to `callback(value)`.
   */
  resolve(callback: NodeCallback<T>): this;
  resolve(errorTarget: Future<any>, callback: (value: T) => void): this;
  resolve(first: NodeCallback<T> | Future<any>, second?: (value: T) => void): this {
    let cb: NodeCallback<T>;
    if (second !== undefined) {
      if (!(first instanceof Future) || typeof second !== 'function') {
        throw new KorutinError('ERR_INVALID_ARGUMENT', 'resolve(future, callback) needs a Future and a function');
      }
      const target = first;
      cb = (err, value) => (err ? target.throw(err) : second(value as T));
    } else {
      if (typeof first !== 'function') throw new KorutinError('ERR_INVALID_ARGUMENT', 'resolve(callback) needs a function');
      cb = first;
    }
    if (this.#resolved) {
      if (this.#failed) cb(this.#error);
      else cb(undefined, this.#value);
    } else {
      (this.#callbacks ??= []).push(cb);
    }
    return this;
  }

  /** Calls `callback(value)` if the future resolves with a value; errors are ignored. */
  resolveSuccess(callback: (value: T) => void): this {
    return this.resolve((err, value) => {
      if (!err) callback(value as T);
    });
  }

  /** Resolves `other` the same way this future resolves. */
  proxy(other: Future<T>): void {
    this.resolve((err, value) => (err ? other.throw(err) : other.return(value)));
  }

  /** If this future resolves with an error, throws it into `others` (one future or several). */
  proxyErrors(others: Future<any> | Array<Future<any>>): this {
    return this.resolve((err) => {
      if (!err) return;
      for (const f of Array.isArray(others) ? others : [others]) f.throw(err);
    });
  }

  /**
   * For a future whose value nobody waits for: if it resolves with an
   * error, the error is thrown to the event loop (an uncaught exception).
   */
  detach(): void {
    this.resolve((err) => {
      if (err) throw err;
    });
  }

  /**
   * Inside a fiber, suspends the fiber until the future resolves, then
   * returns its value or throws its error. A resolved future returns (or
   * throws) at once, also outside a fiber.
   *
   * @throws `ERR_NOT_IN_COROUTINE` when the future is not resolved and no fiber is running.
   */
  wait(): T {
    if (!this.#resolved) Future.wait(this);
    return this.get();
  }

  /** A Promise that settles as this future resolves. */
  promise(): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.resolve((err, value) => (err ? reject(err) : resolve(value as T)));
    });
  }

  /**
   * Suspends the running fiber until every future given (or in an array
   * given) has resolved. Errors are not thrown: call `get()` on each.
   *
   * @throws `ERR_NOT_IN_COROUTINE` outside a fiber; `ERR_INVALID_ARGUMENT`
   * if an argument is not a future.
   */
  static wait(...futures: Array<Future<any> | Array<Future<any>>>): void {
    const pending: Array<Future<any>> = [];
    const add = (f: unknown): void => {
      if (!(f instanceof Future)) throw new KorutinError('ERR_INVALID_ARGUMENT', `${String(f)} is not a future`);
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
  }

  /**
   * Runs `fn` in a new fiber (started on the next tick) and returns a
   * future of what it returns or throws.
   */
  static task<R>(fn: () => R): Future<R> {
    if (typeof fn !== 'function') throw new KorutinError('ERR_INVALID_ARGUMENT', 'Future.task(fn) needs a function');
    return startTask(fn, undefined, []);
  }

  /**
   * Wraps a node-style function (its last parameter a callback) into one
   * that takes the same arguments without the callback and returns a
   * future. With `multi`, the future's value is the array of every result
   * after `err`.
   *
   * Given an object, returns an object inheriting from it with a
   * `<name><suffix>` future-returning version of each of its function
   * properties (`fs.readFileFuture`); a function with function properties
   * gets the same treatment for those.
   */
  static wrap<A extends any[] = any[], R = any>(fn: (...args: [...A, NodeCallback<R>]) => unknown, multi?: false, suffix?: string): (...args: A) => Future<R>;
  static wrap(fn: (...args: any[]) => unknown, multi: true, suffix?: string): (...args: any[]) => Future<any[]>;
  static wrap<O extends object>(object: O, multi?: boolean, suffix?: string): O & Record<string, (...args: any[]) => Future<any>>;
  static wrap(target: unknown, multi = false, suffix = 'Future'): unknown {
    if (typeof target === 'function') return wrapFunction(target as (...args: unknown[]) => unknown, multi, suffix, true);
    if (typeof target === 'object' && target !== null) return wrapObject(target, multi, suffix);
    throw new KorutinError('ERR_INVALID_ARGUMENT', `Future.wrap() needs a function or an object, got ${target === null ? 'null' : typeof target}`);
  }

  /** A future that resolves as `promise` settles; `Future.fromPromise(p).wait()` waits for a Promise inside a fiber. */
  static fromPromise<R>(promise: PromiseLike<R> | R): Future<Awaited<R>> {
    const f = new Future<Awaited<R>>();
    Promise.resolve(promise).then(
      (value) => f.return(value),
      (err) => f.throw(asError(err, 'the promise was rejected')),
    );
    return f;
  }

  /**
   * Installs `Function.prototype.future` (done already when this module is
   * loaded, as node-fibers did): `fn.future()` returns a function that runs
   * `fn` with the same `this` and arguments in a new fiber and returns a
   * future of its result; `fn.future(true)` also detaches that future.
   */
  static installFunctionFuture(): void {
    Object.defineProperty(Function.prototype, 'future', {
      value: functionFuture,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
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
    throw new KorutinError('ERR_NOT_IN_COROUTINE', "Can't wait without a fiber: call wait() inside a Fiber (for example in Future.task(fn))");
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
  return function (this: unknown, ...args: A): Future<R> {
    const f = startTask(fn, this, args);
    if (detach) f.detach();
    return f;
  };
}

function wrapFunction(fn: (...args: unknown[]) => unknown, multi: boolean, suffix: string, withProperties: boolean): (...args: unknown[]) => Future<unknown> {
  const wrapped = function (this: unknown, ...args: unknown[]): Future<unknown> {
    const future = new Future<unknown>();
    const resolve = future.resolver();
    args.push(multi ? (err: unknown, ...results: unknown[]) => resolve(err, results) : resolve);
    fn.apply(this, args);
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
