/**
 * The self-check: proves, on this machine, which backends run JavaScript
 * coroutines correctly, and compares the verdicts with matrix.yml.
 */
import { AsyncLocalStorage, AsyncResource, executionAsyncId, executionAsyncResource } from 'async_hooks';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { setFlagsFromString } from 'v8';
import { runInNewContext } from 'vm';
import { parse as parseYaml } from 'yaml';
import { backends, BackendInfo } from './backends';
import { BackendName } from './config';
import { createEngine, Engine } from './engine';
import { BridgeReport, native, nativeProgram } from './native';
import { platform, Platform } from './platform';

/** One check's outcome. */
export interface CheckResult {
  name: string;
  ok: boolean | null; // null: skipped
  detail?: string;
  ms: number;
}

/** The verdict for one backend. */
export interface BackendVerdict {
  backend: BackendName;
  available: boolean;
  reason: string | null;
  checks: CheckResult[];
  passed: number;
  failed: number;
  skipped: number;
  verdict: 'pass' | 'fail' | 'unavailable';
  /** What matrix.yml says of this platform and backend, if it has a row. */
  matrix?: { status: string; how?: string; agrees: boolean };
}

export interface SelfcheckReport {
  platform: Platform;
  bridge: BridgeReport;
  backends: BackendVerdict[];
  ok: boolean;
}

export interface SelfcheckOptions {
  /** A backend name, or 'all' (the default). */
  backend?: BackendName | 'all';
  /** Skip the checks that start child processes and Workers. */
  quick?: boolean;
}

const ENTRY = path.join(__dirname, 'index.js');
const SCHEDULER = path.join(__dirname, 'scheduler.js');

/** A full GC without --expose-gc. */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

type Check = { name: string; slow?: boolean; run: (ko: Engine, backend: BackendName) => string | void };

function expect(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

function runChild(script: string, flags: string[] = []): string {
  const r = spawnSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`child exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

/** The JS-bridge suite, run against each backend. */
const CHECKS: Check[] = [
  {
    name: 'values cross resume/yield',
    run: (ko) => {
      const co = ko.create((x: number) => ko.yield<number>(x + 1) * 2);
      expect(co.resume(1).value === 2 && co.resume(5).value === 10 && co.done, 'wrong values');
    },
  },
  {
    name: 'exceptions reach the resumer with their stack',
    run: (ko) => {
      const co = ko.create(function thrower() {
        ko.yield();
        throw new SyntaxError('inside');
      });
      co.resume();
      try {
        co.resume();
      } catch (e) {
        expect(e instanceof SyntaxError && /thrower/.test((e as Error).stack ?? ''), 'wrong error or stack');
        return;
      }
      throw new Error('nothing was thrown');
    },
  },
  {
    name: 'return() unwinds through finally',
    run: (ko) => {
      let unwound = false;
      const co = ko.create(() => {
        try {
          ko.yield();
        } finally {
          unwound = true;
        }
      });
      co.resume();
      co.return();
      expect(unwound && co.done, 'finally did not run');
    },
  },
  {
    name: 'nested coroutines',
    run: (ko) => {
      const outer = ko.create(() => {
        const inner = ko.create(() => ko.yield('a') + 'c');
        const a = inner.resume().value as string;
        const b = ko.yield(a);
        return inner.resume(b).value;
      });
      expect(outer.resume().value === 'a' && outer.resume('b').value === 'bc', 'wrong nesting');
    },
  },
  {
    name: 'stack overflow is a RangeError (96k stack)',
    run: (_ko, backend) => {
      const small = createEngine({ backend, stackSize: '96k' });
      const rec = (n: number): number => rec(n + 1) + 1;
      const co = small.create(() => rec(0));
      try {
        co.resume();
      } catch (e) {
        expect(e instanceof RangeError, `got ${String(e)}`);
        return;
      }
      throw new Error('no RangeError');
    },
  },
  {
    // Each keeps an AsyncLocalStorage store of its own and leaves young
    // garbage behind, so that scavenges run while its store is young.
    name: '2,000 suspended coroutines with their own stores survive GCs',
    run: (ko) => {
      const N = 2000;
      const rounds = 10;
      const als = new AsyncLocalStorage<{ i: number }>();
      let bad = 0;
      const cos = Array.from({ length: N }, (_, i) =>
        ko.create(() => {
          const keep = { i, s: `v${i}` };
          als.enterWith({ i });
          for (let r = 0; r < rounds; r++) {
            const junk = Array.from({ length: 50 }, (_, k) => ({ k, s: `j${k}` }));
            ko.yield();
            if (keep.i !== i || keep.s !== `v${i}` || als.getStore()?.i !== i || junk.length !== 50) bad++;
          }
        }),
      );
      for (let r = 0; r <= rounds; r++) {
        for (const co of cos) co.resume();
        if (als.getStore() !== undefined) bad++;
        if (r % 3 === 0) fullGc();
      }
      expect(bad === 0 && cos.every((c) => c.done), `${bad} coroutines lost their locals or stores`);
    },
  },
  {
    name: 'AsyncLocalStorage and async scopes across suspension',
    run: (ko) => {
      const als = new AsyncLocalStorage<string>();
      const scope = new AsyncResource('korutin.selfcheck');
      const movable = native.async_stack().ok;
      const co = ko.create(() => {
        als.enterWith('co');
        let refused = false;
        scope.runInAsyncScope(() => {
          try {
            ko.yield();
            expect(executionAsyncResource() === scope, 'lost its async scope');
          } catch (e) {
            // where scopes cannot move (see async_stack().reason), a clean refusal
            if (movable || (e as { code?: string }).code !== 'ERR_ASYNC_CONTEXT') throw e;
            refused = true;
          }
        });
        if (refused) ko.yield();
        return als.getStore();
      });
      const outer = executionAsyncId();
      co.resume();
      expect(executionAsyncId() === outer && als.getStore() === undefined, 'the resumer saw the coroutine context');
      expect(als.run('other', () => co.resume().value) === 'co', 'the coroutine lost its store');
    },
  },
  {
    // In a child: tasks need the event loop. A hand-off swaps Node's async
    // stack and V8's continuation data natively; under an enabled hook
    // Node aborts if the stack is left wrong.
    name: 'tasks hand off over channels, each in its own async context',
    run: (_ko, backend) => {
      const out = runChild(
        `const {AsyncLocalStorage,createHook,executionAsyncId}=require('async_hooks');createHook({before(){},after(){}}).enable();
         const {createEngine,Channel}=require(${JSON.stringify(ENTRY)});const {schedulerStats}=require(${JSON.stringify(SCHEDULER)});
         const ko=createEngine({backend:'${backend}'});const als=new AsyncLocalStorage();const a=new Channel(0),b=new Channel(0);let bad=0;
         const task=(who,f)=>ko.spawn(()=>{als.enterWith(who);const id=executionAsyncId();for(let i=0;i<500;i++){f(i);if(als.getStore()!==who||executionAsyncId()!==id)bad++;}});
         const h0=schedulerStats().handOffs;
         Promise.all([task('ping',(i)=>{a.send(i);b.recv();}),task('pong',()=>b.send(a.recv()))]).then(()=>
           console.log('bad',bad,'handOffs',schedulerStats().handOffs-h0));`,
      );
      const m = /bad (\d+) handOffs (\d+)/.exec(out);
      expect(m !== null && m[1] === '0', `tasks lost their async context: ${out.trim()}`);
      const chains = native.async_stack().ok;
      expect(!chains || Number(m![2]) >= 900, `only ${m![2]} of 1,000 messages were handed off`);
      return chains ? `${m![2]} of 1,000 messages handed off` : 'no hand-offs here (async stack not movable)';
    },
  },
  {
    name: 'Wasm code GC while coroutines are suspended',
    slow: true,
    run: (_ko, backend) => {
      const out = runChild(
        `const {createEngine}=require(${JSON.stringify(ENTRY)});const ko=createEngine({backend:'${backend}'});
         const b=new Uint8Array([0,97,115,109,1,0,0,0,1,7,1,96,2,127,127,1,127,3,2,1,0,7,7,1,3,97,100,100,0,0,10,9,1,7,0,32,0,32,1,106,11]);
         const c=ko.create(()=>{for(;;)ko.yield();});c.resume();
         (async()=>{let s=0;for(let r=0;r<8;r++){const f=new WebAssembly.Instance(new WebAssembly.Module(b)).exports.add;
         for(let i=0;i<200000;i++)s=f(s,1);c.resume();global.gc();await new Promise(r=>setTimeout(r,5));}console.log('ok',s);})();`,
        ['--expose-gc', '--stress-wasm-code-gc'],
      );
      expect(/ok 1600000/.test(out), 'unexpected output');
    },
  },
  {
    name: 'coroutines inside a worker_threads Worker',
    slow: true,
    run: (_ko, backend) => {
      const out = runChild(
        `const {Worker}=require('worker_threads');
         const w=new Worker(\`const {parentPort}=require('worker_threads');const {createEngine}=require(${JSON.stringify(ENTRY)});
         const ko=createEngine({backend:'${backend}'});const co=ko.create(()=>ko.yield(1)+1);co.resume();parentPort.postMessage(co.resume(41).value);\`,{eval:true});
         w.on('message',(m)=>console.log('worker',m));`,
      );
      expect(/worker 42/.test(out), 'unexpected output');
    },
  },
];

function readMatrix(): Record<string, unknown>[] {
  try {
    const doc = parseYaml(fs.readFileSync(path.join(__dirname, '..', '..', 'matrix.yml'), 'utf8')) as { rows?: unknown[] } | unknown[];
    const rows = Array.isArray(doc) ? doc : (doc as { rows?: unknown[] }).rows;
    return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
  } catch {
    return [];
  }
}

/** The matrix.yml row of this platform, backend and Node major (runtime `node<N>`). */
function matrixRow(rows: Record<string, unknown>[], p: Platform, backend: string) {
  const arch = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i386', arm: 'armv7' }[p.arch] ?? p.arch;
  const runtime = `node${p.node.split('.')[0]}`;
  return rows.find(
    (r) => String(r.os) === p.os && String(r.arch) === arch && String(r.backend) === backend && String(r.runtime) === runtime,
  );
}

/** What korutin-selfcheck (the native suite, engine/selfcheck) reported for one backend. */
interface NativeRow {
  name: string;
  available: boolean;
  reason?: string;
  ns_per_switch?: number;
  tests?: { name: string; result: 'pass' | 'fail' | 'skip'; ms: number; msg?: string; note?: string }[];
}

/** Runs the native suite (the source build's, or the prebuilt one) for `which`. */
function runNativeSuite(which: string): { rows: NativeRow[] } | { missing: string } {
  const program = nativeProgram('korutin-selfcheck');
  if (!program) {
    return { missing: `korutin-selfcheck is neither built nor prebuilt for ${process.platform}-${process.arch}: build from source (npm rebuild korutin) to run the native suite` };
  }
  const r = spawnSync(program, ['--backend', which, '--json'], { encoding: 'utf8', timeout: 600_000 });
  try {
    return { rows: (JSON.parse(r.stdout) as { backends: NativeRow[] }).backends };
  } catch {
    return { missing: `korutin-selfcheck did not report (exit ${r.status ?? r.signal}): ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')}` };
  }
}

function nativeChecks(suite: ReturnType<typeof runNativeSuite> | null, backend: string): CheckResult[] {
  if (!suite) return [{ name: 'native suite', ok: null, detail: 'skipped (--quick)', ms: 0 }];
  if ('missing' in suite) return [{ name: 'native suite', ok: null, detail: suite.missing, ms: 0 }];
  const row = suite.rows.find((r) => r.name === backend);
  if (!row?.available) return [{ name: 'native suite', ok: null, detail: row?.reason ?? 'not reported', ms: 0 }];
  return (row.tests ?? []).map((t) => ({
    name: `native: ${t.name}`,
    ok: t.result === 'pass' ? true : t.result === 'fail' ? false : null,
    detail: t.msg ?? t.note,
    ms: t.ms,
  }));
}

function checkBackend(
  info: BackendInfo,
  quick: boolean,
  rows: Record<string, unknown>[],
  p: Platform,
  suite: ReturnType<typeof runNativeSuite> | null,
): BackendVerdict {
  const v: BackendVerdict = {
    backend: info.name, available: info.available, reason: info.reason,
    checks: [], passed: 0, failed: 0, skipped: 0, verdict: 'unavailable',
  };
  if (info.available) {
    const ko = createEngine({ backend: info.name });
    for (const c of CHECKS) {
      const t = process.hrtime.bigint();
      let r: CheckResult;
      if (quick && c.slow) {
        r = { name: c.name, ok: null, detail: 'skipped (--quick)', ms: 0 };
      } else {
        try {
          const detail = c.run(ko, info.name);
          r = { name: c.name, ok: true, detail: detail ?? undefined, ms: 0 };
        } catch (e) {
          r = { name: c.name, ok: false, detail: (e as Error).message ?? String(e), ms: 0 };
        }
      }
      r.ms = Number(process.hrtime.bigint() - t) / 1e6;
      v.checks.push(r);
    }
    v.checks.push(...nativeChecks(suite, info.name));
    v.passed = v.checks.filter((c) => c.ok === true).length;
    v.failed = v.checks.filter((c) => c.ok === false).length;
    v.skipped = v.checks.filter((c) => c.ok === null).length;
    v.verdict = v.failed ? 'fail' : 'pass';
  }
  const row = matrixRow(rows, p, info.name);
  if (row) {
    const status = String(row.status);
    const agrees = v.verdict === 'pass' ? status === 'verified' || status === 'builds' || status === 'untested' : status !== 'verified';
    v.matrix = { status, how: row.how === undefined ? undefined : String(row.how), agrees };
  }
  return v;
}

/** Runs the native suite and the JS-bridge suite per backend on this machine. */
export function selfcheck(options: SelfcheckOptions = {}): SelfcheckReport {
  const p = platform();
  const rows = readMatrix();
  const which = options.backend ?? 'all';
  const infos = backends().filter((b) => which === 'all' || b.name === which);
  const suite = options.quick ? null : runNativeSuite(which);
  const verdicts = infos.map((b) => checkBackend(b, options.quick ?? false, rows, p, suite));
  return {
    platform: p,
    bridge: native.bridge(),
    backends: verdicts,
    ok: verdicts.every((v) => v.verdict !== 'fail') && verdicts.some((v) => v.verdict === 'pass'),
  };
}

/** The report as a table for a terminal. */
/** A thread-local slot by its offset from the thread pointer: tp-64, tp+200. */
const tpSlot = (offset: number): string => `tp${offset < 0 ? '' : '+'}${offset}`;

export function formatSelfcheck(r: SelfcheckReport): string {
  const p = r.platform;
  const lines = [
    `platform  ${p.key}  (os ${p.os}, arch ${p.arch}, ${p.libc}, node ${p.node}, v8 ${p.v8})`,
    `bridge    ${r.bridge.ok ? `ok (thread id slot ${tpSlot(r.bridge.threadIdOffset)} from ${r.bridge.threadIdFrom}, stack start slot ${tpSlot(r.bridge.stackStartOffset)} from ${r.bridge.stackStartFrom}${r.bridge.stackSizeOffset > 0 ? `, isolate stack size at +${r.bridge.stackSizeOffset}` : ''})` : `unavailable: ${r.bridge.reason}`}`,
    '',
    'backend    verdict       native suite   JS bridge    matrix.yml (' + p.key.replace(/-glibc|-musl/, '') + ')',
    '                          pass fail skip pass fail skip',
  ];
  const count = (cs: CheckResult[], ok: boolean | null) => String(cs.filter((c) => c.ok === ok).length).padStart(4);
  for (const v of r.backends) {
    const nat = v.checks.filter((c) => c.name.startsWith('native'));
    const js = v.checks.filter((c) => !c.name.startsWith('native'));
    const m = v.matrix ? `${v.matrix.status}${v.matrix.agrees ? '' : '  (DISAGREES)'}` : '(no row)';
    lines.push(
      `${v.backend.padEnd(10)} ${v.verdict.padEnd(12)} ${count(nat, true)} ${count(nat, false)} ${count(nat, null)} ${count(js, true)} ${count(js, false)} ${count(js, null)}   ${m}`,
    );
    if (!v.available) lines.push(`           ${v.reason}`);
    for (const c of v.checks.filter((c) => c.ok === false)) lines.push(`           FAILED ${c.name}: ${c.detail}`);
    for (const c of v.checks.filter((c) => c.name === 'native suite' && c.ok === null && c.detail !== 'skipped (--quick)')) {
      lines.push(`           native suite skipped: ${c.detail}`);
    }
  }
  lines.push('', r.ok ? 'self-check passed' : 'self-check FAILED');
  return lines.join('\n');
}
