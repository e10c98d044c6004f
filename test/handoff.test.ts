// Hand-offs: a task that blocks passes the turn straight to the next ready
// task (ts/coroutine.ts, chains). Each task must still run in its own async
// context, errors must reach the task that threw, and a chain must not keep
// the event loop from running.
import { strict as assert } from 'assert';
import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'async_hooks';
import { Channel } from '../ts';
import { native } from '../ts/native';
import { schedulerStats } from '../ts/scheduler';
import { codeOf, engineFor, PACKAGE_ENTRY, runNode, testBackends } from './helpers';

/** Two tasks passing `n` messages back and forth over rendezvous channels. */
function pingPong(ko: ReturnType<typeof engineFor>, n: number, body?: (who: string, i: number) => void) {
  const a = new Channel<number>(0);
  const b = new Channel<number>(0);
  const ping = ko.spawn(() => {
    for (let i = 0; i < n; i++) {
      a.send(i);
      const v = b.recv();
      body?.('ping', v);
    }
    return 'ping done';
  });
  const pong = ko.spawn(() => {
    for (let i = 0; i < n; i++) {
      const v = a.recv();
      body?.('pong', v);
      b.send(v);
    }
    return 'pong done';
  });
  return { ping, pong };
}

for (const backend of testBackends()) {
  describe(`hand-offs [${backend}]`, function () {
    const ko = engineFor(backend);
    before(function () {
      if (!native.async_stack().ok) this.skip(); // no chains here: tasks always go back to the pass
    });

    it('a ping-pong hands the turn task to task, not back to the event loop', async () => {
      const s0 = schedulerStats();
      const { ping, pong } = pingPong(ko, 1000);
      assert.deepEqual(await Promise.all([ping, pong]), ['ping done', 'pong done']);
      const s1 = schedulerStats();
      const handOffs = s1.handOffs - s0.handOffs;
      const resumes = s1.resumes - s0.resumes;
      assert.ok(handOffs >= 1900, `${handOffs} hand-offs for 2,000 messages`);
      assert.ok(resumes < 100, `${resumes} resumes from a pass`);
    });

    it('each task keeps its own AsyncLocalStorage store and async id across hand-offs', async () => {
      const als = new AsyncLocalStorage<string>();
      const bad: string[] = [];
      const ids = new Map<string, number>();
      const check = (who: string) => {
        if (als.getStore() !== who) bad.push(`${who} saw ${als.getStore()}`);
        const id = executionAsyncId();
        if (!ids.has(who)) ids.set(who, id);
        else if (ids.get(who) !== id) bad.push(`${who}: async id ${id}, was ${ids.get(who)}`);
      };
      const a = new Channel<number>(0);
      const b = new Channel<number>(0);
      const ping = als.run('spawner', () =>
        ko.spawn(() => {
          if (als.getStore() !== 'spawner') bad.push(`ping started in ${als.getStore()}`);
          als.enterWith('ping');
          for (let i = 0; i < 300; i++) {
            a.send(i);
            b.recv();
            check('ping');
          }
        }),
      );
      const pong = ko.spawn(() => {
        als.enterWith('pong');
        for (let i = 0; i < 300; i++) {
          b.send(a.recv());
          check('pong');
        }
      });
      await Promise.all([ping, pong]);
      assert.deepEqual(bad, []);
      assert.notEqual(ids.get('ping'), ids.get('pong'));
      assert.equal(als.getStore(), undefined);
    });

    it('a task handed the turn inside runInAsyncScope finds its scope again, under async_hooks checks', function () {
      this.timeout(60_000);
      // In a child: with a hook enabled, Node aborts on a corrupted async stack.
      const r = runNode(
        `const { AsyncLocalStorage, AsyncResource, createHook, executionAsyncId, executionAsyncResource } = require('async_hooks');
         createHook({ before() {}, after() {} }).enable();
         const { createEngine, Channel } = require(${JSON.stringify(PACKAGE_ENTRY)});
         const ko = createEngine({ backend: '${backend}' });
         const als = new AsyncLocalStorage();
         const ch = [new Channel(0), new Channel(0), new Channel(0)];
         let bad = 0;
         const tasks = [0, 1, 2].map((k) => ko.spawn(() => {
           const scope = new AsyncResource('test.scope' + k);
           for (let i = 0; i < 200; i++) {
             scope.runInAsyncScope(() => als.run('t' + k + '/' + i, () => {
               const id = executionAsyncId();
               if (k === 0) { ch[0].send(i); ch[2].recv(); } else { ch[k].send(ch[k - 1].recv()); }
               if (executionAsyncId() !== id || executionAsyncResource() !== scope) bad++;
               if (als.getStore() !== 't' + k + '/' + i) bad++;
             }));
           }
         }));
         const outer = executionAsyncId();
         Promise.all(tasks).then(() => {
           console.log(bad === 0 ? 'ok' : 'bad ' + bad);
         }, (e) => { console.log('failed ' + e.stack); });`,
      );
      assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-800)}`);
      assert.equal(r.stdout.trim(), 'ok');
    });

    it('async_hooks see a before and an after around every slice a task runs, properly nested', function () {
      this.timeout(60_000);
      const r = runNode(
        `const { createHook } = require('async_hooks');
         const tasks = new Set(), befores = new Map(), stack = [];
         let bad = 0;
         createHook({
           init(id, type) { if (type === 'korutin.Coroutine') tasks.add(id); },
           before(id) { if (!tasks.has(id)) return; stack.push(id); befores.set(id, (befores.get(id) || 0) + 1); },
           after(id) { if (!tasks.has(id)) return; if (stack.pop() !== id) bad++; },
         }).enable();
         const { createEngine, Channel } = require(${JSON.stringify(PACKAGE_ENTRY)});
         const ko = createEngine({ backend: '${backend}' });
         const a = new Channel(0), b = new Channel(0);
         const ping = ko.spawn(() => { for (let i = 0; i < 200; i++) { a.send(i); b.recv(); } });
         const pong = ko.spawn(() => { for (let i = 0; i < 200; i++) b.send(a.recv()); });
         Promise.all([ping, pong]).then(() => {
           const counts = [...befores.values()].sort((x, y) => x - y);
           console.log(JSON.stringify({ bad, open: stack.length, tasks: counts.length, least: counts[0] }));
         });`,
      );
      assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-800)}`);
      const got = JSON.parse(r.stdout.trim()) as { bad: number; open: number; tasks: number; least: number };
      assert.deepEqual({ bad: got.bad, open: got.open, tasks: got.tasks }, { bad: 0, open: 0, tasks: 2 });
      assert.ok(got.least >= 200, `a task ran ${got.least} slices with hooks around them, for 200 messages`);
    });

    it('what a task woke with is its own, whatever JS runs before it reads it (an async_hooks callback using channels)', function () {
      this.timeout(60_000);
      // The hook runs as a task is entered, after the core popped it: its
      // channel calls must not change the value that task received.
      const r = runNode(
        `const { createHook } = require('async_hooks');
         const { createEngine, Channel, select, trySelect } = require(${JSON.stringify(PACKAGE_ENTRY)});
         const ko = createEngine({ backend: '${backend}' });
         const noise = new Channel(4);
         let hooked = 0;
         createHook({
           before() {
             if (!ko.current()) return;
             hooked++;
             noise.trySend('noise');
             noise.tryRecv();
             try { trySelect([noise.recvCase()]); } catch {} // refused (mid-hand-off), after writing what it would
           },
         }).enable();
         const a = new Channel(0), b = new Channel(0);
         let bad = 0;
         const ping = ko.spawn(() => { for (let i = 0; i < 300; i++) { a.send('a' + i); if (b.recv() !== 'b' + i) bad++; if (i % 3 === 0) ko.yield(); } });
         const pong = ko.spawn(() => { for (let i = 0; i < 300; i++) { if (a.recv() !== 'a' + i) bad++; b.send('b' + i); } });
         const c = new Channel(0), d = new Channel(0);
         const picky = ko.spawn(() => { for (let i = 0; i < 200; i++) { const r = select([c.recvCase(), d.recvCase()]); if (r.index !== i % 2 || r.value !== 'cd' + i) bad++; } });
         const feeder = ko.spawn(() => { for (let i = 0; i < 200; i++) (i % 2 ? d : c).send('cd' + i); });
         Promise.all([ping, pong, picky, feeder]).then(() => console.log(JSON.stringify({ bad, hooked })), (e) => console.log('failed ' + e.stack));`,
      );
      assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-800)}`);
      assert.match(r.stdout, /^\{/, `a task failed: ${r.stdout.slice(0, 800)}`);
      const got = JSON.parse(r.stdout.trim()) as { bad: number; hooked: number };
      assert.equal(got.bad, 0, `${got.bad} values were not the task's own`);
      assert.ok(got.hooked >= 300, `the hook ran ${got.hooked} times inside tasks`);
    });

    it('a task spawned by another starts in its spawner\'s context when handed the turn', async () => {
      const als = new AsyncLocalStorage<string>();
      const ch = new Channel<string>(0);
      const parent = ko.spawn(() => {
        als.enterWith('parent');
        const child = ko.spawn(() => {
          const seen = als.getStore();
          ch.send(`child saw ${seen}`);
          return als.getStore();
        });
        const got = ch.recv(); // blocks: the child is next
        return [got, als.getStore(), child.join()];
      });
      assert.deepEqual(await parent, ['child saw parent', 'parent', 'parent']);
    });

    it('an error thrown in a task reached by a hand-off is that task\'s, and its peers go on', async () => {
      const a = new Channel<number>(0);
      const b = new Channel<number>(0);
      const ping = ko.spawn(() => {
        let n = 0;
        for (let i = 0; i < 10; i++) {
          a.send(i);
          try {
            b.recv(50);
            n++;
          } catch (e) {
            return `ping stopped at ${i}: ${codeOf(e)}`;
          }
        }
        return `ping got ${n}`;
      });
      const pong = ko.spawn(() => {
        for (;;) {
          const v = a.recv();
          if (v === 5) throw new Error('pong broke at 5');
          b.send(v);
        }
      });
      await assert.rejects(pong.toPromise(), /pong broke at 5/);
      assert.equal(await ping, 'ping stopped at 5: ERR_TIMEOUT');
    });

    it('a task cancelled while its peers hand off runs its finally blocks; the others finish', async () => {
      let cleaned = false;
      const stuck = ko.spawn(() => {
        try {
          new Channel<number>(0).recv();
        } finally {
          cleaned = true;
        }
      });
      const { ping, pong } = pingPong(ko, 200, (who, i) => {
        if (who === 'ping' && i === 100) stuck.cancel('enough');
      });
      await assert.rejects(stuck.toPromise(), (e: unknown) => codeOf(e) === 'ERR_CANCELLED');
      assert.equal(cleaned, true);
      assert.deepEqual(await Promise.all([ping, pong]), ['ping done', 'pong done']);
    });

    it('an endless hand-off chain still lets timers, immediates and I/O callbacks run', async () => {
      const a = new Channel<number>(0);
      const b = new Channel<number>(0);
      let stop = false;
      let messages = 0;
      const ping = ko.spawn(() => {
        while (!stop) {
          a.send(1);
          b.recv();
          messages++;
        }
        a.close();
      });
      const pong = ko.spawn(() => {
        for (const v of a) b.send(v);
      });
      let immediates = 0;
      await new Promise<void>((resolve) => setTimeout(resolve, 30));
      await new Promise<void>((resolve) => setImmediate(() => (immediates++, resolve())));
      stop = true;
      await Promise.all([ping, pong]);
      assert.equal(immediates, 1);
      assert.ok(messages > 0);
    });

    it('a Worker hands off between its own tasks while the main thread does too', async () => {
      const { Worker } = await import('worker_threads');
      const code = `
        const { parentPort } = require('worker_threads');
        const { AsyncLocalStorage } = require('async_hooks');
        const { createEngine, Channel } = require(${JSON.stringify(PACKAGE_ENTRY)});
        const { schedulerStats } = require(${JSON.stringify(PACKAGE_ENTRY.replace(/index\.js$/, 'scheduler.js'))});
        const ko = createEngine({ backend: ${JSON.stringify(backend)} });
        const als = new AsyncLocalStorage();
        const a = new Channel(0), b = new Channel(0);
        let bad = 0;
        const ping = ko.spawn(() => { als.enterWith('ping'); let s = 0; for (let i = 0; i < 500; i++) { a.send(i); s += b.recv(); if (als.getStore() !== 'ping') bad++; } return s; });
        const pong = ko.spawn(() => { als.enterWith('pong'); for (let i = 0; i < 500; i++) { b.send(a.recv()); if (als.getStore() !== 'pong') bad++; } });
        Promise.all([ping, pong]).then(([sum]) => parentPort.postMessage({ sum, bad, handOffs: schedulerStats().handOffs }));
      `;
      const w = new Worker(code, { eval: true });
      const mine = pingPong(ko, 500);
      const got = await new Promise<{ sum: number; bad: number; handOffs: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      await Promise.all([mine.ping, mine.pong]);
      await w.terminate();
      assert.deepEqual({ sum: got.sum, bad: got.bad }, { sum: (499 * 500) / 2, bad: 0 });
      assert.ok(got.handOffs >= 900, `${got.handOffs} hand-offs in the Worker`);
    });

    it('tasks on this backend and on every other hand off to each other', async function () {
      const others = testBackends().filter((o) => o !== backend);
      if (others.length === 0) this.skip();
      for (const other of others) {
        const ko2 = engineFor(other);
        const a = new Channel<number>(0);
        const b = new Channel<number>(0);
        const als = new AsyncLocalStorage<string>();
        const mine = ko.spawn(() => {
          als.enterWith(backend);
          let sum = 0;
          for (let i = 0; i < 200; i++) {
            a.send(i);
            sum += b.recv();
            assert.equal(als.getStore(), backend);
          }
          return sum;
        });
        const theirs = ko2.spawn(() => {
          als.enterWith(other);
          for (let i = 0; i < 200; i++) {
            b.send(a.recv() * 2);
            assert.equal(als.getStore(), other);
          }
        });
        await theirs;
        assert.equal(await mine, 2 * ((199 * 200) / 2), `with ${other}`);
      }
    });
  });
}

describe('hand-offs', () => {
  it("only a task's own coroutine blocks (and hands off): one it created is refused with ERR_NOT_IN_COROUTINE, and the task blocks again after resuming it", async () => {
    // The hand-off is the scheduler binding's decision inside a blocking
    // call (no JS can ask for one): this is what guards it from outside.
    const ko = engineFor(testBackends()[0]);
    const ch = new Channel<number>(0);
    const seen: string[] = [];
    const a = ko.spawn(() => {
      const co = ko.create(() => {
        assert.throws(() => ch.recv(), (e: unknown) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
        seen.push('refused');
        ko.yield();
        return 'inner done';
      });
      co.resume();
      const got = ch.recv(); // the task itself again: it blocks, and b runs
      seen.push(`got ${got}`);
      return [got, co.resume().value];
    });
    const b = ko.spawn(() => {
      seen.push('b');
      ch.send(7);
    });
    assert.deepEqual(await a, [7, 'inner done']);
    await b;
    assert.deepEqual(seen, ['refused', 'b', 'got 7']);
  });

  it("a finished coroutine's number is refused, and never reaches the coroutine that reuses its slot", () => {
    const backend = testBackends()[0];
    let ran = 0;
    const first = new native.Coroutine(backend, 256 * 1024, 4096, () => undefined);
    native.resume(first.no);
    const second = new native.Coroutine(backend, 256 * 1024, 4096, () => void ran++);
    assert.notEqual(second.no, first.no);
    assert.throws(() => native.resume(first.no), (e: unknown) => codeOf(e) === 'ERR_COROUTINE_DONE');
    assert.throws(() => native.resume(-1), (e: unknown) => codeOf(e) === 'ERR_COROUTINE_DONE');
    assert.throws(() => native.resume(0.5), (e: unknown) => codeOf(e) === 'ERR_COROUTINE_DONE');
    assert.equal(ran, 0);
    native.resume(second.no);
    assert.equal(ran, 1);
  });

  it('a resource made while a chain runs is in its task\'s context', async () => {
    const ko = engineFor(testBackends()[0]);
    const ch = new Channel<number>(0);
    const ids: number[] = [];
    const t1 = ko.spawn(() => {
      ids.push(new AsyncResource('x').triggerAsyncId(), executionAsyncId());
      ch.send(1);
    });
    const t2 = ko.spawn(() => {
      ch.recv();
      ids.push(new AsyncResource('y').triggerAsyncId(), executionAsyncId());
    });
    await Promise.all([t1, t2]);
    assert.equal(ids[0], ids[1], 'a resource is triggered by the task that made it');
    assert.equal(ids[2], ids[3]);
    assert.notEqual(ids[1], ids[3]);
  });
});
