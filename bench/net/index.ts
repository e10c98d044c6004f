/**
 * Network and compute benchmark, in one run:
 *
 * - coro++'s echo client load (C connections x N transactions of B bytes,
 *   default 100 x 100 x 100) against the echo server written blocking-style
 *   with korutin (a task per connection) and the same server written with
 *   async/await on node:net; each server runs in a child process of its
 *   own, the same callback-based load client runs here;
 * - I idle connections held open to each server (default 10,000) and the
 *   server's RSS per idle connection;
 * - 8 CPU jobs (fib) from 8 tasks through ko.compute while a ping task
 *   sleeps 5 ms in a loop: its worst extra delay.
 *
 *   bash bench/net/run.sh [--backend NAME] [--connections C] [--transactions N]
 *        [--bytes B] [--idle I] [--repetitions R] [--json FILE]
 *
 * Loopback (127.0.0.1) only; every phase is bounded in count and time.
 */
import { ChildProcess, fork } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { createEngine, Task } from '../../ts';

interface Options {
  backend: string;
  connections: number;
  transactions: number;
  bytes: number;
  idle: number;
  repetitions: number;
  json: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { backend: 'auto', connections: 100, transactions: 100, bytes: 100, idle: 10_000, repetitions: 9, json: 'net-bench.json' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const v = argv[i + 1];
    if (key === 'backend' || key === 'json') o[key] = v;
    else if (key in o) (o as unknown as Record<string, number>)[key] = Number(v);
    else throw new Error(`unknown option ${argv[i]}`);
  }
  return o;
}

interface Server {
  child: ChildProcess;
  port: number;
  stats(): Promise<{ rss: number; live: number }>;
  stop(): Promise<void>;
}

function startServer(kind: string, backend: string): Promise<Server> {
  const child = fork(path.join(__dirname, 'server.js'), [kind, backend], { execArgv: ['--expose-gc'] });
  const replies: ((m: { rss: number; live: number }) => void)[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start`)), 20_000);
    child.once('error', reject);
    child.on('message', (m: { port?: number; rss?: number; live?: number }) => {
      if (m.port !== undefined) {
        clearTimeout(timer);
        resolve({
          child,
          port: m.port,
          stats: () =>
            new Promise((r) => {
              replies.push(r);
              child.send('stats');
            }),
          stop: () =>
            new Promise((r) => {
              child.once('exit', () => r());
              child.send('exit');
            }),
        });
      } else replies.shift()?.(m as { rss: number; live: number });
    });
  });
}

/** coro++'s echo_client: each connection sends B bytes, waits for their echo, N times. Returns seconds. */
function echoLoad(port: number, conns: number, txns: number, bytes: number): Promise<number> {
  const msg = Buffer.alloc(bytes, 0x61);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let left = conns;
    const timer = setTimeout(() => reject(new Error('echo load did not finish in 60 s')), 60_000);
    for (let c = 0; c < conns; c++) {
      const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
      let done = 0;
      let got = 0;
      s.on('connect', () => s.write(msg));
      s.on('data', (d) => {
        got += d.length;
        while (got >= bytes) {
          got -= bytes;
          if (++done === txns) {
            s.destroy();
            if (--left === 0) {
              clearTimeout(timer);
              resolve((performance.now() - t0) / 1000);
            }
            return;
          }
          s.write(msg);
        }
      });
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    }
  });
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens n idle connections, waits until the server holds them; returns the server's RSS growth per connection. */
async function idleConnections(server: Server, n: number): Promise<{ held: number; rssPerConn: number; error?: string }> {
  await sleepMs(200);
  const base = await server.stats();
  const sockets: net.Socket[] = [];
  let error: string | undefined;
  try {
    for (let i = 0; i < n && !error; i += 500) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(n, i + 500); j++) {
        const s = net.connect({ port: server.port, host: '127.0.0.1' });
        sockets.push(s);
        batch.push(new Promise((resolve) => {
          s.once('connect', () => resolve());
          s.once('error', (e) => {
            error ??= (e as NodeJS.ErrnoException).code ?? String(e);
            resolve();
          });
        }));
      }
      await Promise.all(batch);
    }
    const end = Date.now() + 60_000;
    let st = await server.stats();
    while (st.live - base.live < sockets.length && Date.now() < end && !error) {
      await sleepMs(100);
      st = await server.stats();
    }
    await sleepMs(500);
    st = await server.stats();
    const held = st.live - base.live;
    return { held, rssPerConn: held > 0 ? (st.rss - base.rss) / held : 0, error };
  } finally {
    for (const s of sockets) s.destroy();
    const end = Date.now() + 30_000;
    while ((await server.stats()).live > base.live && Date.now() < end) await sleepMs(100);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function computeFigure(backend: string): Promise<{ jobs: number; seconds: number; pingWorstMs: number; pings: number }> {
  const ko = createEngine({ backend: backend as 'auto' });
  const jobs = path.join(__dirname, 'jobs.js');
  const r = await ko.spawn(() => {
    let worst = 0;
    let pings = 0;
    let stop = false;
    const ping = ko.spawn(() => {
      while (!stop) {
        const t0 = performance.now();
        ko.sleep(5);
        worst = Math.max(worst, performance.now() - t0 - 5);
        pings++;
      }
    });
    ko.compute(jobs, 'fib', 20); // warm one worker up
    const t0 = performance.now();
    const tasks: Task<number>[] = [];
    for (let i = 0; i < 8; i++) tasks.push(ko.spawn(() => ko.compute<number>(jobs, 'fib', 32)));
    for (const t of tasks) t.join(120_000);
    const seconds = (performance.now() - t0) / 1000;
    stop = true;
    ping.join(1000);
    return { jobs: 8, seconds, pingWorstMs: worst, pings };
  });
  await ko.close();
  return r;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const nofile = Number(process.env.KORUTIN_NOFILE ?? NaN);
  const out: Record<string, unknown> = { options: o, nofile: Number.isNaN(nofile) ? null : nofile, servers: {} };
  const servers = out.servers as Record<string, unknown>;
  const log = (s: string): void => console.log(s);
  log(`echo load: ${o.connections} connections x ${o.transactions} transactions x ${o.bytes} bytes, ${o.repetitions} repetitions (median)`);
  const tps: Record<string, number> = {};
  const kinds = ['korutin', 'async'];
  // both servers run at once and the repetitions alternate, so that a busy
  // machine slows both alike
  const started: Server[] = [];
  try {
    for (const kind of kinds) started.push(await startServer(kind, o.backend));
    const secs: number[][] = kinds.map(() => []);
    for (const server of started) await echoLoad(server.port, o.connections, Math.min(o.transactions, 10), o.bytes); // warm-up
    for (let r = 0; r < o.repetitions; r++) {
      for (let k = 0; k < kinds.length; k++) secs[k].push(await echoLoad(started[k].port, o.connections, o.transactions, o.bytes));
    }
    for (let k = 0; k < kinds.length; k++) {
      const s = median(secs[k]);
      tps[kinds[k]] = (o.connections * o.transactions) / s;
      log(`  ${kinds[k].padEnd(8)} ${Math.round(tps[kinds[k]]).toString().padStart(8)} transactions/s  (median run ${(s * 1000).toFixed(1)} ms)`);
      servers[kinds[k]] = { transactionsPerSecond: tps[kinds[k]], runSeconds: secs[k] };
    }
    // each repetition ran both loads back to back: the median of their ratios
    out.throughputRatio = median(secs[0].map((ks, r) => secs[1][r] / ks));
    if (o.idle > 0) log(`idle connections: ${o.idle} to each server in turn`);
    for (let k = 0; k < kinds.length && o.idle > 0; k++) {
      await sleepMs(1000); // the load's sockets leave TIME_WAIT behind; let the server settle
      const idle = await idleConnections(started[k], o.idle);
      log(`  ${kinds[k].padEnd(8)} ${idle.held} of ${o.idle} held, ${(idle.rssPerConn / 1024).toFixed(1)} KiB of server RSS each${idle.error ? ` (stopped by ${idle.error})` : ''}`);
      (servers[kinds[k]] as Record<string, unknown>).idle = idle;
    }
  } finally {
    for (const server of started) await server.stop();
  }
  const ratio = out.throughputRatio as number;
  log(`throughput korutin / async-await: ${ratio.toFixed(2)} (median of ${o.repetitions} back-to-back pairs; target >= 0.8)`);
  const c = await computeFigure(o.backend);
  out.compute = c;
  log(`compute: ${c.jobs} x fib(32) from ${c.jobs} tasks in ${c.seconds.toFixed(2)} s; the ping task's worst extra delay ${c.pingWorstMs.toFixed(1)} ms over ${c.pings} pings`);
  fs.writeFileSync(o.json, JSON.stringify(out, null, 2) + '\n');
  log(`figures written to ${o.json}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
