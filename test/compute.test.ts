/**
 * ko.compute (a piscina pool of worker threads) and ko.sync, on every
 * backend: results, awaited promises, structured clone and transfer lists,
 * a job that throws (with its stack), other tasks running meanwhile,
 * cancel and timeout, ko.close(), ERR_NOT_IN_COROUTINE.
 */
import { strict as assert } from 'assert';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { CancelledError } from '../ts';
import { computeThreads } from '../ts/compute';
import { codeOf, engineFor, PACKAGE_ENTRY, runNode, testBackends } from './helpers';

const JOBS = path.join(__dirname, 'fixtures', 'compute-jobs.js');
const T = 20_000;

for (const backend of testBackends()) {
  describe(`compute and sync [${backend}]`, () => {
    const ko = engineFor(backend);
    const run = <R>(fn: () => R): Promise<R> => ko.spawn(fn).toPromise();

    it('compute: returns the result while other tasks keep running', async () => {
      const r = await run(() => {
        let ticks = 0;
        let stop = false;
        const ticker = ko.spawn(() => {
          while (!stop) {
            ko.sleep(1);
            ticks++;
          }
        });
        const f = ko.compute<number>(JOBS, 'fib', 30);
        stop = true;
        ticker.join(T);
        return { f, ticks, later: ko.compute<number>(pathToFileURL(JOBS), 'doubleLater', 21) };
      });
      assert.equal(r.f, 832040);
      assert.ok(r.ticks > 0, 'the ticker ran while the job did');
      assert.equal(r.later, 42);
    });

    it('compute: 8 jobs from 8 tasks share a pool no larger than the cores', async () => {
      const r = await run(() => {
        const tasks = Array.from({ length: 8 }, (_, i) => ko.spawn(() => ko.compute<number>(JOBS, 'fib', 20 + (i % 3))));
        const most = { threads: 0 };
        const watcher = ko.spawn(() => {
          while (tasks.some((t) => !t.done)) {
            most.threads = Math.max(most.threads, computeThreads());
            ko.sleep(2);
          }
        });
        const results = tasks.map((t) => t.join(T));
        watcher.join(T);
        return { results, threads: most.threads };
      });
      assert.deepEqual(r.results, [6765, 10946, 17711, 6765, 10946, 17711, 6765, 10946]);
      assert.ok(r.threads >= 1 && r.threads <= os.availableParallelism(), `${r.threads} threads`);
    });

    it('compute: a job that throws: the error arrives with its type, message and stack', async () => {
      const e = await run(() => {
        try {
          ko.compute(JOBS, 'failingJob', 'no good');
          return null;
        } catch (err) {
          return err as Error;
        }
      });
      assert.ok(e instanceof RangeError);
      assert.equal(e.message, 'no good');
      assert.match(e.stack ?? '', /failingJob/);
      assert.match(e.stack ?? '', /compute-jobs/);
    });

    it('compute: structured clone of arguments; transfer lists both ways', async () => {
      const r = await run(() => {
        const shape = ko.compute<string>(JOBS, 'shape', { map: new Map([['a', 1]]), date: new Date(Date.UTC(2024, 0, 1)) });
        const bytes = new Uint8Array([1, 2, 3, 4]);
        const back = ko.computeWith<{ sum: number; bytes: Uint8Array }>({ transferList: [bytes.buffer] }, JOBS, 'sumAndReturn', bytes);
        return { shape, detached: bytes.byteLength, sum: back.sum, back: [...back.bytes] };
      });
      assert.deepEqual(r, { shape: '1 2024', detached: 0, sum: 10, back: [1, 2, 3, 4] });
    });

    it('compute: cancel abandons the job, a timeout throws ERR_TIMEOUT; the pool goes on', async () => {
      const r = await run(() => {
        let finallyRan = false;
        const t = ko.spawn(() => {
          try {
            return ko.compute(JOBS, 'spin', 60_000);
          } finally {
            finallyRan = true;
          }
        });
        ko.sleep(50);
        const waitingOn = ko.tasks().find((i) => i.id === t.id)?.waitingOn;
        t.cancel('enough');
        let cancelled: unknown;
        try {
          t.join(T);
        } catch (e) {
          cancelled = e;
        }
        let timeout: string | undefined;
        try {
          ko.computeWith({ timeoutMs: 50 }, JOBS, 'spin', 60_000);
        } catch (e) {
          timeout = codeOf(e);
        }
        // Joining a cancelled task: ERR_JOINED_CANCELLED, with the task's CancelledError as the cause.
        const joinedCancelled = codeOf(cancelled) === 'ERR_JOINED_CANCELLED' && (cancelled as Error).cause instanceof CancelledError;
        return { waitingOn, cancelled: joinedCancelled, finallyRan, timeout, after: ko.compute<number>(JOBS, 'fib', 10) };
      });
      assert.deepEqual(r, { waitingOn: 'compute spin', cancelled: true, finallyRan: true, timeout: 'ERR_TIMEOUT', after: 55 });
    });

    it('compute: bad arguments, outside a task; ko.close() ends the pool', async () => {
      assert.throws(() => ko.compute(JOBS, 'fib', 1), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      const codes = await run(() => {
        const out: (string | undefined)[] = [];
        for (const f of [() => ko.compute('relative.js', 'x'), () => ko.compute(JOBS, ''), () => ko.computeWith(null as never, JOBS, 'fib', 1)]) {
          try {
            f();
            out.push('ok');
          } catch (e) {
            out.push(codeOf(e));
          }
        }
        let missing: unknown;
        try {
          ko.compute(JOBS, 'noSuchExport');
        } catch (e) {
          missing = e;
        }
        out.push(missing instanceof TypeError ? 'TypeError' : String(missing));
        return out;
      });
      assert.deepEqual(codes, ['ERR_INVALID_ARGUMENT', 'ERR_INVALID_ARGUMENT', 'ERR_INVALID_ARGUMENT', 'TypeError']);
      assert.ok(computeThreads() > 0);
      await ko.close();
      assert.equal(computeThreads(), 0);
      assert.equal(await run(() => ko.compute<number>(JOBS, 'fib', 12)), 144); // a new pool
      await ko.close();
    });

    it('compute: a program that used the pool and never closed it exits by itself', function () {
      this.timeout(130_000);
      const script = `const { createEngine } = require(${JSON.stringify(PACKAGE_ENTRY)});
        const ko = createEngine({ backend: ${JSON.stringify(backend)} });
        ko.spawn(() => ko.compute(${JSON.stringify(JOBS)}, 'fib', 20)).then((v) => console.log('result', v));`;
      const r = runNode(script); // spawnSync: killed after 120 s if it hung
      assert.equal(r.signal, null, 'it had to be killed: the pool kept it alive');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'result 6765');
    });

    it('sync: fs.promises blocking-style; a rejection throws in the task; ERR_NOT_IN_COROUTINE outside', async () => {
      const readFile = ko.sync(fsp.readFile);
      let called = 0;
      const counted = ko.sync(async (x: number) => {
        called++;
        return x + 1;
      });
      assert.throws(() => readFile(__filename), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      assert.throws(() => counted(1), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      assert.equal(called, 0, 'outside a task the async function is not called');
      const r = await run(() => {
        const text = readFile(__filename, 'utf8');
        let missing: string | undefined;
        try {
          readFile(path.join(__dirname, 'no-such-file'));
        } catch (e) {
          missing = codeOf(e);
        }
        const obj = { k: 5, get: ko.sync(async function (this: { k: number }) { return this.k; }) };
        return { has: text.includes('sync: fs.promises'), missing, n: counted(41), self: obj.get() };
      });
      assert.deepEqual(r, { has: true, missing: 'ENOENT', n: 42, self: 5 });
      assert.throws(() => ko.sync(42 as never), (e) => codeOf(e) === 'ERR_INVALID_ARGUMENT');
    });
  });
}
