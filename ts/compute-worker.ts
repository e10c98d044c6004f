/**
 * The worker side of `ko.compute()`: loads the module (CommonJS or ESM),
 * calls the export with the arguments and returns what it returns (awaited).
 */
import { fileURLToPath } from 'url';
import { piscina } from './piscina';
import type { ComputeJob } from './compute';

const TRANSFER_MARK = Symbol.for('korutin.compute.transfer');
/** A real dynamic import (tsc would turn `import()` into `require()`). */
const importEsm = new Function('u', 'return import(u)') as (u: string) => Promise<Record<string, unknown>>;
const modules = new Map<string, Promise<Record<string, unknown>>>();

function load(href: string): Promise<Record<string, unknown>> {
  let m = modules.get(href);
  if (!m) {
    m = (async () => {
      try {
        return require(fileURLToPath(href)) as Record<string, unknown>;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw e;
        return importEsm(href);
      }
    })();
    modules.set(href, m);
  }
  return m;
}

/** Runs one job in the worker. @internal */
export default async function run(job: ComputeJob): Promise<unknown> {
  const mod = await load(job.module);
  const fn = job.exportName === 'default' && typeof mod === 'function' ? mod : mod[job.exportName];
  if (typeof fn !== 'function') {
    throw new TypeError(`compute(): ${job.module} exports no function named ${job.exportName}`);
  }
  const result = await (fn as (...a: unknown[]) => unknown)(...job.args);
  if (result !== null && typeof result === 'object' && (result as Record<symbol, unknown>)[TRANSFER_MARK] === true) {
    const r = result as unknown as { value: unknown; transferList: unknown[] };
    const p = piscina();
    return p.move({ [p.transferableSymbol]: r.transferList, [p.valueSymbol]: r.value });
  }
  return result;
}
