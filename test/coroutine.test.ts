import { strict as assert } from 'assert';
import { KorutinError } from '../ts';
import { engineFor, testBackends } from './helpers';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as KorutinError).code;
  }
  return undefined;
}

for (const backend of testBackends()) {
  describe(`coroutine [${backend}]`, () => {
    const ko = engineFor(backend);

    it('passes values both ways; the first resume is the argument', () => {
      const co = ko.create((x: number) => ko.yield<number>(x + 1) * 2);
      assert.equal(co.state, 'created');
      assert.deepEqual(co.resume(1), { value: 2, done: false });
      assert.equal(co.state, 'suspended');
      assert.deepEqual(co.resume(5), { value: 10, done: true });
      assert.equal(co.state, 'done');
    });

    it('yields from any call depth', () => {
      const deep = (n: number): number => (n === 0 ? ko.yield<number>('bottom') : deep(n - 1) + 1);
      const co = ko.create(() => deep(200));
      assert.deepEqual(co.resume(), { value: 'bottom', done: false });
      assert.deepEqual(co.resume(7), { value: 207, done: true });
    });

    it('iterates', () => {
      const co = ko.create(() => {
        for (let i = 0; i < 5; i++) ko.yield(i);
        return 'end';
      });
      assert.deepEqual([...co], [0, 1, 2, 3, 4]);
      assert.equal(co.done, true);
    });

    it('nests: a coroutine creates and resumes others', () => {
      const log: string[] = [];
      const outer = ko.create(() => {
        const inner = ko.create(() => {
          log.push('inner 1');
          ko.yield('i');
          log.push('inner 2');
          return 'inner done';
        });
        log.push(`got ${inner.resume().value}`);
        assert.equal(outer.state, 'running');
        ko.yield('o');
        log.push(`got ${inner.resume().value}`);
        return 'outer done';
      });
      assert.deepEqual(outer.resume(), { value: 'o', done: false });
      assert.deepEqual(outer.resume(), { value: 'outer done', done: true });
      assert.deepEqual(log, ['inner 1', 'got i', 'inner 2', 'got inner done']);
    });

    it('reports the state of an ancestor as normal', () => {
      let seen = '';
      const outer = ko.create(() => {
        const inner = ko.create(() => {
          seen = outer.state;
        });
        inner.resume();
      });
      outer.resume();
      assert.equal(seen, 'normal');
    });

    it('ERR_ALREADY_RUNNING: resuming itself or an ancestor', () => {
      let self = '';
      let ancestor = '';
      const outer = ko.create(() => {
        self = code(() => outer.resume()) ?? 'none';
        const inner = ko.create(() => {
          ancestor = code(() => outer.resume()) ?? 'none';
        });
        inner.resume();
      });
      outer.resume();
      assert.equal(self, 'ERR_ALREADY_RUNNING');
      assert.equal(ancestor, 'ERR_ALREADY_RUNNING');
    });

    it('ERR_COROUTINE_DONE and ERR_NOT_IN_COROUTINE', () => {
      const co = ko.create(() => 1);
      co.resume();
      assert.equal(code(() => co.resume()), 'ERR_COROUTINE_DONE');
      assert.equal(code(() => co.throw(new Error('x'))), 'ERR_COROUTINE_DONE');
      assert.equal(code(() => ko.yield()), 'ERR_NOT_IN_COROUTINE');
      assert.equal(code(() => ko.create(42 as unknown as () => void)), 'ERR_INVALID_ARGUMENT');
    });

    it('an exception reaches resume() with its JS stack trace', () => {
      function failingDeepInside(): never {
        throw new TypeError('boom');
      }
      const co = ko.create(() => {
        ko.yield();
        failingDeepInside();
      });
      co.resume();
      assert.throws(
        () => co.resume(),
        (e: Error) => e instanceof TypeError && e.message === 'boom' && /failingDeepInside/.test(e.stack ?? ''),
      );
      assert.equal(co.state, 'done');
    });

    it('throw() raises at the suspension point; the body may catch it', () => {
      const co = ko.create(() => {
        try {
          ko.yield(1);
        } catch (e) {
          return `caught ${(e as Error).message}`;
        }
        return 'not reached';
      });
      co.resume();
      assert.deepEqual(co.throw(new Error('x')), { value: 'caught x', done: true });
    });

    it('return() unwinds: finally blocks run, at every depth', () => {
      const log: string[] = [];
      const inner = () => {
        try {
          ko.yield('in');
        } finally {
          log.push('inner finally');
        }
      };
      const co = ko.create<void, unknown, string>(() => {
        try {
          inner();
          log.push('not reached');
        } finally {
          log.push('outer finally');
        }
        return 'end';
      });
      co.resume();
      assert.deepEqual(co.return('bye'), { value: 'bye', done: true });
      assert.deepEqual(log, ['inner finally', 'outer finally']);
      assert.equal(co.state, 'done');
    });

    it('throw()/return() before the first resume finish it without running the body', () => {
      let ran = false;
      const a = ko.create<void, unknown, unknown>(() => (ran = true));
      assert.deepEqual(a.return(3), { value: 3, done: true });
      const b = ko.create(() => (ran = true));
      assert.throws(() => b.throw(new Error('early')), /early/);
      assert.equal(ran, false);
    });

    it('currentCoroutine() and inCoroutine()', () => {
      assert.equal(ko.currentCoroutine(), undefined);
      assert.equal(ko.inCoroutine(), false);
      const co = ko.create(() => [ko.currentCoroutine(), ko.inCoroutine()]);
      const r = co.resume();
      assert.equal((r.value as unknown[])[0], co);
      assert.equal((r.value as unknown[])[1], true);
    });

    for (const stackSize of ['96k', '256k']) {
      it(`stack overflow is a RangeError, never a crash (stack ${stackSize})`, () => {
        const k = engineFor(backend, stackSize);
        const recurse = (n: number): number => recurse(n + 1) + 1;
        const co = k.create(() => {
          let depth = 0;
          const probe = (n: number): number => {
            depth = n;
            return probe(n + 1) + 1;
          };
          try {
            probe(0);
          } catch (e) {
            ko.yield(e instanceof RangeError ? depth : -1);
          }
          return recurse(0);
        });
        const r = co.resume();
        assert.ok((r.value as number) > 100, `recursed ${r.value} frames before the RangeError`);
        assert.throws(() => co.resume(), RangeError);
      });
    }
  });
}
