/**
 * The scheduler on the event loop, on every backend: spawn, join, await,
 * sleep order, wakeup, fair yield, ko.await, cancel in every primitive,
 * ko.tasks(), unhandled errors, every timeout.
 *
 * The threads backend gives each task an OS thread of its own, so its runs
 * use smaller counts (SMALL below); everything else is the same.
 */
import { strict as assert } from 'assert';
import { AsyncLocalStorage } from 'async_hooks';
import { performance } from 'perf_hooks';
import {
  CancelledError, Channel, Cond, Mutex, select, Semaphore, Task, WaitGroup,
} from '../ts';
import * as path from 'path';
import { codeOf, engineFor, gc, inTask, NATIVE_ENTRY, PACKAGE_ENTRY, runNode, testBackends, tick, until } from './helpers';

for (const backend of testBackends()) {
  describe(`scheduler [${backend}]`, () => {
    const ko = engineFor(backend);
    const ownThread = backend === 'threads';
    /** 10,000 sleepers, fewer on threads (one OS thread per task). */
    const SLEEPERS = ownThread ? 300 : 10_000;

    it('where async contexts cannot move (no chains), tasks run alone from the pass and behave the same', function () {
      this.timeout(60_000);
      // No runtime tested here lacks chains: the addon is told so, in a child.
      const r = runNode(
        `const { native } = require(${JSON.stringify(NATIVE_ENTRY)});
         native.async_stack = () => ({ ok: false, reason: 'the test says so' });
         const { createEngine, Channel, CancelledError } = require(${JSON.stringify(PACKAGE_ENTRY)});
         const { schedulerStats } = require(${JSON.stringify(path.join(path.dirname(PACKAGE_ENTRY), 'scheduler.js'))});
         const ko = createEngine({ backend: ${JSON.stringify(backend)} });
         const a = new Channel(0), b = new Channel(2);
         const ping = ko.spawn(() => { let s = 0; for (let i = 0; i < 50; i++) { a.send(i); s += b.recv(); } return s; });
         const pong = ko.spawn(() => { for (let i = 0; i < 50; i++) b.send(a.recv() * 2); ko.sleep(2); return ko.await(Promise.resolve('pong')); });
         const fails = ko.spawn(() => { ko.yield(); throw new Error('boom'); });
         const sleeper = ko.spawn(() => ko.sleep(60_000));
         const cancelled = ko.spawn(() => 'never');
         cancelled.cancel();
         sleeper.cancel();
         Promise.allSettled([ping, pong, fails, sleeper, cancelled]).then((rs) => {
           const st = schedulerStats();
           console.log(JSON.stringify({
             out: rs.map((x) => x.status === 'fulfilled' ? x.value : (x.reason instanceof CancelledError ? 'cancelled' : x.reason.message)),
             handOffs: st.handOffs, resumes: st.resumes,
           }));
         });`,
      );
      assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-800)}`);
      const got = JSON.parse(r.stdout.trim()) as { out: unknown[]; handOffs: number; resumes: number };
      assert.deepEqual(got.out, [2 * 1225, 'pong', 'boom', 'cancelled', 'cancelled']);
      assert.equal(got.handOffs, 0);
      assert.ok(got.resumes >= 100, `${got.resumes} resumes from the pass`);
    });

    it('spawn: starts soon on the event loop, with its arguments and options', async () => {
      const log: string[] = [];
      const t = ko.spawn((a: number, b: string) => {
        log.push(`ran ${a} ${b}`);
        return a * 2;
      }, 21, 'x', { name: 'doubler' });
      log.push('spawned');
      assert.equal(t.name, 'doubler');
      assert.equal(typeof t.id, 'number');
      assert.equal(t.state, 'ready');
      assert.equal(await t, 42);
      assert.deepEqual(log, ['spawned', 'ran 21 x']);
      assert.equal(t.state, 'done');
      const u = ko.spawn(() => 1);
      assert.equal(u.name, `task-${u.id}`);
      assert.ok(u.id > t.id);
      // a plain object the function takes is an argument, not options
      const v = ko.spawn((o: { name: string }) => o.name, { name: 'arg' });
      assert.equal(await v, 'arg');
      assert.equal(v.name, `task-${v.id}`);
      const w = ko.spawnWith({ name: 'explicit' }, (o: { name: string }) => o.name, { name: 'arg2' });
      assert.equal(w.name, 'explicit');
      assert.equal(await w, 'arg2');
      await u;
    });

    it('await task rejects with the error; join rethrows it; state is failed', async () => {
      const boom = new Error('boom');
      const t = ko.spawn(() => {
        throw boom;
      });
      await assert.rejects(t.toPromise(), (e) => e === boom);
      assert.equal(t.state, 'failed');
      const r = await inTask(ko, () => {
        try {
          t.join();
          return 'no';
        } catch (e) {
          return e === boom ? 'rethrown' : 'other';
        }
      });
      assert.equal(r, 'rethrown');
    });

    it('state: ready, running, blocked, done; current() and data are per task', async () => {
      const seen: string[] = [];
      const ch = new Channel<number>(0);
      const t = ko.spawn(() => {
        const me = ko.current()!;
        seen.push(me.state);
        me.data = { mine: me.id };
        ch.recv();
        return (ko.current()!.data as { mine: number }).mine;
      });
      const other = ko.spawn(() => {
        ko.current()!.data = 'other';
        return ko.current()!.data;
      });
      assert.equal(t.state, 'ready');
      assert.equal(ko.current(), undefined);
      await until(() => t.state === 'blocked');
      assert.equal(t.state, 'blocked');
      assert.equal(await other, 'other');
      await inTask(ko, () => ch.send(1));
      assert.equal(await t, t.id);
      assert.deepEqual(seen, ['running']);
    });

    it('join waits inside a task; its timeout throws ERR_TIMEOUT and the task keeps running', async () => {
      const r = await inTask(ko, () => {
        const slow = ko.spawn(() => {
          ko.sleep(200); // well past the join timeout, even on a stalled host
          return 'slow done';
        });
        const t0 = performance.now();
        let code: string | undefined;
        try {
          slow.join(5);
        } catch (e) {
          code = codeOf(e);
        }
        const waited = performance.now() - t0;
        const stateAfter = slow.state;
        const v = slow.join();
        return { code, waited, stateAfter, v };
      });
      assert.equal(r.code, 'ERR_TIMEOUT');
      assert.ok(r.waited >= 4, `waited ${r.waited}`);
      assert.equal(r.stateAfter, 'blocked');
      assert.equal(r.v, 'slow done');
      const self = await inTask(ko, () => {
        try {
          ko.current()!.join();
        } catch (e) {
          return codeOf(e);
        }
        return 'no';
      });
      assert.equal(self, 'ERR_DEADLOCK');
    });

    it('blocking calls outside a task throw ERR_NOT_IN_COROUTINE (also from a coroutine a task made)', async () => {
      const t = ko.spawn(() => 1);
      assert.throws(() => t.join(), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      assert.throws(() => ko.sleep(1), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      assert.throws(() => new Channel().recv(), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      const nested = await inTask(ko, () => {
        const co = ko.create(() => {
          try {
            ko.sleep(1);
          } catch (e) {
            return codeOf(e);
          }
          return 'slept';
        });
        return co.resume().value;
      });
      assert.equal(nested, 'ERR_NOT_IN_COROUTINE');
      await t;
    });

    it(`${SLEEPERS} tasks sleeping random times wake in deadline order, none early`, async () => {
      const order: number[] = [];
      const deadline: number[] = [];
      const early: number[] = [];
      let seed = 12345;
      const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
      const ts: Task[] = [];
      for (let i = 0; i < SLEEPERS; i++) {
        const ms = Math.floor(rnd() * 200);
        ts.push(
          ko.spawn(() => {
            const before = performance.now();
            ko.sleep(ms);
            if (performance.now() - before < ms - 1) early.push(i); // Node timers have a 1 ms grain
            // the deadline the scheduler used (its clock, in µs)
            deadline[i] = ko.current()!.sleepUntil;
            order.push(i);
          }),
        );
      }
      for (const t of ts) await t;
      assert.equal(order.length, SLEEPERS);
      assert.deepEqual(early, []);
      for (let k = 1; k < order.length; k++) {
        assert.ok(deadline[order[k - 1]] <= deadline[order[k]], `task ${order[k - 1]} woke before ${order[k]}`);
      }
    });

    it('wakeup ends a sleep early (sleep returns true); false when not sleeping', async () => {
      const sleeper = ko.spawn(() => {
        const t0 = performance.now();
        const early = ko.sleep(10_000);
        return { early, took: performance.now() - t0 };
      });
      assert.equal(ko.wakeup(sleeper), false); // not asleep yet
      await until(() => sleeper.state === 'blocked');
      assert.equal(ko.wakeup(sleeper), true);
      const r = await sleeper;
      assert.equal(r.early, true);
      assert.ok(r.took < 5000);
      assert.equal(ko.wakeup(sleeper), false);
      assert.equal(await inTask(ko, () => ko.sleep(1)), false);
    });

    it('yieldNow is fair: every ready task runs before the yielder again', async () => {
      const log: number[] = [];
      const ts = [0, 1, 2, 3].map((id) =>
        ko.spawn(() => {
          for (let i = 0; i < 5; i++) {
            log.push(id);
            ko.yieldNow();
          }
        }),
      );
      for (const t of ts) await t;
      assert.deepEqual(log, Array.from({ length: 20 }, (_, i) => i % 4));
    });

    it('a task that keeps yielding does not starve Node timers (passes give the loop a turn)', async () => {
      let stop = false;
      let spins = 0;
      const spinner = ko.spawn(() => {
        while (!stop) {
          spins++;
          ko.yieldNow();
        }
      });
      await new Promise<void>((r) => setTimeout(r, 20)); // fires although the spinner never blocks
      stop = true;
      await spinner;
      assert.ok(spins > 10, `spins: ${spins}`);
    });

    it('runs inside a worker_threads Worker (a scheduler per thread)', async () => {
      const { Worker } = await import('worker_threads');
      const code = `
        const { parentPort } = require('worker_threads');
        const { createEngine, Channel } = require(${JSON.stringify(PACKAGE_ENTRY)});
        const ko = createEngine({ backend: ${JSON.stringify(backend)} });
        const ch = new Channel(2);
        const producer = ko.spawn(() => { for (let i = 1; i <= 100; i++) ch.send(i); ch.close(); });
        const consumer = ko.spawn(() => { let s = 0; for (const v of ch) { s += v; ko.sleep(0); } return s; });
        Promise.all([producer, consumer]).then(([, sum]) => parentPort.postMessage(sum));
      `;
      const w = new Worker(code, { eval: true });
      const sum = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      await w.terminate();
      assert.equal(sum, 5050);
    });

    it('ko.await resumes in the turn the promise settles, as a plain await does (not a turn later)', async () => {
      const order: string[] = [];
      const t = ko.spawn(() => {
        // Queued before the wait: it runs in the next turn.
        setImmediate(() => order.push('next turn'));
        ko.await(Promise.resolve());
        order.push('settled: resumed');
        // Settled by a callback: resumed in that callback's microtasks, before the turn after.
        ko.await(new Promise<void>((r) => setImmediate(() => {
          setImmediate(() => order.push('turn after the settling one'));
          r();
        })));
        order.push('settled in a callback: resumed');
      });
      await t;
      await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(order, ['settled: resumed', 'next turn', 'settled in a callback: resumed', 'turn after the settling one']);
    });

    it('ko.await: only this task waits; the value comes back, a rejection is thrown at the call', async () => {
      let ticks = 0;
      const ticker = ko.spawn(() => {
        for (let i = 0; i < 5; i++) {
          ticks++;
          ko.sleep(1);
        }
      });
      const r = await inTask(ko, () => {
        const before = ticks;
        const v = ko.await(new Promise<number>((res) => setTimeout(() => res(7), 15)));
        const during = ticks - before;
        let err: unknown;
        try {
          ko.await(Promise.reject(new Error('nope')));
        } catch (e) {
          err = e;
        }
        const plain = ko.await(5 as unknown as Promise<number>);
        return { v, during, err: (err as Error).message, plain };
      });
      assert.equal(r.v, 7);
      assert.ok(r.during >= 1, 'the other task ran while this one awaited');
      assert.equal(r.err, 'nope');
      assert.equal(r.plain, 5);
      await ticker;
    });

    it('ko.await: a promise that settles after its await timed out or was cancelled changes no later await', async () => {
      const late = <T>(v: T, ms: number) => new Promise<T>((res) => setTimeout(() => res(v), ms));
      const r = await inTask(ko, () => {
        const out: unknown[] = [];
        try {
          ko.await(late('first', 20), 1);
        } catch (e) {
          out.push(codeOf(e));
        }
        // the first settles while this one waits, and after it: neither is this one's
        out.push(ko.await(late('second', 40)));
        out.push(ko.await(Promise.resolve('third')));
        return out;
      });
      assert.deepEqual(r, ['ERR_TIMEOUT', 'second', 'third']);
      const ch = new Channel<string>(0);
      const t = ko.spawn(() => ko.await(late('cancelled', 15)));
      await tick();
      t.cancel();
      await assert.rejects(Promise.resolve(t), CancelledError);
      const u = ko.spawn(() => [ko.await(late('mine', 30)), ch.recv()]);
      ko.spawn(() => ch.send('sent'));
      assert.deepEqual(await u, ['mine', 'sent']);
    });

    it('ko.await: a then() that registers and throws is thrown by the await, and its reaction changes no later await', async () => {
      const boom = new Error('then failed');
      const r = await inTask(ko, () => {
        const p = Promise.resolve(1);
        const then = Promise.prototype.then;
        Object.defineProperty(p, 'then', {
          value(this: Promise<number>, ok: (v: number) => unknown, err: (e: unknown) => unknown) {
            then.call(this, ok, err);
            throw boom;
          },
        });
        let caught: unknown;
        try {
          ko.await(p);
        } catch (e) {
          caught = e;
        }
        // p's reaction comes while this await waits, with the same wait number
        const next = ko.await(new Promise((res) => setTimeout(() => res('next'), 10)));
        return [caught, next];
      });
      assert.deepEqual(r, [boom, 'next']);
    });

    it('each task keeps the AsyncLocalStorage store it was spawned in, across every suspension', async function () {
      const als = new AsyncLocalStorage<string>();
      const ch = new Channel<number>(0);
      const a = als.run('A', () =>
        ko.spawn(() => {
          const seen = [als.getStore()];
          ko.sleep(2);
          seen.push(als.getStore());
          ch.send(1);
          seen.push(als.getStore());
          seen.push(ko.await(new Promise<string | undefined>((r) => setTimeout(() => r(als.getStore()), 2))));
          seen.push(als.getStore());
          return seen;
        }),
      );
      const b = als.run('B', () =>
        ko.spawn(() => {
          const seen = [als.getStore()];
          ch.recv();
          seen.push(als.getStore());
          ko.yieldNow();
          seen.push(als.getStore());
          return seen;
        }),
      );
      assert.deepEqual(await a, ['A', 'A', 'A', 'A', 'A']);
      assert.deepEqual(await b, ['B', 'B', 'B']);
      assert.equal(als.getStore(), undefined);
    });

    it('ko.tasks() lists id, name, state and what each waits on', async () => {
      const ch = new Channel<number>(0);
      const ch2 = new Channel<number>(0);
      const m = new Mutex();
      const cond = new Cond();
      const sem = new Semaphore(0);
      const wg = new WaitGroup();
      wg.add(1);
      const never = new Promise<void>(() => undefined);
      const holder = ko.spawn(() => {
        m.lock();
        ko.sleep(100_000);
      }, { name: 'holder' });
      const ts = [
        ko.spawn(() => ko.sleep(50_000), { name: 'sleeper' }),
        ko.spawn(() => ch.recv(), { name: 'receiver' }),
        ko.spawn(() => holder.join(), { name: 'joiner' }),
        ko.spawn(() => ko.await(never), { name: 'awaiter' }),
        ko.spawn(() => m.lock(), { name: 'locker' }),
        ko.spawn(() => cond.wait(), { name: 'cond' }),
        ko.spawn(() => sem.acquire(), { name: 'sem' }),
        ko.spawn(() => wg.wait(), { name: 'wg' }),
        ko.spawn(() => select([ch.recvCase(), ko.after(30_000)]), { name: 'selector' }),
        ko.spawn(() => ch2.send(1, 20_000), { name: 'sender' }),
      ];
      await until(() => ts.every((t) => t.state === 'blocked'), 'every task blocked');
      const list = ko.tasks();
      const by = (name: string) => list.find((x) => x.name === name)!;
      const sleeper = by('sleeper');
      assert.equal(sleeper.state, 'blocked');
      assert.equal(sleeper.id, ts[0].id);
      assert.equal(sleeper.waitingOn, 'sleep 50000ms');
      assert.equal(by('holder').waitingOn, 'sleep 100000ms');
      assert.equal(by('receiver').waitingOn, `recv channel#${ch.id}`);
      assert.equal(by('joiner').waitingOn, `join task#${holder.id}`);
      assert.equal(by('awaiter').waitingOn, 'await promise');
      assert.equal(by('locker').waitingOn, `lock mutex#${m.id}`);
      assert.equal(by('cond').waitingOn, `wait cond#${cond.id}`);
      assert.equal(by('sem').waitingOn, `acquire semaphore#${sem.id}`);
      assert.equal(by('wg').waitingOn, `wait waitgroup#${wg.id}`);
      assert.equal(by('selector').waitingOn, `select [recv channel#${ch.id}, after 30000ms]`);
      assert.match(by('sender').waitingOn!, new RegExp(`^send channel#${ch2.id} \\(timeout 20000ms, [0-9.]+ms left\\)$`));
      assert.equal(by('sender').backend, backend);
      for (const t of [holder, ...ts]) t.cancel('cleanup');
      for (const t of [holder, ...ts]) await assert.rejects(t.toPromise(), CancelledError);
      assert.equal(ko.tasks().filter((x) => x.id >= holder.id).length, 0);
    });

    describe('cancel', () => {
      type Setup = { what: string; block: () => unknown; after?: () => void };
      const ch = new Channel<number>(0);
      const full = new Channel<number>(1);
      const m = new Mutex();
      const cm = new Mutex();
      const cond = new Cond();
      const condM = new Cond(cm);
      const sem = new Semaphore(0);
      const wg = new WaitGroup();
      let holder: Task | null = null;
      let forever: Task | null = null;
      const setups: Setup[] = [
        { what: 'sleep', block: () => ko.sleep(100_000) },
        { what: 'join', block: () => forever!.join() },
        { what: 'send', block: () => full.send(2) },
        { what: 'recv', block: () => ch.recv() },
        { what: 'select', block: () => select([ch.recvCase(), full.sendCase(3), ko.after(100_000)]) },
        { what: 'mutex lock', block: () => m.lock() },
        { what: 'cond wait', block: () => cond.wait() },
        {
          what: 'cond wait (with a mutex, held again when it throws)',
          block: () => {
            cm.lock();
            try {
              return condM.wait();
            } finally {
              cm.unlock(); // would throw if the mutex were not held again
            }
          },
        },
        { what: 'semaphore acquire', block: () => sem.acquire() },
        { what: 'waitgroup wait', block: () => wg.wait() },
        { what: 'await', block: () => ko.await(new Promise(() => undefined)) },
        {
          what: 'yieldNow (cancelled while ready to run)',
          block: () => {
            for (;;) ko.yieldNow();
          },
        },
      ];

      before(async () => {
        full.trySend(1);
        wg.add(1);
        holder = ko.spawn(() => {
          m.lock();
          try {
            ko.sleep(100_000);
          } finally {
            m.unlock();
          }
        });
        forever = ko.spawn(() => ko.sleep(100_000));
        await until(() => holder!.state === 'blocked' && forever!.state === 'blocked');
      });

      after(async () => {
        holder!.cancel();
        forever!.cancel();
        await assert.rejects(holder!.toPromise(), CancelledError);
        await assert.rejects(forever!.toPromise(), CancelledError);
        // the primitives are intact: no cancelled waiter was left behind
        assert.equal(full.tryRecv().ok, true);
        assert.equal(full.trySend(4), true);
        assert.equal(cond.signal(), 0);
        sem.release();
        assert.equal(sem.tryAcquire(), true);
        wg.done();
        assert.equal(m.locked, false);
      });

      for (const s of setups) {
        it(`while blocked in ${s.what}: CancelledError at the suspension point, finally blocks run`, async () => {
          const log: string[] = [];
          const t = ko.spawn(() => {
            try {
              s.block();
              log.push('returned');
            } catch (e) {
              log.push(e instanceof CancelledError ? `cancelled: ${String(e.reason)}` : `other: ${String(e)}`);
              throw e;
            } finally {
              log.push('finally');
              ko.sleep(1); // a cancelled task may still block while cleaning up
              log.push('cleaned up');
            }
          });
          if (s.what.startsWith('yieldNow')) {
            const canceller = ko.spawn(() => {
              ko.yieldNow();
              const state = t.state;
              t.cancel('why'); // pending: thrown at its next suspension point
              return state;
            });
            assert.equal(await canceller, 'ready');
          } else {
            if (s.what.includes('with a mutex')) {
              const waitingOf = (): string | null | undefined => ko.tasks().find((x) => x.id === t.id)?.waitingOn;
              await until(() => t.state === 'blocked', `${s.what}: blocked`);
              assert.equal(waitingOf(), `wait cond#${condM.id}`);
              // hold the mutex so that the cancelled waiter must wait to take it back
              const release = new Channel<void>(0);
              const blocker = ko.spawn(() => {
                cm.lock();
                try {
                  release.recv();
                } finally {
                  cm.unlock();
                }
              });
              await until(() => blocker.state === 'blocked', 'the blocker holds the mutex');
              assert.equal(t.cancel('why'), true);
              await until(() => waitingOf() === `lock mutex#${cm.id} (after cond wait)`, 'waiting for the mutex');
              await release.sendAsync();
              await blocker;
            } else {
              await until(() => t.state === 'blocked', `${s.what}: blocked`);
              assert.equal(t.cancel('why'), true);
            }
          }
          await assert.rejects(t.toPromise(), (e) => e instanceof CancelledError && e.reason === 'why' && e.code === 'ERR_CANCELLED');
          assert.deepEqual(log, ['cancelled: why', 'finally', 'cleaned up']);
          assert.equal(t.state, 'cancelled');
          assert.equal(t.cancel(), false);
        });
      }

      it('a task cancelled before it starts never runs', async () => {
        let ran = false;
        const t = ko.spawn(() => {
          ran = true;
        });
        t.cancel('early');
        await assert.rejects(t.toPromise(), CancelledError);
        assert.equal(ran, false);
      });

      it('a task that cancels itself gets CancelledError at its next suspension point', async () => {
        const t = ko.spawn(() => {
          ko.current()!.cancel('self');
          const stillHere = true;
          ko.sleep(1);
          return stillHere;
        });
        await assert.rejects(t.toPromise(), (e) => e instanceof CancelledError && e.reason === 'self');
      });

      it('join of a cancelled task throws ERR_JOINED_CANCELLED, its CancelledError as the cause', async () => {
        const r = await inTask(ko, () => {
          const t = ko.spawn(() => ko.sleep(100_000));
          ko.yieldNow();
          t.cancel('stop');
          try {
            t.join();
          } catch (e) {
            const cause = (e as { cause?: unknown }).cause;
            return { code: codeOf(e), notCancelled: !(e instanceof CancelledError), reason: cause instanceof CancelledError ? cause.reason : cause };
          }
          return 'joined';
        });
        assert.deepEqual(r, { code: 'ERR_JOINED_CANCELLED', notCancelled: true, reason: 'stop' });
      });
    });

    describe('every timeout', () => {
      const timeoutCode = async (fn: () => unknown): Promise<string | undefined> =>
        inTask(ko, () => {
          try {
            fn();
          } catch (e) {
            return codeOf(e);
          }
          return 'no timeout';
        });

      it('join, await, send, recv, lock, acquire, wait group: ERR_TIMEOUT', async () => {
        const ch = new Channel<number>(0);
        const full = new Channel<number>(1);
        full.trySend(0);
        const m = new Mutex();
        // the holder and the slow task wait for a signal, not for a time: on a
        // busy machine the steps below may take longer than any fixed delay
        const release = new Channel<number>(2);
        const holder = ko.spawn(() => {
          m.lock();
          release.recv();
          m.unlock();
        });
        await until(() => holder.state === 'blocked');
        const sem = new Semaphore(0);
        const wg = new WaitGroup();
        wg.add(1);
        const slow = ko.spawn(() => release.recv());
        assert.equal(await timeoutCode(() => slow.join(2)), 'ERR_TIMEOUT');
        assert.equal(await timeoutCode(() => ko.await(new Promise(() => undefined), 2)), 'ERR_TIMEOUT');
        assert.equal(await timeoutCode(() => ch.send(1, 2)), 'ERR_TIMEOUT');
        assert.equal(await timeoutCode(() => full.send(1, 2)), 'ERR_TIMEOUT');
        assert.equal(await timeoutCode(() => ch.recv(2)), 'ERR_TIMEOUT');
        assert.equal(await timeoutCode(() => m.lock(2)), 'ERR_TIMEOUT');
        assert.equal(await timeoutCode(() => sem.acquire(2)), 'ERR_TIMEOUT');
        assert.equal(await timeoutCode(() => wg.wait(2)), 'ERR_TIMEOUT');
        assert.equal(await timeoutCode(() => ch.recv(0)), 'ERR_TIMEOUT');
        await assert.rejects(ch.recvAsync(2), (e) => codeOf(e) === 'ERR_TIMEOUT');
        await assert.rejects(ch.sendAsync(1, 2), (e) => codeOf(e) === 'ERR_TIMEOUT');
        // the channel is usable afterwards: the timed-out waiters are gone
        assert.equal(ch.trySend(1), false);
        release.trySend(0);
        release.trySend(0);
        await holder;
        await slow;
        wg.done();
      });

      it('a timeout past what the core can count (2^63 microseconds) waits as long as it can, not at once', async () => {
        // the binding reads its numbers from a shared Float64Array: one too
        // large for an int64 saturates, as napi_get_value_int64 would
        const ch = new Channel<number>(0);
        const got = inTask(ko, () => [ch.recv(1e17), ko.await(Promise.resolve('late'), 1e300)]);
        await until(() => ch.trySend(7));
        assert.deepEqual(await got, [7, 'late']);
      });

      it('cond.wait returns false on timeout (true when signalled), with its mutex held again', async () => {
        const m = new Mutex();
        const c = new Cond(m);
        const r = await inTask(ko, () => {
          m.lock();
          const timedOut = c.wait(3);
          const held = m.locked;
          m.unlock();
          return { timedOut, held };
        });
        assert.deepEqual(r, { timedOut: false, held: true });
        const waiter = ko.spawn(() => {
          m.lock();
          try {
            return c.wait(10_000);
          } finally {
            m.unlock();
          }
        });
        await until(() => waiter.state === 'blocked');
        assert.equal(c.signal(), 1);
        assert.equal(await waiter, true);
      });

      it('select: an after case fires when nothing else does', async () => {
        const ch = new Channel<number>(0);
        const r = await inTask(ko, () => {
          const t0 = performance.now();
          const res = select([ch.recvCase(), ko.after(10), ko.after(30)]);
          return { index: res.index, took: performance.now() - t0 };
        });
        assert.equal(r.index, 1);
        assert.ok(r.took >= 9, `took ${r.took}`);
      });

      it('invalid timeouts are refused', async () => {
        assert.equal(await timeoutCode(() => ko.sleep(-1)), 'ERR_INVALID_ARGUMENT');
        assert.equal(await timeoutCode(() => new Channel().recv(Number.NaN)), 'ERR_INVALID_ARGUMENT');
      });
    });

    describe('unhandled errors', () => {
      it('a detached task that fails is reported to the policy (a callback here)', async () => {
        const seen: { error: unknown; task: { id: number; name: string } }[] = [];
        ko.setUnhandled((error, task) => seen.push({ error, task }));
        try {
          const t = ko.spawn(() => {
            throw new Error('lost?');
          }, { name: 'careless' });
          t.detach();
          await until(() => seen.length === 1);
          assert.equal(seen.length, 1);
          assert.equal((seen[0].error as Error).message, 'lost?');
          assert.deepEqual(seen[0].task, { id: t.id, name: 'careless' });
          // detach after the failure reports it too; a joined or cancelled one is not reported
          const u = ko.spawn(() => {
            throw new Error('later');
          });
          await until(() => u.done);
          u.detach();
          assert.equal(seen.length, 2);
          const joined = ko.spawn(() => {
            throw new Error('joined');
          });
          joined.detach();
          await assert.rejects(joined.toPromise());
          const cancelled = ko.spawn(() => ko.sleep(10_000));
          cancelled.detach();
          await until(() => cancelled.state === 'blocked');
          cancelled.cancel();
          await until(() => cancelled.done);
          assert.equal(seen.length, 2); // awaited: observed; cancelled: not an error
        } finally {
          ko.setUnhandled('throw');
        }
      });

      it('warn: a process warning', async () => {
        ko.setUnhandled('warn');
        const warnings: Error[] = [];
        const onWarning = (w: Error): void => {
          warnings.push(w);
        };
        process.on('warning', onWarning);
        try {
          ko.spawn(() => {
            throw new Error('warned');
          }).detach();
          await tick(5);
          const w = warnings.find((x) => (x as { code?: string }).code === 'KORUTIN_UNHANDLED_TASK_ERROR');
          assert.ok(w, 'a KorutinWarning was emitted');
          assert.match(w!.message, /warned/);
        } finally {
          process.off('warning', onWarning);
          ko.setUnhandled('throw');
        }
      });

      it('ignore: nothing', async () => {
        ko.setUnhandled('ignore');
        try {
          ko.spawn(() => {
            throw new Error('ignored');
          }).detach();
          await tick(2);
        } finally {
          ko.setUnhandled('throw');
        }
      });

      it('a failed task collected without join or await is reported too', async () => {
        const seen: string[] = [];
        ko.setUnhandled((e) => seen.push((e as Error).message));
        try {
          (() => {
            ko.spawn(() => {
              throw new Error('forgotten');
            });
          })();
          await tick(2);
          for (let i = 0; i < 20 && seen.length === 0; i++) {
            gc();
            await tick(5);
          }
          assert.deepEqual(seen, ['forgotten']);
        } finally {
          ko.setUnhandled('throw');
        }
      });

      it("throw (the default): raised as an uncaught exception, like Node's unhandled rejection", () => {
        const script = `
          const { createEngine } = require(${JSON.stringify(PACKAGE_ENTRY)});
          const ko = createEngine({ backend: ${JSON.stringify(backend)} });
          ko.spawn(() => { throw new Error('unhandled in task'); }).detach();
          setTimeout(() => console.log('still alive'), 200);
        `;
        const r = runNode(script);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /unhandled in task/);
        assert.doesNotMatch(r.stdout, /still alive/);
        // with an 'unhandledRejection' listener, the listener gets it instead
        const handled = runNode(`
          process.on('unhandledRejection', (e, p) => console.log('listener:', e.message, p instanceof Promise));
          ${script}
        `);
        assert.equal(handled.status, 0, handled.stderr);
        assert.match(handled.stdout, /listener: unhandled in task true/);
        assert.match(handled.stdout, /still alive/);
      });
    });
  });
}
