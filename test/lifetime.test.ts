/** How long coroutines live and what they hold: dispose(), GC of dropped ones, teardown. */
import { strict as assert } from 'assert';
import { native } from '../ts/native';
import { codeOf, engineFor, PACKAGE_ENTRY, runNode, testBackends } from './helpers';

for (const backend of testBackends()) {
  describe(`coroutine lifetime [${backend}]`, function () {
    this.timeout(120_000);
    const ko = engineFor(backend);

    it('dispose() unwinds a suspended coroutine (finally runs) and frees it at once', () => {
      const log: string[] = [];
      const co = ko.create(() => {
        try {
          ko.yield(1);
          log.push('resumed');
        } finally {
          log.push('finally');
        }
      });
      co.resume();
      const live = native.liveCoroutines();
      co.dispose();
      assert.deepEqual(log, ['finally']);
      assert.equal(co.state, 'done');
      assert.equal(native.liveCoroutines(), live - 1);
      co.dispose(); // done: a no-op
      assert.equal(codeOf(((): unknown => { try { co.resume(); } catch (e) { return e; } })()), 'ERR_COROUTINE_DONE');
    });

    it('dispose() of a coroutine never started does not run its body', () => {
      let ran = false;
      const live = native.liveCoroutines();
      const co = ko.create(() => { ran = true; });
      assert.equal(native.liveCoroutines(), live + 1);
      co.dispose();
      assert.equal(ran, false);
      assert.equal(co.state, 'done');
      assert.equal(native.liveCoroutines(), live);
    });

    it('dispose() inside the running coroutine is ERR_ALREADY_RUNNING', () => {
      const holder: { co?: { dispose(): void } } = {};
      const co = ko.create(() => {
        try { holder.co!.dispose(); } catch (e) { return codeOf(e); }
        return 'disposed';
      });
      holder.co = co;
      assert.equal(co.resume().value, 'ERR_ALREADY_RUNNING');
    });

    it('[Symbol.dispose] is dispose() (using co = ko.create(...))', function () {
      const sym = (Symbol as { dispose?: symbol }).dispose;
      if (typeof sym !== 'symbol') this.skip();
      const log: string[] = [];
      const co = ko.create(() => { try { ko.yield(); } finally { log.push('finally'); } });
      co.resume();
      (co as unknown as Record<symbol, () => void>)[sym]();
      assert.deepEqual(log, ['finally']);
      assert.equal(co.done, true);
    });

    it('coroutines dropped in a loop are freed soon without an explicit GC (V8 knows what they hold)', () => {
      // No --expose-gc: only V8's own heuristics run GC. Before V8 was told
      // about each coroutine's external memory, ~all stayed live.
      const n = backend === 'threads' ? 8000 : 20000;
      // measured: before, 25% (stack backends) and 100% (threads) stayed live; after, 0% and 50%
      const bound = backend === 'threads' ? n * 0.75 : n / 8;
      const r = runNode(
        `const ko = require(${JSON.stringify(PACKAGE_ENTRY)}).createEngine({ backend: ${JSON.stringify(backend)} });
         const { native } = require(${JSON.stringify(PACKAGE_ENTRY.replace(/index\.js$/, 'native.js'))});
         const N = ${n};
         (async () => {
           for (let round = 0; round < 4; round++) {
             for (let i = 0; i < N / 4; i++) ko.create(() => { ko.yield(); }).resume();
             for (let t = 0; t < 5; t++) await new Promise((r) => setTimeout(r, 5));
           }
           let live = native.liveCoroutines();
           for (let t = 0; t < 50 && live > N / 4; t++) { await new Promise((r) => setTimeout(r, 10)); live = native.liveCoroutines(); }
           console.log(JSON.stringify({ live, rss: process.memoryUsage().rss }));
         })();`,
      );
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.ok(out.live <= bound, `${out.live} of ${n} dropped coroutines still live`);
    });
  });
}
