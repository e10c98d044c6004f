/**
 * Environment teardown: a Worker (or the main thread at exit) that ends with
 * coroutines still suspended, parked in the pool or never started frees them
 * all natively (stacks, V8 threads, and on the threads backend their OS
 * threads), without running JavaScript.
 */
import { strict as assert } from 'assert';
import { PACKAGE_ENTRY, runNode, testBackends } from './helpers';

/** A Worker's code: `n` coroutines left suspended (their `finally` blocks do
 *  not run), `parked` finished ones waiting in the pool, a few never started;
 *  with `tidy`, everything disposed of before the Worker ends instead. */
function workerCode(backend: string, n: number, parked: number, tidy: boolean): string {
  return `const { parentPort } = require('worker_threads');
    const ko = require(${JSON.stringify(PACKAGE_ENTRY)}).createEngine({ backend: ${JSON.stringify(backend)} });
    const held = [];
    for (let i = 0; i < ${n}; i++) {
      const co = ko.create(() => { try { for (;;) ko.yield(i); } finally { globalThis.unwound = (globalThis.unwound || 0) + 1; } });
      co.resume();
      held.push(co);
    }
    const done = [];
    for (let i = 0; i < ${parked}; i++) { const co = ko.create(() => ko.yield()); co.resume(); done.push(co); }
    for (const co of done) co.resume();  // they finish and park in the pool
    for (let i = 0; i < 8; i++) held.push(ko.create(() => 0));  // never started
    if (${tidy}) for (const co of held) co.dispose();
    parentPort.postMessage('ok');
    // Last, a round of switches: the Worker ends while (threads backend)
    // the coroutines' threads are still on their way back to sleep.
    if (!${tidy}) for (let i = 0; i < ${n}; i++) held[i].resume();`;
}

/** A script for the child process: runs Workers one after the other (each
 *  with its own code), then GCs and prints what /proc/self/status says. */
function runWorkers(codes: string[], mainLoads: boolean): string {
  return `const { Worker } = require('worker_threads');
    const fs = require('fs');
    ${mainLoads ? `require(${JSON.stringify(PACKAGE_ENTRY)});` : ''}
    const codes = ${JSON.stringify(codes)};
    function status() {
      const s = fs.readFileSync('/proc/self/status', 'utf8');
      const field = (k) => Number(s.match(new RegExp('^' + k + ':\\\\s+(\\\\d+)', 'm'))[1]);
      return { vmKb: field('VmSize'), rssKb: field('VmRSS'), threads: field('Threads') };
    }
    function run(code) {
      return new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true });
        let ok = false;
        w.on('message', (m) => { if (m === 'ok') ok = true; else reject(new Error(String(m))); });
        w.on('error', reject);
        w.on('exit', (c) => (ok && c === 0 ? resolve() : reject(new Error('worker exit ' + c))));
      });
    }
    const settle = async () => { for (let i = 0; i < 5; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); } };
    (async () => {
      const out = [];
      for (const code of codes) {
        if (code === 'mark') { await settle(); out.push(status()); continue; }
        await run(code);
      }
      await settle();
      out.push(status());
      console.log(JSON.stringify(out));
    })().catch((e) => { console.error(e); process.exit(3); });`;
}

for (const backend of testBackends()) {
  describe(`environment teardown [${backend}]`, function () {
    this.timeout(300_000);

    it('10 Workers each ending with 500 suspended coroutines (and pooled, unstarted ones) give back their stacks and threads', function () {
      if (process.platform !== 'linux') this.skip();
      const n = 500;
      // Two tidy Workers first: the baseline includes what any Worker that
      // ran coroutines leaves (malloc arenas, V8's and Node's one-off state).
      const codes = [workerCode(backend, n, 20, true), workerCode(backend, n, 20, true), 'mark'];
      for (let i = 0; i < 10; i++) codes.push(workerCode(backend, n, 20, false));
      const r = runNode(runWorkers(codes, true), ['--expose-gc']);
      assert.equal(r.status, 0, `status ${r.status} signal ${r.signal}\n${r.stderr}`);
      const [base, after] = JSON.parse(r.stdout.trim().split('\n').pop()!);
      const grew = {
        vmMb: Math.round((after.vmKb - base.vmKb) / 1024),
        rssMb: Math.round((after.rssKb - base.rssKb) / 1024),
        threads: after.threads - base.threads,
      };
      if (process.env.KORUTIN_TEST_VERBOSE) console.log(`      ${backend}: base ${JSON.stringify(base)} grew ${JSON.stringify(grew)}`);
      // A leak is 5,000 stacks of 256 KiB and more: +1.3 GB of address
      // space (and on threads 5,000 threads). What is left is noise: heap
      // growth, the stack pool (64 stacks at most).
      assert.ok(grew.vmMb < 400, `address space grew by ${grew.vmMb} MB over 10 Workers`);
      assert.ok(grew.threads <= 4, `${grew.threads} more threads after the Workers ended`);
    });

    it('a process where only Workers load korutin outlives Workers that ended with suspended coroutines', function () {
      if (process.platform !== 'linux') this.skip();
      // The addon is unloaded with the last Worker that loaded it: no thread
      // of a coroutine may still run (or wake up) in it then. Before, on
      // threads, such a process died of SIGSEGV in most runs under load.
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push(workerCode(backend, 100, 4, false));
      const script = runWorkers(codes, false).replace(
        'console.log(JSON.stringify(out));',
        `process.on('SIGUSR2', () => {});
         const end = Date.now() + 300;
         while (Date.now() < end) { gc(); process.kill(process.pid, 'SIGUSR2'); await new Promise((r) => setTimeout(r, 5)); }
         console.log(JSON.stringify(out));`,
      );
      for (let run = 0; run < 9; run++) {
        const r = runNode(script, ['--expose-gc']);
        assert.equal(r.status, 0, `run ${run}: status ${r.status} signal ${r.signal}\n${r.stderr}`);
      }
    });

    it('Workers terminated at any moment while they load korutin or run tasks never take the process down', () => {
      // As a pool recycles a worker (ko.compute's timeout or cancel): once,
      // a Worker terminated inside the addon's load, or inside the async
      // probe, aborted or crashed the whole process.
      const body = `const ko = require(${JSON.stringify(PACKAGE_ENTRY)}).createEngine({ backend: ${JSON.stringify(backend)} });
        for (let i = 0; i < 10; i++) ko.spawn(() => { for (let j = 0; j < 20; j++) ko.sleep(1); });`;
      const r = runNode(
        `const { Worker } = require('worker_threads');
         let left = 120, started = 0;
         const one = () => {
           if (started++ >= left) return;
           const w = new Worker(${JSON.stringify(body)}, { eval: true });
           w.on('error', () => {});
           setTimeout(() => w.terminate().then(one), Math.random() * 60);
         };
         one(); one();
         process.on('exit', () => console.log('ended', started));`,
      );
      assert.equal(r.signal, null, r.stderr);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /ended 12[12]/);
    });

    it('a Worker terminated with suspended coroutines, and the main thread exiting with some, end cleanly', () => {
      const entry = JSON.stringify(PACKAGE_ENTRY);
      const r = runNode(
        `const { Worker } = require('worker_threads');
         const ko = require(${entry}).createEngine({ backend: ${JSON.stringify(backend)} });
         const held = [];
         for (let i = 0; i < 50; i++) { const co = ko.create(() => { try { ko.yield(); } finally { console.log('finally ran'); } }); co.resume(); held.push(co); }
         const w = new Worker(${JSON.stringify(
           `const { parentPort } = require('worker_threads');
            const ko = require(${entry}).createEngine({ backend: ${JSON.stringify(backend)} });
            const held = [];
            for (let i = 0; i < 200; i++) { const co = ko.create(() => ko.yield()); co.resume(); held.push(co); }
            parentPort.postMessage('ready');
            setInterval(() => {}, 1000);`,
         )}, { eval: true });
         w.on('message', () => w.terminate().then((code) => console.log('terminated', code)));`,
      );
      assert.equal(r.status, 0, `status ${r.status} signal ${r.signal}\n${r.stderr}`);
      assert.equal(r.stdout.trim(), 'terminated 1');  // no finally block ran at teardown
    });

    it('a Worker that exits with blocked tasks, nested coroutines and one suspended in vm code ends cleanly', () => {
      const entry = JSON.stringify(PACKAGE_ENTRY);
      const worker = `const vm = require('vm');
        const ko = require(${entry}).createEngine({ backend: ${JSON.stringify(backend)} });
        const ch = new (require(${entry}).Channel)(0);
        for (let i = 0; i < 20; i++) ko.spawn(() => ko.sleep(1e9));
        for (let i = 0; i < 20; i++) ko.spawn(() => ch.recv());
        const outer = [];
        for (let i = 0; i < 20; i++) {
          const co = ko.create(() => { const inner = ko.create(() => { for (;;) ko.yield(1); }); inner.resume(); for (;;) ko.yield(inner.resume().value); });
          co.resume();
          outer.push(co);
        }
        const ctx = vm.createContext({ y: () => ko.yield(2) });
        const inVm = ko.create(() => vm.runInContext('for (;;) y()', ctx));
        inVm.resume();
        setTimeout(() => process.exit(0), 50);`;
      const r = runNode(
        `const { Worker } = require('worker_threads');
         let n = 0;
         for (let i = 0; i < 3; i++) new Worker(${JSON.stringify(worker)}, { eval: true }).on('exit', (code) => {
           if (code !== 0) { console.log('exit ' + code); process.exit(1); }
           if (++n === 3) { gc(); console.log('ok'); }
         });`,
        ['--expose-gc'],
      );
      assert.equal(r.status, 0, `status ${r.status} signal ${r.signal}\n${r.stderr}`);
      assert.equal(r.stdout.trim(), 'ok');
    });
  });
}
