/**
 * Defects found by adversarial testing, each pinned on every backend:
 * exotic thrown values (null-prototype objects, revoked proxies, throwing
 * getters), yield inside tasks, join cycles, dead mutex owners, lost
 * errors, promise-returning tasks, argument validation, unwinding.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CancelledError, Coroutine, KorutinError, Mutex, parseConfig, Task } from '../ts';
import { codeOf, engineFor, PACKAGE_ENTRY, runNode, testBackends, tick, until } from './helpers';

/** `p`, or a rejection after `ms`: a regression fails in seconds instead of hanging. */
function within<T>(p: PromiseLike<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_res, rej) => {
    timer = setTimeout(() => rej(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(p), late]).finally(() => clearTimeout(timer));
}

/** A revoked Proxy: every operation on it throws a TypeError. */
function revoked(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/** A Proxy whose getPrototypeOf trap throws (so `instanceof` on it throws). */
function noProto(): object {
  return new Proxy({}, {
    getPrototypeOf() {
      throw new Error('getPrototypeOf trap');
    },
  });
}

/** Values whose formatting throws with a naive String(v) or v.stack. */
function exotic(): { what: string; value: unknown }[] {
  const throwingToString = {
    toString(): string {
      throw new Error('toString throws');
    },
  };
  const throwingStack = Object.create(Error.prototype, {
    stack: { get: () => { throw new Error('stack getter throws'); } },
    message: { get: () => { throw new Error('message getter throws'); } },
  });
  return [
    { what: 'a null-prototype object', value: Object.create(null) },
    { what: 'a revoked Proxy', value: revoked() },
    { what: 'a Proxy whose getPrototypeOf throws', value: noProto() },
    { what: 'an object whose toString throws', value: throwingToString },
    { what: 'an Error whose stack and message getters throw', value: throwingStack },
  ];
}

for (const backend of testBackends()) {
  describe(`reliability [${backend}]`, () => {
    const ko = engineFor(backend);

    it('H4: ko.yield() in a task is yieldNow(): others run, it returns undefined, cancel works', async () => {
      const log: string[] = [];
      const a = ko.spawn(() => {
        log.push('a1');
        const v: unknown = ko.yield('dropped');
        log.push(`a2 ${String(v)}`);
        return 'a done';
      });
      const b = ko.spawn(() => {
        log.push('b');
      });
      assert.equal(await within(a, 'the task that called ko.yield()'), 'a done');
      await within(b, 'the other task');
      assert.deepEqual(log, ['a1', 'b', 'a2 undefined']);
      // a coroutine a task created still yields to the task, as a generator
      assert.equal(await ko.spawn(() => {
        const co = ko.create(() => ko.yield(1) + 1);
        const first = co.resume().value as number;
        return first + (co.resume(10).value as number);
      }), 12);
      // a task looping on ko.yield() is cancelled at its next ko.yield()
      let spins = 0;
      const spinner = ko.spawn(() => {
        for (;;) {
          spins++;
          ko.yield();
        }
      });
      await until(() => spins > 3, 'the spinner to spin');
      assert.notEqual(spinner.state, 'done');
      assert.equal(spinner.cancel('enough'), true);
      await assert.rejects(within(spinner, 'the cancelled spinner'), (e) => e instanceof CancelledError && e.reason === 'enough');
      assert.equal(spinner.state, 'cancelled');
    });

    it('H5: a join cycle throws ERR_DEADLOCK at the join that closes it; a task joining itself too', async () => {
      let a: Task<unknown> | null = null;
      const b: Task<unknown> = ko.spawn(() => {
        ko.yieldNow();
        return a!.join();
      });
      a = ko.spawn(() => {
        ko.yieldNow();
        ko.yieldNow();
        return b.join(); // b waits for a already: this closes the cycle
      });
      await assert.rejects(within(a, 'a'), (e) => codeOf(e) === 'ERR_DEADLOCK' && /deadlock/.test((e as Error).message));
      await assert.rejects(within(b, 'b'), (e) => codeOf(e) === 'ERR_DEADLOCK'); // b joined a, which failed with it
      // a three-task cycle
      const ts: Task<unknown>[] = [];
      for (let i = 0; i < 3; i++) {
        ts.push(ko.spawn(() => {
          for (let k = 0; k <= i; k++) ko.yieldNow();
          return ts[(i + 1) % 3].join();
        }));
      }
      const outcomes = await within(Promise.all(ts.map((t) => t.toPromise().then(() => 'ok', (e: unknown) => codeOf(e)))), 'the 3-cycle');
      assert.deepEqual(outcomes, ['ERR_DEADLOCK', 'ERR_DEADLOCK', 'ERR_DEADLOCK']);
      // joining itself, with or without a timeout
      const self = await within(ko.spawn(() => {
        const codes: (string | undefined)[] = [];
        for (const ms of [undefined, 10]) {
          try {
            ko.current()!.join(ms);
          } catch (e) {
            codes.push(codeOf(e));
          }
        }
        return codes;
      }), 'the self-join');
      assert.deepEqual(self, ['ERR_DEADLOCK', 'ERR_DEADLOCK']);
      // a cycle with a timeout in it is no deadlock: the timed join runs out
      let c: Task<unknown> | null = null;
      const d: Task<unknown> = ko.spawn(() => {
        ko.yieldNow();
        return c!.join(20);
      });
      c = ko.spawn(() => {
        ko.yieldNow();
        ko.yieldNow();
        return d.join();
      });
      await assert.rejects(within(d, 'd'), (e) => codeOf(e) === 'ERR_TIMEOUT');
      await assert.rejects(within(c, 'c'), (e) => codeOf(e) === 'ERR_TIMEOUT');
    });

    it('U4: a task joining a cancelled task gets ERR_JOINED_CANCELLED (cause: the CancelledError), not ERR_CANCELLED', async () => {
      const victim = ko.spawn(() => ko.sleep(100_000));
      const joiner = ko.spawn(() => {
        try {
          victim.join();
        } catch (e) {
          return { code: codeOf(e), cause: (e as { cause?: unknown }).cause };
        }
        return null;
      });
      await until(() => victim.state === 'blocked' && joiner.state === 'blocked');
      victim.cancel('reason');
      const r = await within(joiner, 'the joiner');
      assert.equal(joiner.state, 'done', 'the joiner was not cancelled');
      assert.equal(r!.code, 'ERR_JOINED_CANCELLED');
      assert.ok(r!.cause instanceof CancelledError && r!.cause.reason === 'reason');
      assert.equal(victim.state, 'cancelled');
    });

    it('W8: a task returning a promise ends as the promise settles: state, join and await agree', async () => {
      const boom = new Error('async boom');
      // The test settles the promises, so that 'blocked' is seen whatever the host's speed.
      let go!: () => void;
      const gate = new Promise<void>((r) => (go = r));
      const failing = ko.spawn(async () => {
        await gate;
        throw boom;
      });
      const fine = ko.spawn(async () => {
        await gate;
        return 'async value';
      });
      await until(() => failing.state === 'blocked' && fine.state === 'blocked', 'the tasks to wait for their promises');
      go();
      await assert.rejects(within(failing, 'the failing async task'), (e) => e === boom);
      assert.equal(failing.state, 'failed');
      assert.equal(await within(fine, 'the async task'), 'async value');
      assert.equal(fine.state, 'done');
      const joined = await ko.spawn(() => {
        const out: unknown[] = [fine.join()];
        try {
          failing.join();
        } catch (e) {
          out.push(e === boom);
        }
        return out;
      });
      assert.deepEqual(joined, ['async value', true]);
      // cancelled while its promise is pending: cancelled
      const pending = ko.spawn(() => new Promise(() => undefined));
      await until(() => pending.state === 'blocked');
      pending.cancel('stop');
      await assert.rejects(within(pending, 'the cancelled async task'), CancelledError);
      assert.equal(pending.state, 'cancelled');
    });

    it('H6: a mutex whose owner ended is released; the next owner gets ERR_OWNER_DEAD, holding it', async () => {
      const m = new Mutex();
      const quitter = ko.spawn(() => {
        m.lock();
        return 'ended holding it';
      });
      assert.equal(await quitter, 'ended holding it');
      assert.equal(m.locked, false, 'released when its owner ended');
      const next = await ko.spawn(() => {
        let code: string | undefined;
        try {
          m.lock(1000);
        } catch (e) {
          code = codeOf(e);
        }
        const held = m.locked;
        m.unlock();
        m.lock(1000); // told once: the next lock is plain
        m.unlock();
        return { code, held };
      });
      assert.deepEqual(next, { code: 'ERR_OWNER_DEAD', held: true });
      // a waiter queued behind an owner that fails: woken, told, holding it
      const holder = ko.spawn(() => {
        m.lock();
        ko.sleep(10);
        throw new Error('died holding the mutex');
      });
      await until(() => holder.state === 'blocked');
      const waiter = ko.spawn(() => {
        try {
          m.lock(5000);
        } catch (e) {
          const r = { code: codeOf(e), held: m.locked };
          m.unlock();
          return r;
        }
        return 'no error';
      });
      await assert.rejects(holder.toPromise(), /died holding/);
      assert.deepEqual(await within(waiter, 'the waiter'), { code: 'ERR_OWNER_DEAD', held: true });
      // withLock does not run fn then, and leaves the mutex unlocked
      const q = ko.spawn(() => {
        m.lock();
      });
      await q;
      const w = await ko.spawn(() => {
        let ran = false;
        try {
          m.withLock(() => {
            ran = true;
          });
        } catch (e) {
          return { code: codeOf(e), ran, locked: m.locked };
        }
        return 'no error';
      });
      assert.deepEqual(w, { code: 'ERR_OWNER_DEAD', ran: false, locked: false });
      assert.equal(await ko.spawn(() => m.withLock(() => 'fine')), 'fine');
    });

    it('W4: a failed task nobody keeps is reported by the next turn, without any GC', async () => {
      const seen: string[] = [];
      ko.setUnhandled((e) => seen.push((e as Error).message));
      try {
        (() => {
          ko.spawn(() => {
            throw new Error('nobody kept me');
          });
        })();
        // joined in the turn it failed (by a task that runs after it): not reported
        const joinedLate = ko.spawn(() => {
          throw new Error('joined');
        });
        const joiner = ko.spawn(() => {
          assert.equal(joinedLate.state, 'failed');
          try {
            joinedLate.join();
          } catch (e) {
            return (e as Error).message;
          }
          return 'no error';
        });
        assert.equal(await joiner, 'joined');
        await until(() => seen.length > 0, 'the report', 2000);
        await tick(5);
        assert.deepEqual(seen, ['nobody kept me']);
      } finally {
        ko.setUnhandled('throw');
      }
      const r = runNode(`
        const { createEngine } = require(${JSON.stringify(PACKAGE_ENTRY)});
        const ko = createEngine({ backend: ${JSON.stringify(backend)} });
        ko.spawn(() => { throw new Error('lost in a task'); });
        setTimeout(() => console.log('still alive'), 300);
      `);
      assert.notEqual(r.status, 0, 'the process fails');
      assert.match(r.stderr, /lost in a task/);
      assert.doesNotMatch(r.stdout, /still alive/);
    });

    describe('exotic thrown values (C6, H3, W3, W6)', () => {
      for (const { what, value } of exotic()) {
        it(`ko.create: throwing ${what} reaches resume() as thrown, and the coroutine is done`, () => {
          const co = ko.create(() => {
            throw value;
          });
          let caught: unknown = 'nothing';
          try {
            co.resume();
          } catch (e) {
            caught = e;
          }
          assert.ok(caught === value, 'resume() throws the very value');
          assert.equal(co.state, 'done');
          assert.equal(co.done, true);
        });

        it(`warn: a detached task throwing ${what} is reported as a warning, and the scheduler goes on`, async () => {
          ko.setUnhandled('warn');
          const warnings: Error[] = [];
          const onWarning = (w: Error): void => {
            warnings.push(w);
          };
          process.on('warning', onWarning);
          try {
            const t = ko.spawn(() => {
              throw value;
            });
            t.detach();
            await until(() => warnings.some((w) => (w as { code?: string }).code === 'KORUTIN_UNHANDLED_TASK_ERROR'), 'a warning', 5000);
            assert.equal(t.state, 'failed');
            assert.equal(await ko.spawn(() => 42), 42, 'another task runs');
          } finally {
            process.off('warning', onWarning);
            ko.setUnhandled('throw');
          }
        });

        it(`a task throwing ${what}: join and await get it, the scheduler goes on`, async () => {
          const seen: unknown[] = [];
          ko.setUnhandled((e) => seen.push(e));
          try {
            const t = ko.spawn(() => {
              throw value;
            });
            let rejected: unknown = 'nothing';
            await t.toPromise().catch((e: unknown) => {
              rejected = e;
            });
            assert.ok(rejected === value);
            assert.equal(t.state, 'failed');
            const joined = await ko.spawn(() => {
              try {
                t.join();
              } catch (e) {
                return e === value;
              }
              return false;
            });
            assert.equal(joined, true);
            // detached: reported to the policy, and more tasks run afterwards
            const u = ko.spawn(() => {
              throw value;
            });
            u.detach();
            await until(() => seen.length === 1, 'the report', 5000);
            assert.ok(seen[0] === value);
            for (let i = 0; i < 3; i++) assert.equal(await ko.spawn(() => i), i);
          } finally {
            ko.setUnhandled('throw');
          }
        });
      }

      it('under every policy, a task throwing a revoked Proxy leaves no internal error uncaught', function () {
        for (const policy of ['throw', 'warn', 'ignore']) {
          const r = runNode(`
            const { createEngine } = require(${JSON.stringify(PACKAGE_ENTRY)});
            const ko = createEngine({ backend: ${JSON.stringify(backend)}, unhandled: ${JSON.stringify(policy)} });
            process.on('uncaughtException', (e) => {
              let code = 'none';
              try { code = String(e && e.code); } catch { code = 'exotic'; }
              console.log('uncaught:' + code);
            });
            const { proxy, revoke } = Proxy.revocable({}, {}); revoke();
            ko.spawn(() => { throw proxy; }).detach();
            setTimeout(() => ko.spawn(() => 7).then((v) => console.log('next task: ' + v)), 20);
          `);
          assert.equal(r.status, 0, r.stderr);
          assert.match(r.stdout, /next task: 7/, `${policy}: ${r.stdout}`);
          assert.doesNotMatch(r.stdout, /ERR_ALREADY_RUNNING/, policy);
          if (policy === 'throw') assert.match(r.stdout, /uncaught:exotic/, 'the proxy itself is raised');
          else assert.doesNotMatch(r.stdout, /uncaught/, policy);
        }
      });

      it('cancel(reason) where String(reason) throws: cancelled, with the reason kept', async () => {
        for (const { value } of exotic()) {
          const t = ko.spawn(() => ko.sleep(100_000));
          await until(() => t.state === 'blocked');
          assert.equal(t.cancel(value), true);
          let rejected: unknown;
          await t.toPromise().catch((e: unknown) => {
            rejected = e;
          });
          assert.equal(t.state, 'cancelled');
          assert.ok(rejected instanceof CancelledError);
          assert.ok((rejected as CancelledError).reason === value);
          assert.equal(typeof (rejected as CancelledError).message, 'string');
        }
      });
    });
  });
}

describe('reliability: argument validation (U1, U3)', () => {
  it('stackSize of the wrong type: the message says what was given and what is accepted', () => {
    const cases: { value: unknown; given: RegExp }[] = [
      { value: Number.NaN, given: /got NaN/ },
      { value: {}, given: /got an object/ },
      { value: 10n, given: /got the BigInt 10n/ },
      { value: null, given: /got null/ },
      { value: true, given: /got true/ },
      { value: [1], given: /got an array/ },
      { value: 'lots', given: /got the string "lots"/ },
      { value: 1.5, given: /got the number 1\.5/ },
      { value: Infinity, given: /got the number Infinity/ },
    ];
    for (const { value, given } of cases) {
      assert.throws(
        () => parseConfig({ stackSize: value as never }),
        (e: KorutinError) => {
          assert.equal(e.code, 'ERR_INVALID_CONFIG');
          assert.doesNotMatch(e.message, /Invalid input/);
          assert.match(e.message, /stackSize: must be a byte count or a size like '96k'.*\(a byte count is a positive whole number\)/);
          assert.match(e.message, given);
          return true;
        },
        String(given),
      );
    }
    assert.throws(() => parseConfig({ stackSize: '1k' }), /at least 96k.*got the string "1k" \(1024 bytes\)/);
  });

  for (const backend of testBackends()) {
    const ko = engineFor(backend);
    it(`[${backend}] create(fn, options) and spawnWith(options, ...): coded errors for bad options`, () => {
      for (const bad of [null, 5, 'name', true]) {
        assert.throws(
          () => ko.create(() => 1, bad as never),
          (e: KorutinError) => e instanceof KorutinError && e.code === 'ERR_INVALID_ARGUMENT' && /options must be an object/.test(e.message),
        );
        assert.throws(
          () => ko.spawnWith(bad as never, () => 1),
          (e: KorutinError) => e instanceof KorutinError && e.code === 'ERR_INVALID_ARGUMENT' && /options must be an object/.test(e.message),
        );
      }
      for (const name of [5, null, {}, Symbol('s')]) {
        assert.throws(
          () => ko.create(() => 1, { name } as never),
          (e: KorutinError) => e.code === 'ERR_INVALID_ARGUMENT' && /options\.name must be a string/.test(e.message),
        );
        assert.throws(
          () => ko.spawnWith({ name } as never, () => 1),
          (e: KorutinError) => e.code === 'ERR_INVALID_ARGUMENT' && /options\.name must be a string/.test(e.message),
        );
      }
      // spawn's trailing options object: a wrong name is refused, not passed on as an argument
      assert.throws(
        () => ko.spawn(() => 1, { name: 5 } as never),
        (e: KorutinError) => e.code === 'ERR_INVALID_ARGUMENT' && /options\.name must be a string/.test(e.message),
      );
      assert.equal(ko.create(() => 1, { name: 'ok' }).name, 'ok');
      assert.equal(ko.create(() => 1, undefined).resume().value, 1);
    });
  }
});

describe('reliability: native errors are KorutinErrors (U2)', () => {
  for (const backend of testBackends()) {
    it(`[${backend}] ERR_OUT_OF_MEMORY and ERR_BACKEND_UNAVAILABLE from the addon are KorutinError instances`, () => {
      const huge = { backend, stackSize: 2 ** 46, guardSize: 4096 }; // 64 TiB: no mapping that large
      assert.throws(
        () => new Coroutine(() => 1, huge),
        (e: unknown) => e instanceof KorutinError && e.code === 'ERR_OUT_OF_MEMORY' && /out of memory/.test(e.message),
      );
      assert.throws(
        () => new Coroutine(() => 1, { backend: 'no-such-backend', stackSize: 256 * 1024, guardSize: 4096 }),
        (e: unknown) => e instanceof KorutinError && e.code === 'ERR_BACKEND_UNAVAILABLE',
      );
    });
  }
});

describe('reliability: unwinding where V8 would swallow it (C5, W5)', () => {
  for (const backend of testBackends()) {
    const head = `
      const { createEngine } = require(${JSON.stringify(PACKAGE_ENTRY)});
      const ko = createEngine({ backend: ${JSON.stringify(backend)} });
      process.on('warning', (w) => console.log('warning: ' + w.code));
    `;

    it(`[${backend}] return() of a coroutine suspended in a Promise executor: ERR_UNWIND_UNSAFE, it stays usable`, () => {
      const r = runNode(`${head}
        const log = [];
        const co = ko.create(() => {
          const p = new Promise((res) => { res(ko.yield('in executor')); });
          log.push('after the executor');
          return p;
        });
        console.log('first: ' + co.resume().value);
        try { co.return('r'); console.log('returned'); } catch (e) { console.log('return: ' + e.code + ' ' + co.state); }
        const end = co.resume(5);
        end.value.then((v) => console.log('end: ' + end.done + ' ' + v + ' ' + log.join(',')));
      `);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /ReturnSignal/);
      assert.match(r.stdout, /first: in executor/);
      assert.match(r.stdout, /return: ERR_UNWIND_UNSAFE suspended/);
      assert.match(r.stdout, /end: true 5 after the executor/);
    });

    it(`[${backend}] a dropped coroutine suspended in a Promise executor is left alone (a warning), no unhandled rejection`, () => {
      const r = runNode(`${head}
        (() => {
          const co = ko.create(() => { new Promise(() => { ko.yield(1); }); console.log('continued after the executor'); });
          co.resume();
        })();
        // an ordinary dropped one is still unwound, its finally blocks run
        (() => {
          const co = ko.create(() => { try { ko.yield(1); } finally { console.log('finally ran'); } });
          co.resume();
        })();
        setTimeout(() => { global.gc(); setTimeout(() => { global.gc(); setTimeout(() => console.log('exit clean'), 50); }, 20); }, 10);
      `, ['--expose-gc']);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /ReturnSignal/);
      assert.doesNotMatch(r.stdout, /continued after the executor/);
      assert.match(r.stdout, /warning: KORUTIN_UNWIND_UNSAFE/);
      assert.match(r.stdout, /finally ran/);
      assert.match(r.stdout, /exit clean/);
    });

    it(`[${backend}] a dropped coroutine suspended in an ES module's evaluation does not leave a ReturnSignal as the module's error`, function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'korutin-esm-'));
      try {
        const mod = path.join(dir, 'suspends.mjs');
        fs.writeFileSync(mod, `
          import { createRequire } from 'module';
          const require = createRequire(import.meta.url);
          const { createEngine } = require(${JSON.stringify(PACKAGE_ENTRY)});
          export const x = createEngine({ backend: ${JSON.stringify(backend)} }).yield('in module');
        `);
        const r = runNode(`${head}
          let supported = true;
          (() => {
            const co = ko.create(() => require(${JSON.stringify(mod)}));
            try { co.resume(); } catch (e) { supported = false; console.log('no require(esm): ' + e.code); }
          })();
          setTimeout(async () => {
            global.gc();
            await new Promise((r) => setTimeout(r, 30));
            try { await import(${JSON.stringify(`file://${mod}`)}); console.log('imported'); }
            catch (e) { console.log('import: ' + (e && e.constructor && e.constructor.name)); }
            console.log(supported ? 'tested' : 'untested');
          }, 10);
        `, ['--expose-gc']);
        if (/untested/.test(r.stdout)) this.skip();
        assert.equal(r.status, 0, r.stderr);
        assert.doesNotMatch(r.stdout + r.stderr, /ReturnSignal/);
        assert.match(r.stdout, /warning: KORUTIN_UNWIND_UNSAFE/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
