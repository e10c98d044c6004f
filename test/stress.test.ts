/**
 * A seeded random mix of everything a program does with korutin, checked
 * against a model after every step: create/resume/yield/throw/return/drop of
 * coroutines at random call depths (some nesting others), tasks that pass
 * values over channels, sleep, yield and get cancelled, Workers that use
 * coroutines of their own, and GCs in between.
 *
 * The seed is printed; KORUTIN_STRESS_SEED=N replays a run, and
 * KORUTIN_STRESS_STEPS=N changes its length (default 3,000 per backend).
 */
import { strict as assert } from 'assert';
import { Worker } from 'worker_threads';
import { Channel, Coroutine, Engine, liveTaskCount, Task } from '../ts';
import { native } from '../ts/native';
import { engineFor, gc, PACKAGE_ENTRY, testBackends, tick, until } from './helpers';

/** mulberry32: a small, fast PRNG with a 32-bit state. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.KORUTIN_STRESS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const STEPS = Number(process.env.KORUTIN_STRESS_STEPS ?? 3000);

/** What the test expects of one coroutine. */
interface Model {
  co: Coroutine;
  id: number;
  /** created: never resumed; suspended: inside its loop; done: finished. */
  state: 'created' | 'suspended' | 'done';
  /** The next value it yields: how many times it has yielded. */
  yields: number;
}

/** Counters the bodies bump, shared by every coroutine of a run. */
interface Counters {
  /** Times a started body's outermost finally block ran. */
  finallies: number;
  /** Started bodies. */
  started: number;
}

/**
 * The body: yields its count at a random call depth (recursing through
 * frames that hold locals the model checks), returns `['ret', count]` when
 * resumed with 'stop', nests a child coroutine when resumed with 'nest'.
 */
function body(ko: Engine, id: number, counters: Counters, depthOf: (n: number) => number) {
  return (first: unknown): unknown => {
    counters.started++;
    let count = 0;
    try {
      let v = first;
      for (;;) {
        if (v === 'stop') return ['ret', id, count];
        if (v === 'nest') {
          const child = ko.create((x: number) => ko.yield(x + 1) + 1);
          assert.deepEqual(child.resume(id), { value: id + 1, done: false });
          assert.deepEqual(child.resume(10), { value: 11, done: true });
        }
        const local = id * 1000 + count;
        const deep = (d: number): unknown => {
          if (d === 0) return ko.yield(count);
          const r = deep(d - 1);
          assert.equal(local, id * 1000 + count, 'a local survived the switch');
          return r;
        };
        v = deep(depthOf(count));
        count++;
      }
    } finally {
      counters.finallies++;
    }
  };
}

async function coroutineMix(ko: Engine, random: () => number, steps: number): Promise<void> {
  const counters: Counters = { finallies: 0, started: 0 };
  const live: Model[] = [];
  let droppedStarted = 0;
  let nextId = 1;
  const pick = (): Model | undefined => live[Math.floor(random() * live.length)];
  const depthOf = (): number => Math.floor(random() * 40);

  for (let step = 0; step < steps; step++) {
    const r = random();
    const m = pick();
    const where = `step ${step}`;
    if (r < 0.2 || !m) {
      const id = nextId++;
      live.push({ co: ko.create(body(ko, id, counters, depthOf), { name: `stress-${id}` }), id, state: 'created', yields: 0 });
    } else if (r < 0.6) {
      const arg = random() < 0.1 ? 'nest' : random() < 0.05 ? 'stop' : step;
      if (m.state === 'done') {
        assert.throws(() => m.co.resume(arg), { code: 'ERR_COROUTINE_DONE' }, where);
        continue;
      }
      const out = m.co.resume(arg);
      if (arg === 'stop') {
        assert.deepEqual(out, { value: ['ret', m.id, m.yields], done: true }, where);
        m.state = 'done';
      } else {
        assert.deepEqual(out, { value: m.yields, done: false }, where);
        m.yields++;
        m.state = 'suspended';
      }
    } else if (r < 0.68) {
      const err = new Error(`thrown into ${m.id}`);
      if (m.state === 'done') {
        assert.throws(() => m.co.throw(err), { code: 'ERR_COROUTINE_DONE' }, where);
        continue;
      }
      assert.throws(() => m.co.throw(err), (e) => e === err, where);
      m.state = 'done';
    } else if (r < 0.76) {
      const v = { returned: m.id };
      assert.deepEqual(m.co.return(v), { value: v, done: true }, where);
      m.state = 'done';
    } else if (r < 0.86) {
      // Drop it: nobody can resume it any more; its finalizer must unwind it.
      live.splice(live.indexOf(m), 1);
      if (m.state === 'suspended') droppedStarted++;
    } else if (r < 0.87) {
      gc();
    } else {
      // A finished one leaves the pool.
      const done = live.findIndex((x) => x.state === 'done');
      if (done >= 0) live.splice(done, 1);
    }
    assert.equal(m?.co.state ?? 'created', m ? (m.state === 'done' ? 'done' : m.state) : 'created', `${where}: state`);
  }

  // Every coroutine still held finishes with return(); every started one ran its finally block once.
  for (const m of live) {
    if (m.state !== 'done') assert.equal(m.co.return(1).done, true);
  }
  const heldStarted = counters.started - droppedStarted;
  assert.ok(counters.finallies >= heldStarted, `finally blocks: ${counters.finallies} of ${heldStarted} held`);
  // The dropped ones are unwound when the GC finds them.
  live.length = 0;
  await until(() => {
    gc();
    return counters.finallies === counters.started;
  }, `the finally blocks of ${droppedStarted} dropped coroutines (${counters.finallies} of ${counters.started} ran)`, 20_000);
}

async function taskMix(ko: Engine, random: () => number, rounds: number): Promise<void> {
  const before = liveTaskCount();
  for (let round = 0; round < rounds; round++) {
    const ch = new Channel<number>(Math.floor(random() * 3));
    const producers = 1 + Math.floor(random() * 4);
    const per = 1 + Math.floor(random() * 50);
    let sent = 0;
    let finallies = 0;
    const tasks: Task<unknown>[] = [];
    for (let p = 0; p < producers; p++) {
      const pause = random();
      tasks.push(ko.spawn(() => {
        try {
          for (let i = 1; i <= per; i++) {
            ch.send(i);
            sent += i;
            if (pause < 0.3) ko.yieldNow();
            else if (pause < 0.4) ko.sleep(0);
          }
        } finally {
          finallies++;
        }
      }, { name: `producer-${round}-${p}` }));
    }
    let received = 0;
    const consumer = ko.spawn(() => {
      for (let left = producers * per; left > 0; left--) received += ch.recv(5000);
      return received;
    }, { name: `consumer-${round}` });
    // A bystander that may be cancelled mid-sleep; its finally must run.
    let bystanderFinally = false;
    const bystander = ko.spawn(() => {
      try {
        ko.sleep(60_000);
      } finally {
        bystanderFinally = true;
      }
    });
    if (random() < 0.5) gc();
    await until(() => bystander.state === 'blocked', 'the bystander to sleep');
    assert.equal(bystander.cancel('stress'), true);
    assert.equal(await consumer, (producers * per * (per + 1)) / 2, `round ${round}: every value arrived once`);
    await Promise.all(tasks.map((t) => t.toPromise()));
    assert.equal(sent, received, `round ${round}: sent and received agree`);
    assert.equal(finallies, producers);
    await bystander.toPromise().then(() => assert.fail('a cancelled task resolved'), (e) => assert.equal(e.code, 'ERR_CANCELLED'));
    assert.equal(bystanderFinally, true, 'the cancelled task ran its finally block');
    assert.equal(bystander.state, 'cancelled');
  }
  await until(() => liveTaskCount() <= before, 'every task to end', 10_000);
}

/** A Worker that runs its own seeded coroutine mix to the end and reports its sum. */
function workerMix(backend: string, seed: number): Promise<number> {
  const script = `
    const { parentPort, workerData } = require('worker_threads');
    const { createEngine } = require(workerData.entry);
    const ko = createEngine({ backend: workerData.backend });
    let a = workerData.seed >>> 0, sum = 0;
    const random = () => ((a = (a * 1103515245 + 12345) >>> 0) / 4294967296);
    for (let i = 0; i < 200; i++) {
      const n = 1 + Math.floor(random() * 20);
      const co = ko.create(() => { let s = 0; for (let k = 0; k < n; k++) s += ko.yield(k); return s; });
      co.resume();
      let out;
      for (let k = 0; k < n; k++) out = co.resume(k);
      if (!out.done) throw new Error('not done');
      sum += out.value;
    }
    parentPort.postMessage(sum);`;
  return new Promise((resolve, reject) => {
    const w = new Worker(script, { eval: true, workerData: { entry: PACKAGE_ENTRY, backend, seed } });
    let sum: number | undefined;
    w.once('message', (m: number) => (sum = m));
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 && sum !== undefined ? resolve(sum) : reject(new Error(`worker exited ${code}`))));
  });
}

/** The same mix as workerMix, in this thread, to check the Worker's answer. */
function expectedWorkerSum(seed: number): number {
  let a = seed >>> 0;
  let sum = 0;
  const random = (): number => (a = (a * 1103515245 + 12345) >>> 0) / 4294967296;
  for (let i = 0; i < 200; i++) {
    const n = 1 + Math.floor(random() * 20);
    sum += (n * (n - 1)) / 2;
  }
  return sum;
}

describe(`stress: a seeded random mix (seed ${SEED}; replay with KORUTIN_STRESS_SEED=${SEED})`, function () {
  this.timeout(240_000);
  for (const backend of testBackends()) {
    it(`${backend}: coroutines, tasks, channels, Workers and GCs keep every invariant`, async () => {
      const seed = SEED ^ backend.length * 7919;
      const random = prng(seed);
      const ko = engineFor(backend);
      const liveBefore = native.live_coroutines();
      const steps = backend === 'threads' ? Math.ceil(STEPS / 3) : STEPS;
      const workers = Promise.all([1, 2].map((k) => workerMix(backend, seed + k)));
      await coroutineMix(ko, random, steps);
      await taskMix(ko, random, backend === 'threads' ? 5 : 15);
      assert.deepEqual(await workers, [1, 2].map((k) => expectedWorkerSum(seed + k)), 'the Workers computed their sums');
      await tick(5);
      gc();
      await until(() => native.live_coroutines() <= liveBefore, 'no native coroutine left behind', 20_000);
    });
  }
});
