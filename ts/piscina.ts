/**
 * The part of piscina (npm) that korutin uses, typed here: piscina's own
 * declarations import its package.json, which this tsconfig does not resolve.
 * @internal
 */
import type { TransferListItem } from 'worker_threads';

export interface PiscinaPool {
  run(task: unknown, options: { transferList?: TransferListItem[]; signal?: AbortSignal }): Promise<unknown>;
  destroy(): Promise<void>;
  readonly threads: unknown[];
}

export interface PiscinaOptions {
  filename: string;
  minThreads: number;
  maxThreads: number;
  idleTimeout: number;
}

interface PiscinaModule {
  Piscina: new (options: PiscinaOptions) => PiscinaPool;
  move(value: object): unknown;
  transferableSymbol: symbol;
  valueSymbol: symbol;
}

let loaded: PiscinaModule | null = null;

/** piscina, loaded on first use. */
export function piscina(): PiscinaModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded ??= require('piscina') as PiscinaModule);
}
