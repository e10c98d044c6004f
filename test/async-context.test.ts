import { strict as assert } from 'assert';
import { AsyncLocalStorage, AsyncResource, executionAsyncId, executionAsyncResource } from 'async_hooks';
import { PER_COROUTINE_ASYNC_CONTEXT } from '../ts/coroutine';
import { native } from '../ts/native';
import { engineFor, testBackends } from './helpers';

const tick = (ms = 2) => new Promise<void>((r) => setTimeout(r, ms));

describe('async context', () => {
  const major = Number(process.versions.node.split('.')[0]);
  it('the async-context stack of this Node was found and verified (or refused with a reason on Node 24+)', () => {
    const a = native.asyncStack();
    if (major >= 24) assert.match(a.reason ?? '', /not supported on Node 24/);
    else assert.equal(a.ok, true, a.reason ?? '');
  });
});

for (const backend of testBackends()) {
  describe(`async context [${backend}]`, function () {
    // Node 24+: not supported yet (see PER_COROUTINE_ASYNC_CONTEXT in ts/coroutine.ts)
    if (!PER_COROUTINE_ASYNC_CONTEXT) return;
    const ko = engineFor(backend);

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
      if (native.asyncStack().ok) this.skip();
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
      if (!native.asyncStack().ok) this.skip();
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
      if (!native.asyncStack().ok) this.skip();
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
