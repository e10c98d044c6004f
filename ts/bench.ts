/**
 * `korutin bench`: the native engine's table (korutin-bench: ns per switch
 * beside raw Boost/swapcontext/futex references, round trips per second with
 * 1,024 and 16,384 coroutines, RSS per idle coroutine), then JS figures: a
 * coroutine resume+yield round trip per backend beside a generator and an
 * async/await pair, and channel ping-pong beside async/await, all measured
 * in the same run; then create + run + finish beside node-fibers, the parts
 * of one switch, and ko.await on a settled promise (ts/bench-speed.ts).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChannelBenchReport, formatChannelBench, runChannelBench } from './bench-channel';
import { backends } from './backends';
import { formatSpeed, median, runSpeedBench, SpeedReport } from './bench-speed';
import { createEngine } from './engine';
import { nativeProgram } from './native';
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
  /** JS round trips. */
  rows: BenchRow[];
  /** korutin-bench's JSON, or why it did not run. */
  native: Record<string, unknown> | { missing: string };
  /** Channel ping-pong and stream figures (null when skipped). */
  channel: ChannelBenchReport | null;
  /** create + run + finish, the parts of a switch, ko.await; node-fibers beside. */
  speed: SpeedReport;
}

export interface BenchOptions {
  /** Round trips per repetition (threads gets a twentieth). */
  iterations?: number;
  repetitions?: number;
  /** Fewer repetitions everywhere, no 100,000-sleeper figure. */
  quick?: boolean;
}

function nativeBench(quick: boolean): Record<string, unknown> | { missing: string } {
  const program = nativeProgram('korutin-bench');
  if (!program) {
    return { missing: `korutin-bench is neither built nor prebuilt for ${process.platform}-${process.arch}: build from source (npm rebuild korutin)` };
  }
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'korutin-bench-')), 'native.json');
  const r = spawnSync(program, ['--json', file, ...(quick ? ['--quick'] : [])], { encoding: 'utf8', timeout: 900_000 });
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return { missing: `korutin-bench did not report (exit ${r.status ?? r.signal})` };
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
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
  const quick = options.quick ?? false;
  const iterations = options.iterations ?? (quick ? 20_000 : 200_000);
  const repetitions = options.repetitions ?? (quick ? 3 : 5);
  const native = nativeBench(quick);
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
  const speed = await runSpeedBench({ iterations: quick ? 10_000 : 100_000, repetitions });
  const channel = await runChannelBench({
    backends: 'all',
    messages: quick ? 5_000 : 50_000,
    repetitions,
    sleepers: quick ? 0 : 100_000,
  });
  return { platform: platform(), iterations, repetitions, rows, native, channel, speed };
}

type NativeBackendRow = {
  name: string;
  engine_ns_per_switch: number;
  raw_ns_per_switch: number;
  round_trips_per_s_1024: number;
  round_trips_per_s_16384: number;
  rss_bytes_per_idle_coroutine: number;
};

function formatNative(n: BenchReport['native']): string[] {
  if ('missing' in n) return [`native engine: ${String(n.missing)}`];
  const refs = n.references_ns_per_switch as Record<string, number | null>; // null: not built here
  const rows = n.backends as NativeBackendRow[];
  const m = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(1)} M` : `${(x / 1e3).toFixed(0)} k`);
  return [
    'native engine (korutin-bench)        ns/switch  raw ns  rt/s @1,024  rt/s @16,384  RSS/idle',
    ...rows.map(
      (r) =>
        `${r.name.padEnd(36)} ${r.engine_ns_per_switch.toFixed(1).padStart(9)} ${r.raw_ns_per_switch.toFixed(1).padStart(7)} ${m(r.round_trips_per_s_1024).padStart(12)} ${m(r.round_trips_per_s_16384).padStart(13)} ${(r.rss_bytes_per_idle_coroutine / 1000).toFixed(2).padStart(7)} KB`,
    ),
    ...Object.entries(refs).map(([k, v]) => `reference: ${k.padEnd(25)} ${(v === null ? '-' : v.toFixed(1)).padStart(9)}`),
  ];
}

export function formatBench(r: BenchReport): string {
  const lines = [
    `platform ${r.platform.key} (node ${r.platform.node}); median of ${r.repetitions} runs`,
    '',
    ...formatNative(r.native),
    '',
    'JS round trip (resume + yield)      ns   x generator',
  ];
  for (const row of r.rows) lines.push(`${row.name.padEnd(30)} ${row.ns.toFixed(1).padStart(8)}   ${row.vsGenerator.toFixed(1).padStart(6)}`);
  if (r.channel) lines.push('', formatChannelBench(r.channel));
  const pingPong = new Map((r.channel?.rows ?? []).map((x) => [x.backend as string, x]));
  lines.push('', ...formatSpeed(r.speed, pingPong));
  return lines.join('\n');
}
