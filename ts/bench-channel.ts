/**
 * Channel benchmark: ping-pong between two JS tasks through two rendezvous
 * channels (ns per message), and a buffered producer -> consumer stream,
 * each beside its async/await equivalent (two async functions passing
 * values through a promise-based queue) measured in the same run; then the
 * resident memory of many sleeping tasks.
 *
 *   node dist/ts/bench-channel.js [--backend NAME|all] [--messages N]
 *        [--sleepers N] [--repetitions N] [--json FILE]
 *
 * `runChannelBench(opts)` returns the same figures for other programs.
 */
import * as fs from 'fs';
import { backends, BackendName, Channel, createEngine, Engine } from './index';
import { bareRoundTrip, median, medianRatio } from './bench-speed';
import { schedulerStats } from './scheduler';

/** The target for a ping-pong message (ns). */
export const PING_PONG_TARGET_NS = 1000;

/** Options of {@link runChannelBench}. */
export interface ChannelBenchOptions {
  /** Backends to measure ('auto' by default; 'all': every available one). */
  backends?: (BackendName | 'auto')[] | 'all';
  /** Messages per repetition (the threads backend gets a tenth). */
  messages?: number;
  /** Repetitions; the median is reported. */
  repetitions?: number;
  /** Sleeping tasks for the memory figure (0: skip it). Capped by vm.max_map_count. */
  sleepers?: number;
  /** Capacity of the buffered stream's channel. */
  capacity?: number;
  /** Called with progress lines. */
  log?: (line: string) => void;
}

/** Figures for one backend. */
export interface ChannelBenchRow {
  backend: BackendName;
  messages: number;
  /** Ping-pong between two tasks over rendezvous channels: ns per message. */
  pingPongNs: number;
  /** The same between two async functions over a promise queue. */
  asyncPingPongNs: number;
  /** Buffered channel, producer -> consumer: ns per message. */
  streamNs: number;
  /** The same with async functions and a promise queue. */
  asyncStreamNs: number;
  /** How many of the ping-pong's messages were handed straight from task to task (one switch of V8's thread state each) rather than through an event-loop pass (two). */
  handOffShare: number;
  /** A coroutine resume+yield round trip on this backend (ko.create's): two switches of V8's thread state, where a hand-off takes one. */
  roundTripNs: number;
  /** The same straight through the addon (no JS layer): half of it is one hand-off switch. */
  bareRoundTripNs: number;
  /** pingPongNs against half of bareRoundTripNs: the median of each repetition's own ratio (both measured in it). */
  pingPongVsHandOff: number;
}

/** Resident memory of sleeping tasks. */
export interface SleepersFigure {
  backend: BackendName;
  /** Tasks asked for. */
  requested: number;
  /** Tasks actually put to sleep (fewer when vm.max_map_count would not allow them). */
  tasks: number;
  /** RSS growth while they all sleep, in bytes. */
  rssBytes: number;
  rssPerTaskBytes: number;
  /** JS heap growth, in bytes. */
  heapPerTaskBytes: number;
  /** Time to spawn them and have them all asleep, in ms. */
  spawnMs: number;
  note: string | null;
}

/** Everything {@link runChannelBench} measured. */
export interface ChannelBenchReport {
  node: string;
  arch: string;
  platform: string;
  repetitions: number;
  rows: ChannelBenchRow[];
  sleepers: SleepersFigure | null;
}

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A promise-based queue: what async/await code would use instead of a channel. */
class AsyncQueue<T> {
  private items: T[] = [];
  private head = 0;
  private waiters: ((v: T) => void)[] = [];

  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }

  pop(): Promise<T> {
    if (this.head < this.items.length) {
      const v = this.items[this.head++];
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve(v);
    }
    return new Promise<T>((resolve) => this.waiters.push(resolve));
  }

  get length(): number {
    return this.items.length - this.head;
  }
}

/** A bounded async queue: push waits while `capacity` items are queued. */
class BoundedAsyncQueue<T> {
  private q = new AsyncQueue<T>();
  private room: (() => void)[] = [];
  constructor(private readonly capacity: number) {}

  async push(v: T): Promise<void> {
    while (this.q.length >= this.capacity) await new Promise<void>((r) => this.room.push(r));
    this.q.push(v);
  }

  async pop(): Promise<T> {
    const v = await this.q.pop();
    this.room.shift()?.();
    return v;
  }
}

async function pingPong(ko: Engine, n: number, handOffs?: number[]): Promise<number> {
  const s0 = schedulerStats().handOffs;
  const a = new Channel<number>(0);
  const b = new Channel<number>(0);
  const t0 = process.hrtime.bigint();
  const ping = ko.spawn(() => {
    for (let i = 0; i < n; i++) {
      a.send(i);
      b.recv();
    }
  });
  const pong = ko.spawn(() => {
    for (let i = 0; i < n; i++) b.send(a.recv());
  });
  await ping;
  await pong;
  const ns = Number(process.hrtime.bigint() - t0) / (2 * n);
  handOffs?.push((schedulerStats().handOffs - s0) / (2 * n));
  return ns;
}

/** Two bare coroutines resumed in turn by a loop: one round trip per "message". */
function roundTrip(ko: Engine, n: number): number {
  const a = ko.create(() => {
    for (;;) ko.yield();
  });
  const b = ko.create(() => {
    for (;;) ko.yield();
  });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    a.resume();
    b.resume();
  }
  const ns = Number(process.hrtime.bigint() - t0) / (2 * n);
  a.return();
  b.return();
  return ns;
}

async function asyncPingPong(n: number): Promise<number> {
  const a = new AsyncQueue<number>();
  const b = new AsyncQueue<number>();
  const t0 = process.hrtime.bigint();
  const ping = (async () => {
    for (let i = 0; i < n; i++) {
      a.push(i);
      await b.pop();
    }
  })();
  const pong = (async () => {
    for (let i = 0; i < n; i++) b.push(await a.pop());
  })();
  await ping;
  await pong;
  return Number(process.hrtime.bigint() - t0) / (2 * n);
}

async function stream(ko: Engine, n: number, capacity: number): Promise<number> {
  const ch = new Channel<number>(capacity);
  const t0 = process.hrtime.bigint();
  const producer = ko.spawn(() => {
    for (let i = 0; i < n; i++) ch.send(i);
    ch.close();
  });
  const consumer = ko.spawn(() => {
    let sum = 0;
    for (const v of ch) sum += v;
    return sum;
  });
  await producer;
  const sum = await consumer;
  if (sum !== (n * (n - 1)) / 2) throw new Error(`stream lost messages: ${sum}`);
  return Number(process.hrtime.bigint() - t0) / n;
}

async function asyncStream(n: number, capacity: number): Promise<number> {
  const q = new BoundedAsyncQueue<number>(capacity);
  const t0 = process.hrtime.bigint();
  const producer = (async () => {
    for (let i = 0; i < n; i++) await q.push(i);
  })();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += await q.pop();
  await producer;
  if (sum !== (n * (n - 1)) / 2) throw new Error(`async stream lost messages: ${sum}`);
  return Number(process.hrtime.bigint() - t0) / n;
}

function maxMapCount(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim()) || Infinity;
  } catch {
    return Infinity;
  }
}

function collect(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

function mappingCount(): number {
  try {
    return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
}

/** Memory mappings a sleeping task adds, measured on 512 of them (a stack
 * with a PROT_NONE guard is two; with a Linux 6.13+ guard region, neighbours
 * merge into one). */
async function mappingsPerTask(ko: Engine): Promise<number> {
  const n = 512;
  const before = mappingCount();
  let asleep = 0;
  const tasks = Array.from({ length: n }, () =>
    ko.spawn(() => {
      asleep++;
      ko.sleep(3_600_000);
    }),
  );
  while (asleep < n) await immediate();
  const per = (mappingCount() - before) / n;
  for (const t of tasks) ko.wakeup(t);
  for (const t of tasks) await t;
  return Math.max(per, 0);
}

async function sleepers(ko: Engine, requested: number, log: (s: string) => void): Promise<SleepersFigure> {
  // stay well under the kernel's limit on mappings
  const limit = maxMapCount();
  const per = await mappingsPerTask(ko);
  const room = Number.isFinite(limit) && per > 0 ? Math.floor((limit - mappingCount() - 8192) / per) : requested;
  const n = Math.max(0, Math.min(requested, room));
  const note = n < requested ? `vm.max_map_count is ${limit}: ${n} tasks fit (${per.toFixed(2)} mappings each)` : null;
  if (note) log(`  note: ${note}`);
  collect();
  await immediate();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  let asleep = 0;
  const t0 = process.hrtime.bigint();
  const tasks = new Array(n);
  for (let i = 0; i < n; i++) {
    tasks[i] = ko.spawn(() => {
      asleep++;
      ko.sleep(3_600_000);
    });
  }
  while (asleep < n) await immediate();
  await immediate();
  const spawnMs = Number(process.hrtime.bigint() - t0) / 1e6;
  collect();
  const rss1 = process.memoryUsage().rss;
  const heap1 = process.memoryUsage().heapUsed;
  for (const t of tasks) ko.wakeup(t);
  for (const t of tasks) await t;
  const rssBytes = rss1 - rss0;
  return {
    backend: ko.backend,
    requested,
    tasks: n,
    rssBytes,
    rssPerTaskBytes: n ? Math.round(rssBytes / n) : 0,
    heapPerTaskBytes: n ? Math.round((heap1 - heap0) / n) : 0,
    spawnMs: Math.round(spawnMs),
    note,
  };
}

/** Runs the channel benchmark and returns its figures. */
export async function runChannelBench(opts: ChannelBenchOptions = {}): Promise<ChannelBenchReport> {
  const log = opts.log ?? (() => undefined);
  const repetitions = opts.repetitions ?? 5;
  const capacity = opts.capacity ?? 128;
  const available = backends().filter((b) => b.available).map((b) => b.name);
  const wanted = opts.backends === 'all' ? available : opts.backends ?? ['auto'];
  const rows: ChannelBenchRow[] = [];
  let first: Engine | null = null;
  for (const name of wanted) {
    const ko = createEngine({ backend: name });
    first ??= ko;
    const messages = Math.max(100, Math.floor((opts.messages ?? 100_000) / (ko.backend === 'threads' ? 10 : 1)));
    log(`${ko.backend}: ${messages} messages x ${repetitions}`);
    await pingPong(ko, Math.min(messages, 2000)); // warm-up
    await asyncPingPong(Math.min(messages, 2000));
    const pp: number[] = [];
    const app: number[] = [];
    const st: number[] = [];
    const ast: number[] = [];
    const rt: number[] = [];
    const bare: number[] = [];
    const ho: number[] = [];
    for (let r = 0; r < repetitions; r++) {
      rt.push(roundTrip(ko, messages));
      bare.push(bareRoundTrip(ko, messages));
      pp.push(await pingPong(ko, messages, ho));
      app.push(await asyncPingPong(messages));
      st.push(await stream(ko, messages, capacity));
      ast.push(await asyncStream(messages, capacity));
    }
    rows.push({
      backend: ko.backend,
      messages,
      pingPongNs: Math.round(median(pp)),
      asyncPingPongNs: Math.round(median(app)),
      streamNs: Math.round(median(st)),
      asyncStreamNs: Math.round(median(ast)),
      handOffShare: Math.round(median(ho) * 1000) / 1000,
      roundTripNs: Math.round(median(rt)),
      bareRoundTripNs: Math.round(median(bare)),
      pingPongVsHandOff: Math.round(medianRatio(pp, bare.map((b) => b / 2)) * 1000) / 1000,
    });
  }
  let sleeping: SleepersFigure | null = null;
  const n = opts.sleepers ?? 100_000;
  if (n > 0 && first) {
    const ko = first.backend === 'threads' ? createEngine({ backend: 'auto' }) : first;
    log(`${ko.backend}: RSS of ${n} sleeping tasks`);
    sleeping = await sleepers(ko, ko.backend === 'threads' ? Math.min(n, 1000) : n, log);
  }
  return { node: process.version, arch: process.arch, platform: process.platform, repetitions, rows, sleepers: sleeping };
}

/** The report as a table. */
export function formatChannelBench(r: ChannelBenchReport): string {
  const head = [
    'backend', 'ping-pong ns/msg', 'async/await ns/msg', 'ratio', 'stream ns/msg', 'async stream ns/msg', 'ratio',
    'hand-offs', 'round trip ns', 'bare round trip ns',
  ];
  const lines = r.rows.map((x) => [
    x.backend,
    String(x.pingPongNs),
    String(x.asyncPingPongNs),
    (x.pingPongNs / x.asyncPingPongNs).toFixed(2),
    String(x.streamNs),
    String(x.asyncStreamNs),
    (x.streamNs / x.asyncStreamNs).toFixed(2),
    `${(x.handOffShare * 100).toFixed(1)}%`,
    String(x.roundTripNs),
    String(x.bareRoundTripNs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [
    `korutin channel bench: node ${r.node} ${r.platform}-${r.arch}, median of ${r.repetitions}`,
    row(head),
    row(widths.map((w) => '-'.repeat(w))),
    ...lines.map(row),
    '',
    ...r.rows.map(
      (x) =>
        `ping-pong <= ${PING_PONG_TARGET_NS} ns/msg [${x.backend}]: ${x.pingPongNs <= PING_PONG_TARGET_NS ? 'met' : 'NOT met'} ` +
        `(${x.pingPongNs} ns; ${(x.pingPongNs / x.asyncPingPongNs).toFixed(1)}x async/await, ` +
        `${(x.pingPongNs / x.roundTripNs).toFixed(2)}x a round trip)`,
    ),
  ];
  if (r.sleepers) {
    const s = r.sleepers;
    out.push(
      '',
      `${s.tasks} sleeping tasks [${s.backend}]: RSS +${(s.rssBytes / 1024 / 1024).toFixed(1)} MiB = ` +
        `${(s.rssPerTaskBytes / 1024).toFixed(1)} KiB per task (JS heap ${(s.heapPerTaskBytes / 1024).toFixed(2)} KiB of it); ` +
        `spawned and asleep in ${s.spawnMs} ms`,
    );
    if (s.note) out.push(`note: ${s.note}`);
  }
  return out.join('\n');
}

function parseArgs(argv: string[]): { opts: ChannelBenchOptions; json: string | null } {
  const opts: ChannelBenchOptions = { log: (s) => process.stderr.write(`${s}\n`) };
  let json: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--json') json = next();
    else if (a === '--backend') {
      const v = next();
      opts.backends = v === 'all' ? 'all' : (v.split(',') as (BackendName | 'auto')[]);
    } else if (a === '--messages') opts.messages = Number(next());
    else if (a === '--sleepers') opts.sleepers = Number(next());
    else if (a === '--repetitions') opts.repetitions = Number(next());
    else if (a === '--capacity') opts.capacity = Number(next());
    else throw new Error(`unknown option ${a}`);
  }
  return { opts, json };
}

async function main(): Promise<void> {
  const { opts, json } = parseArgs(process.argv.slice(2));
  const report = await runChannelBench(opts);
  console.log(formatChannelBench(report));
  if (json) fs.writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
