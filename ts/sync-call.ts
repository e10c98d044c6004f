/**
 * `ko.sync(asyncFn)`: any async API, called blocking-style from a task.
 */
import { KorutinError } from './errors';
import { self } from './sched/driver';
import { awaitPromise } from './sched/ops';

/** What {@link sync} makes of `F`: the same parameters, the awaited result. */
export type SyncFunction<F extends (...args: any[]) => unknown> = (...args: Parameters<F>) => Awaited<ReturnType<F>>;

/**
 * Returns a function that calls `asyncFn` and, inside a task, suspends only
 * that task until the returned promise settles: it returns the value, or
 * throws the rejection there. Called outside a task it throws
 * `ERR_NOT_IN_COROUTINE` before calling `asyncFn`. `this` is passed on, so
 * `sync(obj.method).call(obj, ...)` works (or bind it first). For an
 * overloaded function TypeScript sees its last overload: wrap it in an arrow
 * of the signature you use, e.g. `sync((f: string) => fs.readFile(f, 'utf8'))`.
 */
export function sync<F extends (...args: any[]) => unknown>(asyncFn: F): SyncFunction<F> {
  if (typeof asyncFn !== 'function') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `sync(fn): fn must be a function returning a promise, got ${typeof asyncFn}`);
  }
  const what = `sync(${asyncFn.name || 'anonymous'})()`;
  const blocking = function (this: unknown, ...args: Parameters<F>): Awaited<ReturnType<F>> {
    self(what);
    return awaitPromise(asyncFn.apply(this, args)) as Awaited<ReturnType<F>>;
  };
  Object.defineProperty(blocking, 'name', { value: `sync ${asyncFn.name || 'anonymous'}` });
  return blocking;
}
