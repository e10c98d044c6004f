/**
 * Mutex, Cond, Semaphore and WaitGroup between tasks, on every backend.
 */
import { strict as assert } from 'assert';
import { Cond, Mutex, Semaphore, WaitGroup } from '../ts';
import { codeOf, engineFor, inTask, testBackends, until } from './helpers';

for (const backend of testBackends()) {
  describe(`sync [${backend}]`, () => {
    const ko = engineFor(backend);

    it('Mutex: one holder at a time, handed over in FIFO order', async () => {
      const m = new Mutex();
      let inside = 0;
      let maxInside = 0;
      const order: number[] = [];
      const r = await inTask(ko, () => {
        m.lock();
        const ts = [0, 1, 2, 3].map((i) =>
          ko.spawn(() => {
            m.lock();
            order.push(i);
            inside++;
            maxInside = Math.max(maxInside, inside);
            ko.yieldNow(); // the others run but cannot get in
            ko.sleep(1);
            inside--;
            m.unlock();
          }),
        );
        ko.yieldNow(); // they all queue, in order
        const lockedWhileHeld = m.locked;
        m.unlock();
        for (const t of ts) t.join();
        return lockedWhileHeld;
      });
      assert.equal(r, true);
      assert.equal(maxInside, 1);
      assert.deepEqual(order, [0, 1, 2, 3]);
      assert.equal(m.locked, false);
    });

    it('Mutex: misuse is refused; tryLock, withLock, lock timeout', async () => {
      const m = new Mutex();
      const r = await inTask(ko, () => {
        const out: (string | boolean | undefined)[] = [];
        try {
          m.unlock();
        } catch (e) {
          out.push(codeOf(e)); // not held
        }
        m.lock();
        try {
          m.lock();
        } catch (e) {
          out.push(codeOf(e)); // already held by this task
        }
        const other = ko.spawn(() => {
          const got = m.tryLock();
          let code: string | undefined;
          try {
            m.lock(2);
          } catch (e) {
            code = codeOf(e);
          }
          try {
            m.unlock();
          } catch (e) {
            return [got, code, codeOf(e)];
          }
          return [got, code, 'unlocked?'];
        });
        out.push(...(other.join() as (string | boolean)[]));
        m.unlock();
        out.push(m.withLock(() => m.locked));
        out.push(m.locked);
        return out;
      });
      assert.deepEqual(r, ['ERR_INVALID_ARGUMENT', 'ERR_INVALID_ARGUMENT', false, 'ERR_TIMEOUT', 'ERR_INVALID_ARGUMENT', true, false]);
    });

    it('Cond: signal wakes the first waiter, broadcast all; wait(timeout) returns false', async () => {
      const c = new Cond();
      const woke: number[] = [];
      const waiters = [0, 1, 2].map((i) =>
        ko.spawn(() => {
          const signalled = c.wait();
          woke.push(i);
          return signalled;
        }),
      );
      await until(() => waiters.every((w) => w.state === 'blocked'));
      assert.equal(c.signal(), 1);
      await until(() => woke.length === 1);
      assert.deepEqual(woke, [0]);
      assert.equal(c.broadcast(), 2);
      for (const w of waiters) assert.equal(await w, true);
      assert.deepEqual(woke, [0, 1, 2]);
      assert.equal(c.signal(), 0);
      assert.equal(await inTask(ko, () => c.wait(2)), false);
    });

    it('Cond with a Mutex: released while waiting, held again on return', async () => {
      const m = new Mutex();
      const c = new Cond(m);
      let ready = false;
      let served = 0;
      const consumers = [0, 1].map(() =>
        ko.spawn(() => {
          m.lock();
          try {
            while (!ready) c.wait();
            served++;
            return m.locked;
          } finally {
            m.unlock();
          }
        }),
      );
      await until(() => consumers.every((c) => c.state === 'blocked'));
      const r = await inTask(ko, () => {
        m.lock(); // free: the waiters released it
        ready = true;
        const n = c.broadcast();
        ko.yieldNow(); // they wake but must wait for the mutex
        const servedWhileHeld = served;
        const waitingOn = ko.tasks().find((t) => t.id === consumers[0].id)?.waitingOn;
        m.unlock();
        return { n, servedWhileHeld, waitingOn };
      });
      assert.equal(r.n, 2);
      assert.equal(r.servedWhileHeld, 0);
      assert.equal(r.waitingOn, `lock mutex#${m.id} (after cond wait)`);
      for (const t of consumers) assert.equal(await t, true);
      assert.equal(served, 2);
      await assert.rejects(
        inTask(ko, () => c.wait()),
        (e) => codeOf(e) === 'ERR_INVALID_ARGUMENT',
      ); // the mutex is not held
    });

    it('Semaphore: at most n holders; tryAcquire, available, timeout, release from outside', async () => {
      const s = new Semaphore(2);
      let holders = 0;
      let most = 0;
      const ts = Array.from({ length: 6 }, () =>
        ko.spawn(() => {
          s.acquire();
          holders++;
          most = Math.max(most, holders);
          ko.sleep(1);
          holders--;
          s.release();
        }),
      );
      for (const t of ts) await t;
      assert.equal(most, 2);
      assert.equal(s.available, 2);
      assert.equal(s.tryAcquire(), true);
      assert.equal(s.tryAcquire(), true);
      assert.equal(s.tryAcquire(), false);
      assert.equal(await inTask(ko, () => {
        try {
          s.acquire(2);
        } catch (e) {
          return codeOf(e);
        }
        return 'acquired';
      }), 'ERR_TIMEOUT');
      const waiter = ko.spawn(() => s.acquire());
      await until(() => waiter.state === 'blocked');
      s.release(); // from plain code: hands the permit to the waiter
      await waiter;
      assert.equal(s.available, 0);
      assert.throws(() => s.release(0), (e) => codeOf(e) === 'ERR_INVALID_ARGUMENT');
      assert.throws(() => new Semaphore(-1), (e) => codeOf(e) === 'ERR_INVALID_ARGUMENT');
    });

    it('WaitGroup: wait until the count is 0; done from anywhere; never below 0; timeout', async () => {
      const wg = new WaitGroup();
      assert.equal(await inTask(ko, () => wg.wait()), undefined); // 0: no wait
      assert.throws(() => wg.add(-1), (e) => codeOf(e) === 'ERR_INVALID_ARGUMENT');
      wg.add(5);
      let finished = 0;
      for (let i = 0; i < 4; i++) {
        ko.spawn(() => {
          ko.sleep(i + 1);
          finished++;
          wg.done();
        }).detach();
      }
      const r = await inTask(ko, () => {
        let code: string | undefined;
        try {
          wg.wait(1);
        } catch (e) {
          code = codeOf(e);
        }
        setTimeout(() => wg.done(), 10); // the fifth, from a Node timer
        wg.wait();
        return { code, finished, count: wg.count };
      });
      assert.deepEqual(r, { code: 'ERR_TIMEOUT', finished: 4, count: 0 });
    });
  });
}
