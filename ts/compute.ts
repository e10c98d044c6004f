/**
 * `ko.compute(modulePath, exportName, ...args)`: CPU work on a pool of
 * worker threads (piscina) while the calling task waits and every other
 * task keeps running. The pool sizes itself to the cores, lets idle
 * workers go after 60 s, never keeps the process alive while idle, and is
 * closed by `ko.close()` (or {@link closeCompute}).
 */
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import type { TransferListItem } from 'worker_threads';
import { KorutinError } from './errors';
import { piscina, PiscinaPool } from './piscina';
import { blocker } from './sched/driver';
import { awaitPromise } from './sched/ops';

/** Options of {@link computeWith}. */
export interface ComputeOptions {
  /** Moved to the worker instead of copied (ArrayBuffers, MessagePorts...). */
  transferList?: TransferListItem[];
  /** Abandon the job after this many milliseconds (`ERR_TIMEOUT`; a running worker is recycled). */
  timeoutMs?: number;
}

/** What the worker runs (see compute-worker.ts). @internal */
export interface ComputeJob {
  module: string;
  exportName: string;
  args: unknown[];
}

/** Marks a worker function's result whose buffers are moved back rather than copied. @internal */
export const TRANSFER_MARK = Symbol.for('korutin.compute.transfer');

/**
 * In a compute module: `return transferResult(value, [value.buffer])` moves
 * those buffers back to the caller instead of copying them.
 */
export function transferResult<T>(value: T, transferList: TransferListItem[]): T {
  return { [TRANSFER_MARK]: true, value, transferList } as unknown as T;
}

/** Idle workers go after this long (ms). */
export const IDLE_TIMEOUT_MS = 60_000;

let pool: PiscinaPool | null = null;

function thePool(): PiscinaPool {
  pool ??= new (piscina().Piscina)({
    filename: path.join(__dirname, 'compute-worker.js'),
    minThreads: 0,
    maxThreads: Math.max(1, os.availableParallelism()),
    idleTimeout: IDLE_TIMEOUT_MS,
  });
  return pool;
}

/** Threads of the pool now (0 when it was never used or is closed). */
export function computeThreads(): number {
  return pool ? pool.threads.length : 0;
}

function moduleSpecifier(modulePath: unknown): string {
  if (modulePath instanceof URL) modulePath = modulePath.href;
  if (typeof modulePath !== 'string' || modulePath === '') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', 'compute(modulePath, ...): modulePath must be an absolute path or a file: URL');
  }
  if (modulePath.startsWith('file:')) return modulePath;
  if (!path.isAbsolute(modulePath)) {
    throw new KorutinError(
      'ERR_INVALID_ARGUMENT',
      `compute(): modulePath must be absolute (workers do not share your directory), e.g. path.join(__dirname, '${modulePath}'); got ${modulePath}`,
    );
  }
  return pathToFileURL(modulePath).href;
}

/**
 * Inside a task: runs `exportName(...args)` of the module on a worker
 * thread and returns its result (a returned Promise is awaited in the
 * worker). Arguments and result are structured-cloned; an error thrown
 * there is thrown here, with its stack. Cancelling the task abandons the
 * job (a running worker is recycled).
 */
export function compute(modulePath: string | URL, exportName: string, ...args: unknown[]): unknown {
  return computeWith({}, modulePath, exportName, ...args);
}

/** {@link compute} with options: a transfer list, a timeout. */
export function computeWith(options: ComputeOptions, modulePath: string | URL, exportName: string, ...args: unknown[]): unknown {
  const t = blocker('compute()');
  if (options === null || typeof options !== 'object') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', 'computeWith(options, modulePath, exportName, ...args): options must be an object');
  }
  const module = moduleSpecifier(modulePath);
  if (typeof exportName !== 'string' || exportName === '') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', "compute(): exportName must name an exported function ('default' for the default export)");
  }
  if (options.transferList !== undefined && !Array.isArray(options.transferList)) {
    throw new KorutinError('ERR_INVALID_ARGUMENT', 'compute(): transferList must be an array');
  }
  const ac = new AbortController();
  const job: ComputeJob = { module, exportName, args };
  const p = thePool().run(job, { transferList: options.transferList, signal: ac.signal });
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  t.waitLabel = `compute ${exportName}`;
  try {
    return awaitPromise(p, options.timeoutMs);
  } catch (e) {
    if (!settled) ac.abort(); // cancelled or timed out: drop the job, or recycle its worker
    if (e instanceof KorutinError && e.code === 'ERR_TIMEOUT') {
      throw new KorutinError('ERR_TIMEOUT', `compute(${exportName}) took longer than ${options.timeoutMs} ms; it was abandoned`);
    }
    throw e;
  } finally {
    t.waitLabel = null;
  }
}

/** Closes the pool (waiting for running jobs); the next compute() starts a new one. */
export function closeCompute(): Promise<void> {
  const p = pool;
  pool = null;
  return p ? p.destroy() : Promise.resolve();
}
