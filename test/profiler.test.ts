/**
 * Sampling profilers see a coroutine's own frames: a child process runs a
 * coroutine whose body spins in `burnInsideCoroutine` for ~300 ms across
 * several yields, under --cpu-prof, the inspector's Profiler domain and
 * --prof; the profile must charge that function with a large share of its
 * samples, called from the coroutine's own frames. Also a coroutine nested
 * in another inside a Worker (on threads, each runs on an OS thread of its
 * own that no sampler signals: see engine/node/v8bridge/profiler.h).
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../ts/native';
import { PACKAGE_ENTRY, testBackends } from './helpers';

/** The child's program: BACKEND and the package entry come from the environment. */
const BURN = `
const { createEngine } = require(process.env.KO_ENTRY);
const ko = createEngine({ backend: process.env.KO_BACKEND });
function burnInsideCoroutine(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) for (let i = 0; i < 1000; i++) x += Math.sqrt(i + (x % 7));
  return x;
}
function coroutineStep(ms) { return burnInsideCoroutine(ms); }
function coroutineBody() {
  let s = 0;
  for (let k = 0; k < 6; k++) { s += coroutineStep(50); ko.yield(k); }
  return s;
}
function run() {
  const co = ko.create(coroutineBody);
  while (!co.resume().done) {}
}
`;

/** The same, profiled through node:inspector's Profiler domain; prints the profile. */
const VIA_INSPECTOR = `${BURN}
const inspector = require('inspector');
const session = new inspector.Session();
session.connect();
const post = (m, p) => { let out, err; session.post(m, p || {}, (e, r) => { err = e; out = r; }); if (err) throw err; return out; };
post('Profiler.enable');
post('Profiler.setSamplingInterval', { interval: 1000 });
post('Profiler.start');
run();
const { profile } = post('Profiler.stop');
require('fs').writeFileSync(process.env.KO_OUT, JSON.stringify(profile));
`;

/** In a Worker, a coroutine resumes a nested one that burns; --cpu-prof writes a profile per thread. */
const NESTED_IN_WORKER = `
const { Worker, isMainThread } = require('worker_threads');
if (isMainThread) {
  new Worker(__filename, { env: process.env });
} else {
  const { createEngine } = require(process.env.KO_ENTRY);
  const ko = createEngine({ backend: process.env.KO_BACKEND });
  function burnInsideNested(ms) {
    const end = Date.now() + ms;
    let x = 0;
    while (Date.now() < end) for (let i = 0; i < 1000; i++) x += Math.sqrt(i + (x % 7));
    return x;
  }
  function nestedStep(ms) { return burnInsideNested(ms); }
  function nestedBody() { for (let k = 0; k < 6; k++) { nestedStep(50); ko.yield(); } }
  function outerBody() { const inner = ko.create(nestedBody); while (!inner.resume().done) ko.yield(); }
  const co = ko.create(outerBody);
  while (!co.resume().done) {}
}
`;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

/** Self samples of `fn`, all samples, and the callers of fn's nodes (innermost first). */
function analyse(p: Profile, fn: string) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ids = new Set(p.nodes.filter((n) => n.callFrame.functionName === fn).map((n) => n.id));
  const self = p.samples.filter((s) => ids.has(s)).length;
  const chains = [...ids].map((id) => {
    const chain: string[] = [];
    for (let at = parent.get(id); at !== undefined; at = parent.get(at)) chain.push(byId.get(at)!.callFrame.functionName);
    return chain;
  });
  const selfOf = (name: string) =>
    p.samples.filter((s) => byId.get(s)!.callFrame.functionName === name).length;
  return { self, total: p.samples.length, chains, selfOf };
}

function child(args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  const r = spawnSync(process.execPath, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
  assert.equal(r.status, 0, `child failed (${r.signal ?? r.status}): ${r.stderr}`);
  return r;
}

describe('profiler support', () => {
  it("finds and verifies V8's per-thread record at load time", () => {
    const report = native.bridge() as unknown as { ok: boolean; profiler: boolean; profilerReason: string | null };
    if (!report.ok) return;
    assert.equal(report.profiler, true, `profiler support is off: ${report.profilerReason}`);
  });
});

for (const backend of testBackends()) {
  describe(`profiler [${backend}]`, function () {
    this.timeout(120_000);
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'korutin-prof-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    const check = (p: Profile, how: string) => {
      const a = analyse(p, 'burnInsideCoroutine');
      const share = a.self / Math.max(1, a.total);
      assert.ok(
        a.self >= 20 && share >= 0.3,
        `${how}: burnInsideCoroutine has ${a.self} of ${a.total} samples (${(share * 100).toFixed(0)}%); ` +
          `resumeNative has ${a.selfOf('resumeNative')}`,
      );
      assert.ok(
        a.chains.some((c) => c[0] === 'coroutineStep' && c.includes('coroutineBody')),
        `${how}: burnInsideCoroutine is not called from the coroutine's frames: ${JSON.stringify(a.chains)}`,
      );
    };

    it('--cpu-prof charges the coroutine body\'s own function', () => {
      const script = path.join(dir, 'burn.js');
      fs.writeFileSync(script, `${BURN}\nrun();\n`);
      child(['--cpu-prof', `--cpu-prof-dir=${dir}`, script], { KO_ENTRY: PACKAGE_ENTRY, KO_BACKEND: backend }, dir);
      const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
      assert.equal(files.length, 1, `expected one .cpuprofile in ${files}`);
      check(JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8')), '--cpu-prof');
    });

    it("the inspector's Profiler domain sees the coroutine's frames", () => {
      const out = path.join(dir, 'profile.json');
      child(['-e', VIA_INSPECTOR], { KO_ENTRY: PACKAGE_ENTRY, KO_BACKEND: backend, KO_OUT: out }, dir);
      check(JSON.parse(fs.readFileSync(out, 'utf8')), 'Profiler domain');
    });

    it("--cpu-prof in a Worker charges a nested coroutine's own function", () => {
      const script = path.join(dir, 'nested.js');
      fs.writeFileSync(script, NESTED_IN_WORKER);
      child(['--cpu-prof', `--cpu-prof-dir=${dir}`, script], { KO_ENTRY: PACKAGE_ENTRY, KO_BACKEND: backend }, dir);
      const profiles = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Profile);
      assert.equal(profiles.length, 2, 'expected a profile for the main thread and one for the Worker');
      const worker = profiles.find((p) => p.nodes.some((n) => n.callFrame.functionName === 'burnInsideNested'));
      assert.ok(worker, 'no profile names burnInsideNested');
      const a = analyse(worker, 'burnInsideNested');
      assert.ok(a.self >= 20 && a.self / Math.max(1, a.total) >= 0.3, `Worker: burnInsideNested has ${a.self} of ${a.total} samples`);
      assert.ok(
        a.chains.some((c) => c[0] === 'nestedStep' && c.includes('nestedBody')),
        `Worker: burnInsideNested is not called from the nested coroutine's frames: ${JSON.stringify(a.chains)}`,
      );
    });

    it('--prof ticks land in the coroutine body\'s function', () => {
      const script = path.join(dir, 'burn.js');
      fs.writeFileSync(script, `${BURN}\nrun();\n`);
      const args = ['--prof', script];
      const env = { KO_ENTRY: PACKAGE_ENTRY, KO_BACKEND: backend };
      // V8 aborts at start-up when it cannot start --prof's thread (seen once
      // on a loaded machine, before any of korutin runs): try that once more.
      const first = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000, killSignal: 'SIGKILL' });
      if (first.status !== 0 && /V8FileLogger::SetUp/.test(first.stderr)) {
        for (const f of fs.readdirSync(dir)) if (f.endsWith('.log')) fs.rmSync(path.join(dir, f));
        child(args, env, dir);
      } else assert.equal(first.status, 0, `child failed (${first.signal ?? first.status}): ${first.stderr}`);
      const logs = fs.readdirSync(dir).filter((f) => f.endsWith('.log'));
      assert.equal(logs.length, 1, `expected one isolate log in ${logs}`);
      const r = child(['--prof-process', path.join(dir, logs[0])], {}, dir);
      const m = /\((\d+) ticks,/.exec(r.stdout);
      const total = m ? Number(m[1]) : 0;
      // The flat [JavaScript] section only (the bottom-up one counts the same
      // ticks again); V8 marks a function's code tier: ~ Ignition, ^ Sparkplug,
      // + Maglev, * TurboFan.
      const flat = r.stdout.split('[JavaScript]:')[1]?.split(/\n \[/)[0] ?? '';
      const burn = flat
        .split('\n')
        .filter((l) => /JS: [*~^+]?burnInsideCoroutine /.test(l))
        .reduce((n, l) => n + Number(l.trim().split(/\s+/)[0]), 0);
      assert.ok(
        burn >= 20 && burn / Math.max(1, total) >= 0.3,
        `--prof: burnInsideCoroutine has ${burn} of ${total} ticks\n${r.stdout.slice(0, 1500)}`,
      );
    });
  });
}
