/**
 * Engine configuration, validated with zod.
 */
import { z } from 'zod';
import { KorutinError } from './errors';
import { describeGiven } from './format';
import { BACKENDS } from './vocab';

/** The switch backends, fastest first (korutin.h's KO_BACKEND_MAP); `'auto'` picks the fastest one that works here. */
export { BACKENDS };
export type BackendName = (typeof BACKENDS)[number];

/** Smallest stack a JavaScript coroutine can run in (V8 needs ~40 KiB to compile, plus C++ room). */
export const MIN_STACK = 96 * 1024;
/** Largest stack accepted (address space only: pages are touched as used). */
export const MAX_STACK = 1024 * 1024 * 1024;
const PAGE = 4096;

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i;

/** Parses `4096`, `'256k'`, `'1m'`, `'1.5 MiB'` into bytes (NaN when malformed). */
export function parseSize(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = SIZE_RE.exec(v);
  if (!m) return NaN;
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
}

/** What a stack size may be, for messages. */
const SIZE_ACCEPTS = "a byte count or a size like '96k', '256k', '1m' or '1.5 MiB' (a byte count is a positive whole number)";

const size = z
  .union([z.number(), z.string()], {
    errorMap: (_issue, ctx) => ({ message: `must be ${SIZE_ACCEPTS}; got ${describeGiven(ctx.data)}` }),
  })
  .superRefine((v, ctx) => {
    const n = parseSize(v);
    if (!Number.isInteger(n) || n <= 0) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be ${SIZE_ACCEPTS}; got ${describeGiven(v)}` });
    } else if (n < MIN_STACK) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `must be at least ${MIN_STACK / 1024}k: JavaScript needs that much stack; got ${describeGiven(v)} (${n} bytes)`,
      });
    } else if (n > MAX_STACK) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be at most ${MAX_STACK / 1024 ** 2}m; got ${describeGiven(v)} (${n} bytes)` });
    }
  })
  .transform(parseSize);

/**
 * What to do with an error that ends a task nobody joins: a detached task,
 * or one nobody has joined, awaited or detached by the next turn of the
 * event loop after it failed (see docs/scheduler.md).
 * `'throw'` (the default, as Node treats an unhandled rejection) raises it
 * as an uncaught exception (or hands it to `'unhandledRejection'`
 * listeners when there are some); `'warn'` emits a process warning; `'ignore'`
 * drops it; a function is called with the error and the task's id and name.
 */
export type UnhandledPolicy = 'throw' | 'warn' | 'ignore' | ((error: unknown, task: { id: number; name: string }) => void);

/** The schema of the `unhandled` engine option. */
export const UnhandledSchema: z.ZodType<UnhandledPolicy> = z.union(
  [z.enum(['throw', 'warn', 'ignore']), z.custom<(error: unknown, task: { id: number; name: string }) => void>((v) => typeof v === 'function')],
  { errorMap: () => ({ message: "must be 'throw', 'warn', 'ignore' or a function (error, task) => void" }) },
);

/** The schema of {@link createEngine}'s configuration. */
export const ConfigSchema = z
  .object({
    /** Which switch backend runs the coroutines. */
    backend: z.enum(['auto', ...BACKENDS]).default('auto'),
    /** Usable stack per coroutine: bytes, or `'256k'`, `'1m'`. */
    stackSize: size.default('256k'),
    /** Inaccessible pages below each stack, so an overflow faults instead of corrupting memory. */
    guardPages: z.number().int().min(1).max(256).default(1),
    /**
     * Freed stacks kept for reuse (the pool is process-wide: the largest value
     * asked for wins); as many finished coroutines, with their V8 thread
     * state, are kept per thread for the next create() of the same backend
     * and sizes (emptied when idle for about 2 s). Each pooled coroutine is
     * an archived V8 thread that every full GC visits: 0 turns pooling off.
     */
    poolSize: z.number().int().min(0).max(1_000_000).default(64),
    /** What happens to an error that ends a task nobody joins or awaits. */
    unhandled: UnhandledSchema.default('throw'),
  })
  .strict();

/** What a user may pass. */
export type EngineConfig = z.input<typeof ConfigSchema>;
/** The validated configuration, with defaults filled in. */
export type ResolvedConfig = z.output<typeof ConfigSchema> & { guardSize: number };

/** Validates a configuration; throws ERR_INVALID_CONFIG listing every problem. */
export function parseConfig(input: unknown): ResolvedConfig {
  const r = ConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(config)'}: ${i.message}`);
    throw new KorutinError('ERR_INVALID_CONFIG', `invalid korutin configuration:\n${lines.join('\n')}`);
  }
  const stackSize = Math.ceil(r.data.stackSize / PAGE) * PAGE;
  return { ...r.data, stackSize, guardSize: r.data.guardPages * PAGE };
}
