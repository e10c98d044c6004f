/** Shared by the mocha suites: which backends to run against, and small tools. */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { backends, BackendName, createEngine, Engine, KorutinError } from '../ts';

/** Every backend that can run JavaScript here (KORUTIN_TEST_BACKENDS=asm,threads narrows it). */
export function testBackends(): BackendName[] {
  const only = process.env.KORUTIN_TEST_BACKENDS?.split(',').filter(Boolean);
  return backends()
    .filter((b) => b.available && (!only || only.includes(b.name)))
    .map((b) => b.name);
}

/** One engine per backend, created once. */
const engines = new Map<string, Engine>();
export function engineFor(backend: BackendName, stackSize: string | number = '256k'): Engine {
  const key = `${backend}/${stackSize}`;
  let e = engines.get(key);
  if (!e) engines.set(key, (e = createEngine({ backend, stackSize })));
  return e;
}

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run mocha with --expose-gc (see .mocharc.json)');
  g();
}

/** The built package's entry, for scripts run in child processes. */
export const PACKAGE_ENTRY = path.join(__dirname, '..', 'ts', 'index.js');
/** The built module that loads the addon (its `native` export). */
export const NATIVE_ENTRY = path.join(__dirname, '..', 'ts', 'native.js');

/** Runs `node [flags] -e script` and returns its status and output. */
export function runNode(script: string, flags: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [...flags, '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The stable code of a korutin error. */
export function codeOf(e: unknown): string | undefined {
  return (e as KorutinError).code;
}

/** Runs fn as a task; resolves with its result. */
export function inTask<R>(ko: Engine, fn: () => R): Promise<R> {
  return ko.spawn(fn).toPromise();
}

export const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits (on the event loop) until cond() holds. */
export async function until(cond: () => boolean, what = 'condition', ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
    await tick(1);
  }
}
