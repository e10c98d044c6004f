import { strict as assert } from 'assert';
import { AsyncLocalStorage, AsyncResource, executionAsyncId, executionAsyncResource } from 'async_hooks';
import { native } from '../ts/native';
import { engineFor, PACKAGE_ENTRY, runNode, testBackends } from './helpers';

const tick = (ms = 2) => new Promise<void>((r) => setTimeout(r, ms));

describe('async context', () => {
  it('the async-context stack of this Node was found and verified', () => {
    const a = native.async_stack();
    assert.equal(a.ok, true, a.reason ?? '');
  });
});

for (const backend of testBackends()) {
  describe(`async context [${backend}]`, function () {
    const ko = engineFor(backend);

    // In a child: the failure this guards against (V8 13+ visiting its one
    // continuation-data slot once per archived thread, see v8bridge/bridge.cc)
    // was a crash inside a scavenge.
    it('200 suspended coroutines with young stores of their own survive scavenges', function () {
      this.timeout(60_000);
      const r = runNode(
        `const { AsyncLocalStorage } = require('async_hooks');
         const ko = require(${JSON.stringify(PACKAGE_ENTRY)}).createEngine({ backend: '${backend}' });
         const als = new AsyncLocalStorage();
         let bad = 0;
         const cos = Array.from({ length: 200 }, (_, i) => ko.create(() => {
           als.enterWith({ i });
           for (let r = 0; r < 10; r++) {
             const junk = Array.from({ length: 50 }, (_, k) => ({ k, s: 'j' + k }));
             ko.yield();
             if (als.getStore()?.i !== i || junk.length !== 50) bad++;
           }
         }));
         for (let r = 0; r <= 10; r++) { for (const c of cos) c.resume(); if (als.getStore() !== undefined) bad++; }
         console.log(bad === 0 && cos.every((c) => c.done) ? 'ok' : 'bad ' + bad);`,
      );
      assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-600)}`);
      assert.equal(r.stdout.trim(), 'ok');
    });

    it('AsyncLocalStorage: a store set in a coroutine is seen there after every resume', async () => {
      const als = new AsyncLocalStorage<string>();
      const seen: (string | undefined)[] = [];
      const co = als.run('creator', () =>
        ko.create(() => {
          seen.push(als.getStore());
          als.enterWith('mine');
          for (let i = 0; i < 3; i++) {
            ko.yield();
            seen.push(als.getStore());
          }
        }),
      );
      co.resume();
      assert.equal(als.getStore(), undefined, 'the resumer does not see the coroutine store');
      for (let i = 0; i < 3; i++) {
        await tick();
        als.run(`timer-${i}`, () => {
          co.resume();
          assert.equal(als.getStore(), `timer-${i}`, 'the resumer keeps its own store');
        });
      }
      assert.deepEqual(seen, ['creator', 'mine', 'mine', 'mine']);
    });

    it('where scopes cannot move, yielding inside one is ERR_ASYNC_CONTEXT and the coroutine goes on', function () {
      if (native.async_stack().ok) this.skip();
      const scope = new AsyncResource('test.scope');
      const before = executionAsyncId();
      const co = ko.create(() => {
        let code = '';
        scope.runInAsyncScope(() => {
          try {
            ko.yield('in scope');
          } catch (e) {
            code = (e as { code?: string }).code ?? '';
          }
        });
        ko.yield(code);
        return 'done';
      });
      assert.deepEqual(co.resume(), { value: 'ERR_ASYNC_CONTEXT', done: false });
      assert.equal(executionAsyncId(), before);
      assert.deepEqual(co.resume(), { value: 'done', done: true });
    });

    it('yielding inside runInAsyncScope and resuming from a timer keeps both stacks intact', async function () {
      if (!native.async_stack().ok) this.skip();
      const als = new AsyncLocalStorage<string>();
      const log: string[] = [];
      const co = ko.create(() => {
        als.enterWith('outer');
        const scope = new AsyncResource('test.scope');
        scope.runInAsyncScope(() => {
          als.run('inner', () => {
            const id = executionAsyncId();
            ko.yield('in scope');
            assert.equal(executionAsyncId(), id);
            assert.equal(executionAsyncResource(), scope);
            log.push(`resumed in scope: ${als.getStore()}`);
            ko.yield('still in scope');
            log.push(`again: ${als.getStore()}`);
          });
        });
        log.push(`after scope: ${als.getStore()}`);
        return 'done';
      });
      assert.equal(co.resume().value, 'in scope');
      const mainId = executionAsyncId();
      await tick();
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          const timerId = executionAsyncId();
          assert.equal(co.resume().value, 'still in scope');
          assert.equal(executionAsyncId(), timerId, 'the timer finds its own context on top');
          resolve();
        }, 1),
      );
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          assert.deepEqual(co.resume(), { value: 'done', done: true });
          resolve();
        }),
      );
      assert.equal(executionAsyncId() >= 0, true);
      assert.notEqual(mainId, undefined);
      assert.deepEqual(log, ['resumed in scope: inner', 'again: inner', 'after scope: outer']);
    });

    it('nested scopes several deep, with a return() unwinding them', async function () {
      if (!native.async_stack().ok) this.skip();
      const scopes = [new AsyncResource('a'), new AsyncResource('b'), new AsyncResource('c')];
      let unwound = 0;
      const enter = (i: number): void => {
        if (i === scopes.length) {
          ko.yield();
          return;
        }
        scopes[i].runInAsyncScope(() => {
          try {
            enter(i + 1);
          } finally {
            unwound++;
          }
        });
      };
      const co = ko.create(() => enter(0));
      co.resume();
      await tick();
      const before = executionAsyncId();
      co.return();
      assert.equal(unwound, 3);
      assert.equal(executionAsyncId(), before);
    });
  });
}
