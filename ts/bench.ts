/**
 * JS-level benchmark: a coroutine resume+yield round trip on each backend,
 * beside a generator and an async/await pair measured in the same run.
 */
import { backends } from './backends';
import { createEngine } from './engine';
import { platform, Platform } from './platform';

export interface BenchRow {
  name: string;
  /** Nanoseconds per round trip (median of the repetitions). */
  ns: number;
  /** ns divided by the generator's ns. */
  vsGenerator: number;
}

export interface BenchReport {
  platform: Platform;
  iterations: number;
  repetitions: number;
  rows: BenchRow[];
}

export interface BenchOptions {
  /** Round trips per repetition (threads gets a tenth). */
  iterations?: number;
  repetitions?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeNs(n: number, body: () => void): number {
  const t = process.hrtime.bigint();
  body();
  return Number(process.hrtime.bigint() - t) / n;
}

async function timeNsAsync(n: number, body: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await body();
  return Number(process.hrtime.bigint() - t) / n;
}

/** A generator round trip: one next() in, one yield out. */
function generatorRoundTrip(n: number): number {
  function* g(): Generator<number, void, number> {
    let v = 0;
    for (;;) v = yield v + 1;
  }
  const it = g();
  it.next(0);
  return timeNs(n, () => {
    for (let i = 0; i < n; i++) it.next(i);
  });
}

/** An async/await round trip: a consumer awaits a value a producer hands over through a promise. */
async function asyncRoundTrip(n: number): Promise<number> {
  let resolveNext: (v: number) => void = () => undefined;
  const next = () => new Promise<number>((r) => (resolveNext = r));
  return timeNsAsync(n, async () => {
    const consumer = (async () => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += await next();
      return sum;
    })();
    for (let i = 0; i < n; i++) {
      resolveNext(i);
      await null;
    }
    await consumer;
  });
}

function coroutineRoundTrip(backend: Parameters<typeof createEngine>[0], n: number): number {
  const ko = createEngine(backend);
  const co = ko.create(() => {
    let v = 0;
    for (;;) v = ko.yield<number>(v + 1);
  });
  co.resume(0);
  const ns = timeNs(n, () => {
    for (let i = 0; i < n; i++) co.resume(i);
  });
  co.return();
  return ns;
}

/** Runs the benchmark; prints nothing. */
export async function bench(options: BenchOptions = {}): Promise<BenchReport> {
  const iterations = options.iterations ?? 200_000;
  const repetitions = options.repetitions ?? 5;
  const gen: number[] = [];
  const asy: number[] = [];
  const per = new Map<string, number[]>();
  const names = backends().filter((b) => b.available).map((b) => b.name);
  for (let r = 0; r < repetitions; r++) {
    gen.push(generatorRoundTrip(iterations));
    asy.push(await asyncRoundTrip(iterations / 4));
    for (const name of names) {
      const n = name === 'threads' ? iterations / 20 : iterations;
      const xs = per.get(name) ?? [];
      xs.push(coroutineRoundTrip({ backend: name }, n));
      per.set(name, xs);
    }
  }
  const g = median(gen);
  const rows: BenchRow[] = [
    ...names.map((name) => ({ name: `coroutine/${name}`, ns: median(per.get(name)!), vsGenerator: 0 })),
    { name: 'generator next()', ns: g, vsGenerator: 0 },
    { name: 'async/await handoff', ns: median(asy), vsGenerator: 0 },
  ];
  for (const row of rows) row.vsGenerator = row.ns / g;
  return { platform: platform(), iterations, repetitions, rows };
}

export function formatBench(r: BenchReport): string {
  const lines = [
    `platform ${r.platform.key} (node ${r.platform.node}); median of ${r.repetitions} runs`,
    '',
    'JS round trip (resume + yield)      ns   x generator',
  ];
  for (const row of r.rows) lines.push(`${row.name.padEnd(30)} ${row.ns.toFixed(1).padStart(8)}   ${row.vsGenerator.toFixed(1).padStart(6)}`);
  return lines.join('\n');
}
