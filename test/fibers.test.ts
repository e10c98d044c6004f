/**
 * korutin/fibers: node-fibers' documented behaviour, on every backend.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import { autoBackend, KorutinError } from '../ts';
import Fiber = require('../ts/fibers');
import { native } from '../ts/native';
import {
  availableBackends, collectUntil, fibersEngine, lastJson, onEveryBackend, repoRoot, runNode, settledRss,
} from './fixtures/fibers-support';

const MiB = 1024 * 1024;

/** Asserts that `fn` throws an error with `code`. */
function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
    assert.equal((e as { code?: string }).code, code);
    return true;
  });
}

describe('korutin/fibers: the module', function () {
  it('is what require("korutin/fibers") returns (the package exports map)', function () {
    const viaPackage: unknown = require('korutin/fibers');
    assert.equal(viaPackage, Fiber);
  });

  it('has node-fibers’ public surface and no more', function () {
    assert.equal(typeof Fiber, 'function');
    assert.equal(Fiber.name, 'Fiber');
    assert.deepEqual(Object.keys(Fiber).sort(), ['current', 'fibersCreated', 'poolSize', 'yield']);
    assert.deepEqual(Object.getOwnPropertyNames(Fiber.prototype).sort(), ['constructor', 'reset', 'run', 'started', 'throwInto']);
    assert.deepEqual(Object.keys(Fiber.prototype), [], 'prototype methods are not enumerable');
    assert.equal(Fiber.yield.name, 'yield');
    assert.equal(Fiber.current, undefined);
  });

  it('accepts Fiber.poolSize for compatibility (node-fibers’ default 120), and rejects nonsense', function () {
    const before = Fiber.poolSize;
    assert.equal(before, 120);
    try {
      Fiber.poolSize = 16;
      assert.equal(Fiber.poolSize, 16);
      throwsCode(() => (Fiber.poolSize = -1), 'ERR_INVALID_ARGUMENT');
      throwsCode(() => (Fiber.poolSize = 1.5), 'ERR_INVALID_ARGUMENT');
      assert.equal(Fiber.poolSize, 16);
    } finally {
      Fiber.poolSize = before;
    }
  });

  it('uses one shared engine with backend "auto" and a 512 KiB stack when KORUTIN_BACKEND is unset', async function () {
    const script = `
      const Fiber = require(process.argv[1]);
      const value = Fiber((x) => Fiber.yield(x) + 1).run(41);
      const engine = Fiber[Symbol.for('korutin.fibers.engine')];
      console.log(JSON.stringify({ value, backend: engine.backend, stackSize: engine.config.stackSize }));`;
    const r = await runNode(['-e', script, path.join(repoRoot, 'dist', 'ts', 'fibers.js')], { KORUTIN_BACKEND: undefined });
    assert.deepEqual(lastJson(r), { value: 41, backend: autoBackend(), stackSize: 512 * 1024 });
  });

  it('rejects a KORUTIN_BACKEND that is not a backend, naming the variable', async function () {
    const script = `
      const Fiber = require(process.argv[1]);
      try { Fiber(() => 1).run(); console.log(JSON.stringify({ ran: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, names: /KORUTIN_BACKEND/.test(e.message) })); }`;
    const r = await runNode(['-e', script, path.join(repoRoot, 'dist', 'ts', 'fibers.js')], { KORUTIN_BACKEND: 'no-such-backend' });
    assert.deepEqual(lastJson(r), { code: 'ERR_INVALID_CONFIG', names: true });
  });
});

for (const backend of availableBackends()) {
  describe(`korutin/fibers from ESM and by environment [${backend}]`, function () {
    it('import Fiber from "korutin/fibers" gives the same Fiber, and KORUTIN_BACKEND picks the backend', async function () {
      const r = await runNode([path.join(repoRoot, 'test', 'fixtures', 'fibers-esm.mjs')], { KORUTIN_BACKEND: backend });
      assert.deepEqual(lastJson(r), {
        sameAsRequire: true, first: 2, second: 10, started: false, late: 'late', backend,
        typeofFiber: 'function', typeofFuture: 'function',
      });
    });
  });
}

onEveryBackend('Fiber', function (backend) {
  it('runs on the backend under test', function () {
    assert.equal(fibersEngine()?.backend, backend);
    assert.equal(Fiber(() => Fiber.yield('x')).run(), 'x');
  });

  it('is created with or without new', function () {
    const a = Fiber((x: number) => x + 1);
    const b = new Fiber((x: number) => x + 2);
    assert.ok(a instanceof Fiber);
    assert.ok(b instanceof Fiber);
    assert.equal(a.run(1), 2);
    assert.equal(b.run(1), 3);
  });

  it('throws a TypeError when not given a function', function () {
    for (const bad of [undefined, 42, 'fn', {}]) {
      assert.throws(() => Fiber(bad as unknown as () => void), TypeError);
      assert.throws(() => new Fiber(bad as unknown as () => void), TypeError);
    }
  });

  it('calls fn(value) on the first run() only, and run() returns what the fiber yields', function () {
    const calls: unknown[] = [];
    const fiber = Fiber((start: number) => {
      calls.push(start);
      let total = start;
      for (;;) total += Fiber.yield(total) as number;
    });
    const seen: number[] = [];
    for (let v = fiber.run(1); v <= 5; v = fiber.run(1)) seen.push(v);
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    assert.deepEqual(calls, [1]);
    fiber.reset();
  });

  it('passes any value both ways, and run() returns what the function returns', function () {
    const token = { a: 1 };
    const got: unknown[] = [];
    const fiber = Fiber((first: unknown) => {
      got.push(first);
      got.push(Fiber.yield(token));
      got.push(Fiber.yield());
      return 'the end';
    });
    assert.equal(fiber.run('first'), token);
    assert.equal(fiber.run(undefined), undefined);
    assert.equal(fiber.run(null), 'the end');
    assert.deepEqual(got, ['first', undefined, null]);
  });

  it('throws out of run() what the fiber throws, and the fiber ends', function () {
    const boom = new Error('boom');
    const fiber = Fiber(() => {
      Fiber.yield();
      throw boom;
    });
    fiber.run();
    assert.equal(fiber.started, true);
    assert.throws(() => fiber.run(), (e: unknown) => e === boom);
    assert.equal(fiber.started, false);
  });

  it('starts its function over on a run() after it finished (reset to its original state)', function () {
    let starts = 0;
    const fiber = Fiber((x: number) => {
      starts++;
      return Fiber.yield(x) as number * 10;
    });
    assert.equal(fiber.run(1), 1);
    assert.equal(fiber.run(2), 20);
    assert.equal(fiber.started, false);
    assert.equal(fiber.run(3), 3);
    assert.equal(fiber.run(4), 40);
    assert.equal(starts, 2);
  });

  it('started is false before the first run, true while running or suspended, false once finished', function () {
    const seenInside: unknown[] = [];
    const fiber = Fiber(() => {
      seenInside.push(Fiber.current?.started);
      Fiber.yield();
    });
    assert.equal(fiber.started, false);
    fiber.run();
    assert.equal(fiber.started, true);
    fiber.run();
    assert.equal(fiber.started, false);
    assert.deepEqual(seenInside, [true]);
  });

  it('Fiber.yield() outside a fiber throws', function () {
    throwsCode(() => Fiber.yield(1), 'ERR_NOT_IN_COROUTINE');
    assert.throws(() => Fiber.yield(), Error);
  });

  it('Fiber.current is undefined outside a fiber and the running Fiber inside, also in nested fibers', function () {
    const log: Array<[string, unknown]> = [];
    const inner = Fiber(() => {
      log.push(['inner', Fiber.current]);
      Fiber.yield();
      log.push(['inner again', Fiber.current]);
    });
    const outer = Fiber(() => {
      log.push(['outer', Fiber.current]);
      inner.run();
      log.push(['outer after inner yielded', Fiber.current]);
      inner.run();
      log.push(['outer after inner finished', Fiber.current]);
    });
    assert.equal(Fiber.current, undefined);
    outer.run();
    assert.equal(Fiber.current, undefined);
    assert.deepEqual(log, [
      ['outer', outer],
      ['inner', inner],
      ['outer after inner yielded', outer],
      ['inner again', inner],
      ['outer after inner finished', outer],
    ]);
  });

  it('Fiber.current is undefined, and Fiber.yield() throws, inside a plain coroutine that is not a fiber', function () {
    const ko = fibersEngine()!;
    const seen: unknown[] = [];
    const fiber = Fiber(() => {
      const co = ko.create(() => {
        seen.push(Fiber.current);
        assert.throws(() => Fiber.yield(), (e: unknown) => (e as KorutinError).code === 'ERR_NOT_IN_COROUTINE');
        return ko.yield('plain');
      });
      seen.push(co.resume().value);
      seen.push(Fiber.current === fiber);
      co.return();
    });
    fiber.run();
    assert.deepEqual(seen, [undefined, 'plain', true]);
  });

  it('keeps a running fiber reachable: Fiber.current survives a garbage collection inside a fiber nobody else holds', function () {
    const gc = (globalThis as { gc?: () => void }).gc!;
    let current: unknown = 'unset';
    Fiber(() => {
      gc();
      current = Fiber.current?.started;
    }).run();
    assert.equal(current, true);
  });

  it('reset() unwinds a suspended fiber: finally blocks run, it returns undefined and the fiber is not started', function () {
    const log: string[] = [];
    const fiber = Fiber(() => {
      try {
        try {
          Fiber.yield();
          log.push('not reached');
        } finally {
          log.push('inner finally');
        }
      } finally {
        log.push('outer finally');
      }
    });
    fiber.run();
    assert.equal(fiber.reset(), undefined);
    assert.deepEqual(log, ['inner finally', 'outer finally']);
    assert.equal(fiber.started, false);
  });

  it('reset() returns what the function returns when it catches the unwinding', function () {
    const fiber = Fiber(() => {
      try {
        Fiber.yield();
      } catch {
        return 'caught';
      }
      return 'not reached';
    });
    fiber.run();
    assert.equal(fiber.reset(), 'caught');
  });

  it('while a fiber is being reset, every Fiber.yield() throws, until its function returns', function () {
    let caught = 0;
    const fiber = Fiber(() => {
      for (let i = 0; i < 1000; i++) {
        try {
          Fiber.yield(i);
        } catch {
          caught++;
        }
      }
      return caught;
    });
    assert.equal(fiber.run(), 0);
    assert.equal(fiber.reset(), 1000);
    assert.equal(caught, 1000);
    assert.equal(fiber.started, false);
  });

  it('reset() does nothing on a fiber that was never started, or has finished', function () {
    let calls = 0;
    const fiber = Fiber(() => {
      calls++;
      return 'done';
    });
    assert.equal(fiber.reset(), undefined);
    assert.equal(calls, 0);
    assert.equal(fiber.started, false);
    assert.equal(fiber.run(), 'done');
    assert.equal(fiber.reset(), undefined);
    assert.equal(calls, 1);
  });

  it('reset() throws what the fiber throws while unwinding', function () {
    const late = new Error('thrown from finally');
    const fiber = Fiber(() => {
      try {
        Fiber.yield();
      } finally {
        throw late; // eslint-disable-line no-unsafe-finally
      }
    });
    fiber.run();
    assert.throws(() => fiber.reset(), (e: unknown) => e === late);
    assert.equal(fiber.started, false);
  });

  it('after reset() the fiber runs again from the start', function () {
    const fiber = Fiber((x: string) => {
      Fiber.yield(`started with ${x}`);
      return 'finished';
    });
    assert.equal(fiber.run('a'), 'started with a');
    fiber.reset();
    assert.equal(fiber.run('b'), 'started with b');
    assert.equal(fiber.run(), 'finished');
  });

  it('throwInto(err) makes the pending Fiber.yield() throw err; the fiber may catch it and go on', function () {
    const err = new Error('wake up');
    const fiber = Fiber(() => {
      try {
        Fiber.yield('waiting');
      } catch (e) {
        Fiber.yield(e === err ? 'caught it' : 'caught something else');
      }
      return 'done';
    });
    assert.equal(fiber.run(), 'waiting');
    assert.equal(fiber.throwInto(err), 'caught it');
    assert.equal(fiber.run(), 'done');
  });

  it('throwInto(err) throws err back at the caller when the fiber does not catch it', function () {
    const err = { not: 'an Error' };
    let after = false;
    let cleaned = false;
    const fiber = Fiber(() => {
      try {
        Fiber.yield();
        after = true;
      } finally {
        cleaned = true;
      }
    });
    fiber.run();
    assert.throws(() => fiber.throwInto(err), (e: unknown) => e === err);
    assert.equal(after, false);
    assert.equal(cleaned, true);
    assert.equal(fiber.started, false);
  });

  it('throwInto() on a fiber that is not suspended throws, without calling its function', function () {
    let calls = 0;
    const fiber = Fiber(() => {
      calls++;
    });
    const err = new Error('never delivered');
    assert.throws(() => fiber.throwInto(err), (e: unknown) => e instanceof Error && e !== err);
    assert.equal(calls, 0);
    assert.equal(fiber.started, false);
  });

  it('running a fiber that is already running throws (itself, or a fiber that is waiting on the one running)', function () {
    const errors: unknown[] = [];
    const outer: Fiber = Fiber(() => {
      const self = Fiber.current!;
      try { self.run(); } catch (e) { errors.push(e); }
      try { self.reset(); } catch (e) { errors.push(e); }
      try { self.throwInto(new Error('x')); } catch (e) { errors.push(e); }
      Fiber(() => {
        try { outer.run(); } catch (e) { errors.push(e); }
      }).run();
      return 'still fine';
    });
    assert.equal(outer.run(), 'still fine');
    assert.equal(errors.length, 4);
    for (const e of errors) {
      assert.ok(e instanceof Error);
      assert.equal((e as KorutinError).code, 'ERR_ALREADY_RUNNING');
    }
  });

  it('calling its methods on something that is not a fiber throws a TypeError', function () {
    const proto = Fiber.prototype;
    for (const self of [{}, null, undefined, 42, Object.create(Fiber.prototype)]) {
      assert.throws(() => proto.run.call(self), TypeError);
      assert.throws(() => proto.reset.call(self), TypeError);
      assert.throws(() => proto.throwInto.call(self, new Error('x')), TypeError);
    }
    assert.equal(proto.started, undefined, 'started on a non-fiber is undefined, as in node-fibers');
  });

  it('a stack overflow inside a fiber is a RangeError at run(), and fibers keep working', function () {
    const fiber = Fiber(() => {
      const down = (n: number): number => down(n + 1) + 1;
      return down(0);
    });
    assert.throws(() => fiber.run(), RangeError);
    assert.equal(fiber.started, false);
    const deep = (n: number): number => (n === 0 ? 0 : deep(n - 1) + 1);
    assert.equal(Fiber(() => deep(2000)).run(), 2000);
  });

  it('is resumed by timers, setImmediate and promise callbacks while the event loop runs on', async function () {
    const order: string[] = [];
    const sleep = (schedule: (resume: () => void) => void): void => {
      const fiber = Fiber.current!;
      schedule(() => fiber.run());
      Fiber.yield();
    };
    const finished = new Promise<void>((resolve) => {
      Fiber(() => {
        order.push('start');
        sleep((resume) => setTimeout(resume, 2));
        order.push('after timer');
        sleep((resume) => setImmediate(resume));
        order.push('after immediate');
        sleep((resume) => void Promise.resolve().then(resume));
        order.push('after promise');
        resolve();
      }).run();
      order.push('back in main');
    });
    await finished;
    assert.deepEqual(order, ['start', 'back in main', 'after timer', 'after immediate', 'after promise']);
  });

  it('counts started fibers in Fiber.fibersCreated', function () {
    const before = Fiber.fibersCreated;
    const fiber = Fiber(() => Fiber.yield());
    assert.equal(Fiber.fibersCreated, before, 'creating does not start');
    fiber.run();
    fiber.run();
    fiber.run();
    assert.equal(Fiber.fibersCreated, before + 2, 'each start counts once');
  });

  it('reclaims 20,000 fibers that run to completion', async function () {
    const round = (n: number): number => {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const fiber = Fiber((x: number) => (Fiber.yield(x + 1) as number) * 2);
        sum += fiber.run(i) as number;
        sum += fiber.run(1) as number;
      }
      return sum;
    };
    assert.equal(round(2000), (2000 * 1999) / 2 + 2000 + 2 * 2000);
    const live = native.live_coroutines();
    const base = await settledRss();
    for (let r = 0; r < 9; r++) round(2000);
    // (Earlier tests' garbage may be freed meanwhile: at most as many as before.)
    assert.ok(native.live_coroutines() <= live, 'a finished fiber is freed at once');
    const grown = (await settledRss()) - base;
    // Leaked stacks would cost about 12 KiB each: over 200 MiB for 18,000.
    assert.ok(grown < 48 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB over 18,000 more fibers`);
  });

  it('unwinds abandoned suspended fibers when they are collected (finally blocks run) and reclaims them', async function () {
    let unwound = 0;
    let resumedNormally = 0;
    const abandon = (n: number): void => {
      for (let i = 0; i < n; i++) {
        Fiber(() => {
          try {
            Fiber.yield(i);
            resumedNormally++;
          } finally {
            unwound++;
          }
        }).run();
      }
    };
    // A leaked suspended fiber keeps its touched stack pages (about 12 KiB
    // here): 8,000 of them would grow RSS by some 100 MiB.
    const batch = 2000;
    abandon(batch);
    assert.ok(await collectUntil(() => unwound === batch), `only ${unwound} of ${batch} abandoned fibers were unwound`);
    const live = native.live_coroutines();
    const base = await settledRss();
    for (let b = 2; b <= 5; b++) {
      abandon(batch);
      assert.ok(await collectUntil(() => unwound === b * batch), `only ${unwound} of ${b * batch} abandoned fibers were unwound`);
    }
    assert.equal(resumedNormally, 0);
    assert.ok(native.live_coroutines() <= live, 'an unwound fiber is freed');
    const grown = (await settledRss()) - base;
    assert.ok(grown < 48 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB over 8,000 more abandoned fibers`);
  });

  it('unwinds a collected fiber like reset(): every Fiber.yield() throws until its function returns', async function () {
    const n = 50;
    const rounds = 20;
    let finished = 0;
    let caught = 0;
    for (let i = 0; i < n; i++) {
      Fiber(() => {
        for (let r = 0; r < rounds; r++) {
          try {
            Fiber.yield(r);
          } catch (e) {
            if (e instanceof Error) caught++;
          }
        }
        finished++;
      }).run();
    }
    assert.ok(await collectUntil(() => finished === n), `only ${finished} of ${n} abandoned fibers finished unwinding`);
    assert.equal(caught, n * rounds);
  });

  // In a child process: if a coroutine ever leaves its async scope on Node's
  // async-id stack, Node aborts the whole process ("async hook stack has
  // become corrupted") when the timer's callback ends.
  it('yields inside an AsyncResource scope and an AsyncLocalStorage run, and a timer resumes it', async function () {
    const r = await runNode([path.join(repoRoot, 'dist', 'test', 'fixtures', 'fibers-async-scope.js')], { KORUTIN_BACKEND: backend });
    assert.deepEqual(lastJson(r), {
      firstRun: 'suspended',
      storeBefore: 'inside the fiber',
      storeOutside: null,
      sameIdAfterResume: true,
      sameResourceAfterResume: true,
      storeAfterResume: 'inside the fiber',
      secondRun: 'finished',
      timerScopeRestored: true,
      storeInTimer: null,
    });
    assert.equal(r.code, 0, r.stderr);
  });
});
