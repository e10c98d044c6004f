/**
 * Defects found by adversarial testing, each pinned on every backend:
 * exotic thrown values (null-prototype objects, revoked proxies, throwing
 * getters), yield inside tasks, join cycles, dead mutex owners, lost
 * errors, promise-returning tasks, argument validation, unwinding.
 */
import { strict as assert } from 'assert';
import { CancelledError, KorutinError, parseConfig } from '../ts';
import { engineFor, PACKAGE_ENTRY, runNode, testBackends, until } from './helpers';

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
      assert.equal(ko.create(() => 1, { name: 'ok' }).name, 'ok');
      assert.equal(ko.create(() => 1, undefined).resume().value, 1);
    });
  }
});
