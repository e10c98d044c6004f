/**
 * korutin/future: node-fibers' documented Future API, on every backend.
 */
import { strict as assert } from 'assert';
import { AsyncLocalStorage } from 'async_hooks';
import * as fs from 'fs';
import * as path from 'path';
import Fiber = require('../ts/fibers');
import Future = require('../ts/future');
import { onEveryBackend, repoRoot, turn } from './fixtures/fibers-support';

/** Runs `body` in a new fiber and resolves with what it returns (or rejects with what it throws). */
function inFiber<T>(body: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    Fiber(() => {
      try {
        resolve(body());
      } catch (e) {
        reject(e);
      }
    }).run();
  });
}

/** A future resolved by a timer: with `value`, or with `error` when given. */
function later<T>(ms: number, value: T, error?: Error): Future<T> {
  const f = new Future<T>();
  setTimeout(() => (error ? f.throw(error) : f.return(value)), ms);
  return f;
}

/** Swaps mocha's uncaught-exception handler for a collector while `trigger` runs and the event loop turns. */
async function captureUncaught(trigger: () => void, expected: number): Promise<unknown[]> {
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const caught: unknown[] = [];
  const collect = (e: unknown): void => void caught.push(e);
  process.on('uncaughtException', collect);
  try {
    trigger();
    for (let i = 0; i < 20 && caught.length < expected; i++) await turn();
    await turn();
  } finally {
    process.removeListener('uncaughtException', collect);
    for (const l of saved) process.on('uncaughtException', l);
  }
  return caught;
}

/** A node-style function with a callback as last argument. */
function addLater(a: number, b: number, cb: (err: Error | null, sum?: number) => void): void {
  setImmediate(() => (a < 0 ? cb(new Error('negative')) : cb(null, a + b)));
}

describe('korutin/future: the module', function () {
  it('is what require("korutin/future") returns (the package exports map)', function () {
    const viaPackage: unknown = require('korutin/future');
    assert.equal(viaPackage, Future);
    assert.ok(new Future() instanceof Future);
  });

  it('installs Function.prototype.future on require, as node-fibers did (not enumerable)', function () {
    assert.equal(typeof (function () {}).future, 'function');
    const d = Object.getOwnPropertyDescriptor(Function.prototype, 'future');
    assert.ok(d && d.enumerable === false);
  });

  it('installFunctionFuture() installs it again after something removed it', function () {
    const saved = Object.getOwnPropertyDescriptor(Function.prototype, 'future')!;
    try {
      delete (Function.prototype as { future?: unknown }).future;
      assert.equal(typeof (() => 1).future, 'undefined');
      Future.installFunctionFuture();
      assert.equal(typeof (() => 1).future, 'function');
    } finally {
      Object.defineProperty(Function.prototype, 'future', saved);
    }
  });
});

onEveryBackend('Future', function () {
  it('return(v) resolves it: isResolved() turns true and get() returns v', function () {
    const f = new Future<number>();
    assert.equal(f.isResolved(), false);
    f.return(7);
    assert.equal(f.isResolved(), true);
    assert.equal(f.get(), 7);
    assert.equal(f.get(), 7);
  });

  it('throw(err) resolves it with an error that get() rethrows', function () {
    const err = new Error('nope');
    const f = new Future();
    f.throw(err);
    assert.equal(f.isResolved(), true);
    assert.throws(() => f.get(), (e: unknown) => e === err);
  });

  it('get() throws before it is resolved', function () {
    assert.throws(() => new Future().get(), /must resolve/);
  });

  it('resolves only once, and refuses a falsy error', function () {
    const f = new Future();
    f.return(1);
    assert.throws(() => f.return(2), /more than once/);
    assert.throws(() => f.throw(new Error('x')), /more than once/);
    assert.equal(f.get(), 1);
    for (const falsy of [undefined, null, 0, '']) assert.throws(() => new Future().throw(falsy));
  });

  it('resolve(cb) calls back node-style when it resolves, in order, or at once if resolved already', function () {
    const calls: unknown[][] = [];
    const ok = new Future<string>();
    assert.equal(ok.resolve((...args) => calls.push(['first', ...args])), ok);
    ok.resolve((...args) => calls.push(['second', ...args]));
    assert.equal(calls.length, 0);
    ok.return('v');
    ok.resolve((...args) => calls.push(['third', ...args]));
    const err = new Error('e');
    const bad = new Future();
    bad.resolve((...args) => calls.push(['bad', ...args]));
    bad.throw(err);
    assert.deepEqual(calls, [['first', undefined, 'v'], ['second', undefined, 'v'], ['third', undefined, 'v'], ['bad', err]]);
  });

  it('resolve(errorFuture, cb) sends a value to cb and an error to errorFuture', function () {
    const values: unknown[] = [];
    const sink = new Future();
    const ok = new Future<number>();
    ok.resolve(sink, (v) => values.push(v));
    ok.return(3);
    assert.deepEqual(values, [3]);
    assert.equal(sink.isResolved(), false);
    const err = new Error('to the sink');
    const bad = new Future<number>();
    bad.resolve(sink, (v) => values.push(v));
    bad.throw(err);
    assert.deepEqual(values, [3]);
    assert.throws(() => sink.get(), (e: unknown) => e === err);
  });

  it('resolveSuccess(cb) calls cb with the value, and not at all on an error', function () {
    const values: unknown[] = [];
    const ok = new Future<string>();
    assert.equal(ok.resolveSuccess((v) => values.push(v)), ok);
    ok.return('yes');
    const bad = new Future<string>();
    bad.resolveSuccess((v) => values.push(v));
    bad.throw(new Error('no'));
    assert.deepEqual(values, ['yes']);
  });

  it('resolver() is a node-style callback that resolves it', function () {
    const ok = new Future<number>();
    ok.resolver()(null, 5);
    assert.equal(ok.get(), 5);
    const err = new Error('cb error');
    const bad = new Future<number>();
    bad.resolver()(err);
    assert.throws(() => bad.get(), (e: unknown) => e === err);
  });

  it('a callback that throws does not stop the others; its error becomes an uncaught exception', async function () {
    const boom = new Error('from a callback');
    const ran: string[] = [];
    const caught = await captureUncaught(() => {
      const f = new Future();
      f.resolve(() => {
        ran.push('a');
        throw boom;
      });
      f.resolve(() => void ran.push('b'));
      f.return(1);
    }, 1);
    assert.deepEqual(ran, ['a', 'b']);
    assert.deepEqual(caught, [boom]);
  });

  it('proxy(other) resolves other the same way, value or error', function () {
    const a = new Future<number>();
    const b = new Future<number>();
    a.proxy(b);
    a.return(9);
    assert.equal(b.get(), 9);
    const err = new Error('proxied');
    const c = new Future<number>();
    const d = new Future<number>();
    c.proxy(d);
    c.throw(err);
    assert.throws(() => d.get(), (e: unknown) => e === err);
  });

  it('proxyErrors(f or [f, g]) passes on errors only', function () {
    const ok = new Future<number>();
    const untouched = new Future();
    assert.equal(ok.proxyErrors(untouched), ok);
    ok.return(1);
    assert.equal(untouched.isResolved(), false);
    const err = new Error('spread');
    const bad = new Future<number>();
    const [f, g] = [new Future(), new Future()];
    bad.proxyErrors([f, g]);
    bad.throw(err);
    for (const x of [f, g]) assert.throws(() => x.get(), (e: unknown) => e === err);
  });

  it('detach(): an error nobody waits for becomes an uncaught exception', async function () {
    const err = new Error('detached failure');
    const caught = await captureUncaught(() => {
      const failing = new Future();
      const fine = new Future();
      failing.detach();
      fine.detach();
      fine.return(1);
      failing.throw(err);
    }, 1);
    assert.deepEqual(caught, [err]);
  });

  it('wait() inside a fiber suspends it until a timer resolves the future, then returns the value', async function () {
    const order: string[] = [];
    const done = inFiber(() => {
      order.push('waiting');
      const v = later(3, 'value').wait();
      order.push(`got ${v}`);
      return v;
    });
    order.push('main goes on');
    assert.equal(await done, 'value');
    assert.deepEqual(order, ['waiting', 'main goes on', 'got value']);
  });

  it('wait() throws the error the future was resolved with', async function () {
    const err = new Error('late failure');
    await assert.rejects(inFiber(() => later(1, 0, err).wait()), (e: unknown) => e === err);
  });

  it('wait() resumes when I/O resolves the future', async function () {
    const self = path.join(repoRoot, 'package.json');
    const text = await inFiber(() => {
      const f = new Future<string>();
      fs.readFile(self, 'utf8', f.resolver());
      return f.wait();
    });
    assert.equal(JSON.parse(text).name, 'korutin');
  });

  it('wait() outside a fiber throws when it would have to suspend, and returns a resolved value', function () {
    assert.throws(() => new Future().wait(), (e: unknown) => (e as { code?: string }).code === 'ERR_NOT_IN_COROUTINE');
    const f = new Future<number>();
    f.return(4);
    assert.equal(f.wait(), 4);
  });

  it('Future.wait(f1, f2) and Future.wait([f1, f2]) suspend until all resolve, and do not throw their errors', async function () {
    const err = new Error('kept in the future');
    const results = await inFiber(() => {
      const a = later(4, 'a');
      const b = later(1, 'b', err);
      const c = later(2, 'c');
      Future.wait(a, b);
      const firstWait = [a.isResolved(), b.isResolved()];
      Future.wait([c, a], [b]);
      return { firstWait, c: c.get(), a: a.get(), bThrows: (() => { try { b.get(); return false; } catch (e) { return e === err; } })() };
    });
    assert.deepEqual(results, { firstWait: [true, true], c: 'c', a: 'a', bThrows: true });
  });

  it('Future.wait() on resolved futures returns without suspending the fiber', function () {
    const a = new Future();
    a.return(1);
    const fiber = Fiber(() => {
      Future.wait(a, [a]);
      return 'did not yield';
    });
    assert.equal(fiber.run(), 'did not yield');
  });

  it('Future.wait() throws outside a fiber, and when given something that is not a future', async function () {
    assert.throws(() => Future.wait(new Future()), (e: unknown) => (e as { code?: string }).code === 'ERR_NOT_IN_COROUTINE');
    await assert.rejects(inFiber(() => Future.wait([new Future(), 42 as unknown as Future])), /is not a future/);
  });

  it('a waiting fiber keeps waiting when run() is called on it before its futures resolve', async function () {
    const f = new Future<string>();
    let fiber: Fiber | undefined;
    const done = inFiber(() => {
      fiber = Fiber.current;
      return f.wait();
    });
    assert.equal(fiber!.run('too early'), undefined);
    assert.equal(f.isResolved(), false);
    f.return('on time');
    assert.equal(await done, 'on time');
  });

  it('a fiber waiting on a future can be interrupted with throwInto()', async function () {
    const stop = new Error('stop waiting');
    let fiber: Fiber | undefined;
    const f = new Future<number>();
    const done = inFiber(() => {
      fiber = Fiber.current;
      return f.wait();
    });
    assert.equal(fiber!.throwInto(stop), undefined, 'the fiber caught it (inFiber) and finished');
    assert.equal(fiber!.started, false);
    await assert.rejects(done, (e: unknown) => e === stop);
    f.return(1); // resolving later must not try to resume the finished fiber
  });

  it('Future.task(fn) runs fn in a new fiber (after the current call), returning a future of its result', async function () {
    const order: string[] = [];
    let taskFiber: unknown;
    const t = Future.task(() => {
      order.push('task runs');
      taskFiber = Fiber.current;
      return later(1, 'task result').wait();
    });
    order.push('task() returned');
    assert.ok(t instanceof Future);
    assert.equal(t.isResolved(), false);
    assert.equal(await t.promise(), 'task result');
    assert.deepEqual(order, ['task() returned', 'task runs']);
    assert.ok(taskFiber instanceof Fiber);
  });

  it('Future.task(fn) resolves with what fn throws, and can be waited on from another fiber', async function () {
    const err = new Error('task failed');
    const got = await inFiber(() => {
      const mine = Fiber.current;
      const t = Future.task(() => {
        if (Fiber.current === mine) return 'same fiber';
        throw err;
      });
      try {
        return t.wait();
      } catch (e) {
        return e === err ? 'rethrown by wait' : String(e);
      }
    });
    assert.equal(got, 'rethrown by wait');
  });

  it('fn.future() returns a function that runs fn in a fiber with the same this and arguments', async function () {
    const obj = {
      base: 10,
      add: function (this: { base: number }, a: number, b: number): number {
        return this.base + a + (later(1, b).wait() as number);
      }.future(),
    };
    const f = obj.add(1, 2);
    assert.ok(f instanceof Future);
    assert.equal(await f.promise(), 13);
  });

  it('fn.future(true) detaches: an error becomes an uncaught exception', async function () {
    const err = new Error('detached task failure');
    const caught = await captureUncaught(() => {
      (function (): void {
        throw err;
      }).future(true)();
    }, 1);
    assert.deepEqual(caught, [err]);
  });

  it('Future.wrap(fn) turns a node-style function into one returning a future', async function () {
    const add = Future.wrap(addLater);
    const sums = await inFiber(() => {
      const sum = add(2, 3).wait();
      let error: unknown;
      try {
        add(-1, 3).wait();
      } catch (e) {
        error = e;
      }
      return { sum, error: (error as Error).message };
    });
    assert.deepEqual(sums, { sum: 5, error: 'negative' });
  });

  it('Future.wrap(fn, true) gives every result after err as an array, and keeps this', async function () {
    const obj = {
      tag: 'me',
      two(this: { tag: string }, x: number, cb: (err: null, a: number, b: string) => void): void {
        setImmediate(() => cb(null, x * 2, this.tag));
      },
    };
    const wrapped = { tag: 'wrapped', two: Future.wrap(obj.two, true) };
    assert.deepEqual(await inFiber(() => wrapped.two(21).wait()), [42, 'wrapped']);
  });

  it('Future.wrap(object) adds a future-returning <name>Future for each method, keeping the originals', async function () {
    const wfs = Future.wrap(fs);
    assert.equal(wfs.readFile, fs.readFile);
    assert.equal(typeof wfs.readdirFuture, 'function');
    const names = await inFiber(() => (wfs.readdirFuture(repoRoot) as Future<string[]>).wait());
    assert.ok(names.includes('package.json'));
    const text = await inFiber(() => (wfs.readFileFuture(path.join(repoRoot, 'package.json'), 'utf8') as Future<string>).wait());
    assert.equal(JSON.parse(text).name, 'korutin');
  });

  it('Future.wrap(object, multi, suffix) uses the suffix given', async function () {
    const api = { add: addLater };
    const wrapped = Future.wrap(api, false, 'Async');
    assert.equal(typeof wrapped.addAsync, 'function');
    assert.equal(wrapped.addFuture, undefined);
    assert.equal(await inFiber(() => wrapped.addAsync(1, 1).wait()), 2);
  });

  it('Future.wrap(fn) also wraps the function properties of a function (modules like request)', async function () {
    const mod = Object.assign(
      (x: number, cb: (err: null, v: string) => void) => setImmediate(() => cb(null, `main ${x}`)),
      { get: (x: number, cb: (err: null, v: string) => void) => setImmediate(() => cb(null, `get ${x}`)) },
    );
    const wrapped = Future.wrap(mod) as unknown as ((x: number) => Future<string>) & Record<string, (x: number) => Future<string>>;
    const got = await inFiber(() => [wrapped(1).wait(), wrapped.getFuture(2).wait()]);
    assert.deepEqual(got, ['main 1', 'get 2']);
    assert.equal(wrapped.get, mod.get);
  });

  it('Future.fromPromise(p).wait() waits for a Promise inside a fiber', async function () {
    const got = await inFiber(() => {
      const value = Future.fromPromise(new Promise<string>((r) => setTimeout(() => r('resolved'), 2))).wait();
      const plain = Future.fromPromise(5).wait();
      let rejected: unknown;
      try {
        Future.fromPromise(Promise.reject(new Error('rejected'))).wait();
      } catch (e) {
        rejected = (e as Error).message;
      }
      return { value, plain, rejected };
    });
    assert.deepEqual(got, { value: 'resolved', plain: 5, rejected: 'rejected' });
  });

  it('Future.fromPromise() turns a falsy rejection into an Error that carries it', async function () {
    const f = Future.fromPromise(Promise.reject(0));
    await f.promise().then(
      () => assert.fail('should reject'),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.equal((e as Error).cause, 0);
      },
    );
  });

  it('future.promise() settles like the future', async function () {
    assert.equal(await later(1, 'ok').promise(), 'ok');
    const err = new Error('bad');
    await assert.rejects(later(1, 0, err).promise(), (e: unknown) => e === err);
    const done = new Future<number>();
    done.return(8);
    assert.equal(await done.promise(), 8);
  });

  it('a fiber waiting on a future keeps its AsyncLocalStorage store; the callback that resumes it keeps its own', async function () {
    const als = new AsyncLocalStorage<string>();
    const f = new Future<string>();
    let inResolver: unknown = 'unset';
    const done = inFiber(() =>
      als.run('waiter', () => {
        const before = als.getStore();
        const value = f.wait();
        return [before, value, als.getStore()];
      }),
    );
    als.run('resolver', () =>
      setTimeout(() => {
        f.return('v');
        inResolver = als.getStore();
      }, 1),
    );
    assert.deepEqual(await done, ['waiter', 'v', 'waiter']);
    assert.equal(inResolver, 'resolver');
  });

  it('many fibers waiting on many futures all resume with their own values', async function () {
    const n = 200;
    const futures = Array.from({ length: n }, () => new Future<number>());
    const results = Array.from({ length: n }, (_, i) => Future.task(() => futures[i].wait() * 2));
    await turn();
    futures.forEach((f, i) => setTimeout(() => f.return(i), (n - i) % 5));
    const values = await Promise.all(results.map((r) => r.promise()));
    assert.deepEqual(values, Array.from({ length: n }, (_, i) => i * 2));
  });
});
