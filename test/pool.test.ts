/**
 * The pool of finished coroutines: a coroutine that finishes keeps its
 * stack and its V8 thread (id, archived thread state, stack limit) for the
 * next create() of the same backend and sizes. These tests prove that
 * reuse really happens, that nothing of one use shows in the next (locals,
 * async context, Fiber.current, the stack limit, exceptions, termination),
 * and that the pool stays within its limit and gives its memory back.
 */
import { strict as assert } from 'assert';
import { AsyncLocalStorage, executionAsyncId } from 'async_hooks';
import * as vm from 'vm';
import Fiber = require('../ts/fibers');
import { createEngine, Engine } from '../ts';
import { native } from '../ts/native';
import { gc, testBackends, until } from './helpers';

const FIBERS_ENGINE = Symbol.for('korutin.fibers.engine');

/** Runs fn and asserts that create() took one coroutine from the pool for it. */
function reusing<R>(fn: () => R): R {
  const before = native.pool_info().reused;
  const r = fn();
  assert.ok(native.pool_info().reused > before, 'the coroutine came from the pool');
  return r;
}

/** How deep `depth` recurses before V8's RangeError, inside a coroutine of ko. */
function maxDepth(ko: Engine): number {
  return ko.create(() => {
    let n = 0;
    const down = (): void => {
      n++;
      down();
    };
    try {
      down();
    } catch (e) {
      assert.ok(e instanceof RangeError, String(e));
    }
    return n;
  }).resume().value as number;
}

for (const backend of testBackends()) {
  describe(`pool of finished coroutines [${backend}]`, () => {
    // An engine of its own (sizes no other suite uses), so that what is in
    // its pool comes from this suite.
    const ko = createEngine({ backend, stackSize: '320k', poolSize: 64 });

    beforeEach(() => {
      native.trim_pool();
      ko.create(() => 0).resume(); // leaves one coroutine in the pool
    });

    it('a finished coroutine is reused by the next create() (its stack and V8 thread kept)', () => {
      const info = native.pool_info();
      assert.ok(info.idle >= 1);
      const value = reusing(() => ko.create((x: number) => x * 2).resume(21).value);
      assert.equal(value, 42);
      // reused again and again: no new native coroutine is made
      const fresh = native.pool_info().fresh;
      for (let i = 0; i < 100; i++) assert.equal(ko.create(() => i).resume().value, i);
      assert.equal(native.pool_info().fresh, fresh);
    });

    it('no locals, arguments or this of the last use show in the next', () => {
      const leaky = ko.create(function (this: unknown, secret: string) {
        const local = { secret };
        (globalThis as { lastLocal?: unknown }).lastLocal = undefined; // nothing kept on purpose
        return [local.secret, this];
      });
      assert.deepEqual(leaky.resume('s3cret').value, ['s3cret', undefined]);
      const seen = reusing(() =>
        ko.create(function (this: unknown, ...args: unknown[]) {
          return { args, self: this, n: arguments.length };
        }).resume().value,
      );
      assert.deepEqual(seen, { args: [undefined], self: undefined, n: 1 });
    });

    it('the async context (AsyncLocalStorage, async ids) is the new creator’s, not the last use’s', () => {
      const als = new AsyncLocalStorage<string>();
      // the last use changes its store inside and finishes
      assert.equal(
        als.run('first', () => ko.create(() => { const s = als.getStore(); als.enterWith('left behind'); return s; }).resume().value),
        'first',
      );
      assert.equal(als.getStore(), undefined, 'the resumer keeps its own store');
      const outside = reusing(() => ko.create(() => als.getStore() ?? 'none').resume().value);
      assert.equal(outside, 'none');
      const inside = als.run('second', () => reusing(() => ko.create(() => als.getStore()).resume().value));
      assert.equal(inside, 'second');
      // its async id is its own resource's, and the resumer's comes back
      const here = executionAsyncId();
      const ids = reusing(() => ko.create(() => executionAsyncId()).resume().value) as number;
      assert.notEqual(ids, here);
      assert.equal(executionAsyncId(), here);
    });

    it('the async context of a task run on a pooled coroutine is its own (tasks, chains)', async () => {
      const als = new AsyncLocalStorage<number>();
      const seen: Array<number | undefined> = [];
      for (let i = 0; i < 5; i++) {
        await als.run(i, () => ko.spawn(() => { ko.yieldNow(); seen.push(als.getStore()); als.enterWith(-1); }).toPromise());
      }
      assert.deepEqual(seen, [0, 1, 2, 3, 4]);
      assert.ok(native.pool_info().reused > 0);
    });

    it('Fiber.current is the new fiber (and nothing in a plain coroutine) after a fiber finished on the same coroutine', () => {
      const before = (Fiber as unknown as Record<symbol, unknown>)[FIBERS_ENGINE];
      (Fiber as unknown as Record<symbol, unknown>)[FIBERS_ENGINE] = ko;
      try {
        const a = Fiber(() => Fiber.current);
        assert.equal(a.run(), a);
        const b = Fiber(() => Fiber.current);
        assert.equal(reusing(() => b.run()), b);
        assert.equal(Fiber.current, undefined);
        assert.equal(reusing(() => ko.create(() => Fiber.current ?? 'none').resume().value), 'none');
        assert.throws(() => reusing(() => ko.create(() => Fiber.yield()).resume()), /no fiber running/);
      } finally {
        (Fiber as unknown as Record<symbol, unknown>)[FIBERS_ENGINE] = before;
      }
    });

    it('the stack limit is the coroutine’s own after reuse, also after a stack overflow', () => {
      native.trim_pool();
      const fresh = maxDepth(ko); // on a new coroutine
      assert.ok(fresh > 100);
      const again = reusing(() => maxDepth(ko)); // on the one that overflowed
      const third = reusing(() => maxDepth(ko));
      for (const d of [again, third]) {
        assert.ok(d > fresh * 0.75 && d < fresh * 1.34, `depth ${d} against ${fresh} on a fresh coroutine`);
      }
      // and the resumer's limit is its own again
      let main = 0;
      const down = (): void => {
        main++;
        down();
      };
      try {
        down();
      } catch (e) {
        assert.ok(e instanceof RangeError);
      }
      assert.ok(main > fresh, `the main thread recursed ${main} deep, a coroutine ${fresh}`);
    });

    it('an exception or a vm timeout (termination) in the last use leaves nothing pending in the next', () => {
      assert.throws(() => ko.create(() => { throw new Error('boom'); }).resume(), /boom/);
      assert.equal(reusing(() => ko.create(() => 'clean').resume().value), 'clean');
      const timedOut = ko.create(() => {
        try {
          vm.runInNewContext('for (;;) {}', {}, { timeout: 20 });
          return 'no';
        } catch (e) {
          return (e as { code?: string }).code;
        }
      }).resume().value;
      assert.equal(timedOut, 'ERR_SCRIPT_EXECUTION_TIMEOUT');
      const after = reusing(() => ko.create(() => { let s = 0; for (let i = 0; i < 1e6; i++) s += i; return s; }).resume().value);
      assert.equal(after, 499999500000);
      // a suspended one and a finished one side by side
      const held = ko.create(() => ko.yield('held') + '!');
      assert.equal(held.resume().value, 'held');
      assert.equal(ko.create(() => 'between').resume().value, 'between');
      assert.equal(reusing(() => ko.create(() => 'next').resume().value), 'next');
      assert.equal(held.resume('back').value, 'back!');
    });

    it('dispose() of an unstarted coroutine returns it to the pool, and one dropped unstarted is freed', () => {
      const live = native.live_coroutines();
      const co = reusing(() => ko.create(() => 'never'));
      assert.equal(native.live_coroutines(), live + 1);
      co.dispose();
      assert.equal(native.live_coroutines(), live);
      assert.ok(native.pool_info().idle >= 1);
      (() => {
        for (let i = 0; i < 50; i++) ko.create(() => 'dropped');
      })();
      assert.equal(native.live_coroutines(), live + 50);
      gc();
      native.trim_pool(); // frees the dropped ones (they are noticed at GC)
      assert.equal(native.live_coroutines(), live);
    });

    it('keeps at most its limit, and trimPool() gives every pooled coroutine back', () => {
      const held = Array.from({ length: 80 }, () => {
        const c = ko.create(() => ko.yield());
        c.resume();
        return c;
      });
      for (const c of held) c.resume();
      const info = native.pool_info();
      assert.ok(info.idle <= info.cap, `${info.idle} pooled, limit ${info.cap}`);
      assert.ok(info.idle >= 1);
      const live = native.live_coroutines();
      assert.ok(native.trim_pool() >= 1);
      assert.equal(native.pool_info().idle, 0);
      assert.equal(native.live_coroutines(), live, 'pooled coroutines are not live ones');
      assert.equal(ko.create(() => 'after trim').resume().value, 'after trim');
    });
  });
}

describe('pool of finished coroutines: idle', () => {
  it('is emptied when nothing was taken from it for a while', async function () {
    this.timeout(30_000);
    const ko = createEngine({ backend: testBackends()[0], stackSize: '320k' });
    ko.create(() => 1).resume();
    assert.ok(native.pool_info().idle >= 1);
    await until(() => native.pool_info().idle === 0, 'the pool to empty', 20_000);
  });
});
