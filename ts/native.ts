/**
 * The native addon, typed. Everything that crosses into C++ goes through
 * this module.
 */
import * as fs from 'fs';
import * as path from 'path';
import { setFlagsFromString } from 'v8';
import { KorutinError } from './errors';

/** One backend compiled into (or missing from) the addon. @internal */
export interface NativeBackend {
  name: string;
  available: boolean;
  reason: string | null;
  ownThread: boolean;
}

/** What the V8 bridge found out about this runtime at load time. */
export interface BridgeReport {
  ok: boolean;
  reason: string | null;
  threadIdOffset: number;
  stackStartOffset: number;
  threadIdFrom: string;
  stackStartFrom: string;
  /** The isolate's stack-size field (V8 13.6+, swapped on every switch), or -1. */
  stackSizeOffset: number;
  minStack: number;
  /** The native context's Array.prototype.join stack slot (see engine/node/v8bridge/join_stack.h), or -1. */
  joinStackSlot: number;
  /** Why it was not found, or null. */
  joinStackReason: string | null;
}

/** A native coroutine whose body is a JS function (see engine/node/binding.cc). @internal */
export interface NativeCoroutine {
  /** Its number, which the switch functions (and status()) take. */
  readonly no: number;
}

/**
 * The addon (engine/node/binding.cc). Each function is named as the C
 * function it wraps, without its prefix (`stack_pool_limit` is
 * ko_stack_pool_limit); every error it throws is a {@link KorutinError}.
 * @internal
 */
export interface NativeBinding {
  backends(): NativeBackend[];
  bridge(): BridgeReport;
  /** The class of the errors it throws: set once, at load. */
  set_error_class(klass: typeof KorutinError): void;
  /** Runs coroutine `no` until it yields or returns. */
  resume(no: number): void;
  /**
   * Suspends the running coroutine until it is resumed again. Throws
   * ERR_UNSAFE_YIELD, without suspending, where it may not suspend (see
   * suspend_refusal()).
   */
  yield(): void;
  /**
   * Why the running coroutine may not suspend now (an Array.prototype.join
   * it began is under way: V8's join stack is per context, not per stack;
   * or vm code with a watchdog), as the ERR_UNSAFE_YIELD error to throw; or
   * undefined when it may.
   */
  suspend_refusal(): KorutinError | undefined;
  /** vm code with a watchdog begins (+1) or ends (-1) on the running coroutine's stack. */
  vm_watch(delta: number): void;
  /** The state of coroutine `no` (made by create()): a KO_STATE_MAP value, or K.JS_CREATED before its first resume. */
  status(no: number): number;
  /** Where the switch functions show which coroutine runs now (K.VIEW_*): an Int32Array of K.VIEW_SIZE. */
  set_view(view: Int32Array): void;
  in_coroutine(): boolean;
  stack_pool_limit(max: number): number;
  /** Coroutines of this thread that exist natively (created, not yet finished or destroyed). */
  live_coroutines(): number;
  /** Whether a coroutine can move its async contexts (see engine/node/v8bridge/async_stack.h). */
  async_stack(): { ok: boolean; reason: string | null };
  /** Pops the top async context, which must be `asyncId`. */
  async_pop(asyncId: number): void;
  /** Inside a coroutine: pushes back contexts (`ids` holds id, trigger pairs, outermost first). */
  async_restore(ids: number[], resources: object[]): void;
  /**
   * Creates a coroutine owned by the addon's table (no object): `backend` is
   * its index in backends(). Served from the pool of finished coroutines
   * (their stacks and V8 threads) when one of the same backend and sizes
   * waits there. Returns its number. While it has not started, `holder` is
   * held weakly: when it is collected, the coroutine is freed. With
   * `asyncId`, `triggerId` and `resource`, its base async context (as set_base()).
   */
  create(backend: number, stackSize: number, guardSize: number, body: () => void, holder?: object,
    asyncId?: number, triggerId?: number, resource?: object): number;
  /** resume(no) in the coroutine's base async context (create()'s asyncId and resource, or set_base's), entered natively. */
  resume_scoped(no: number): void;
  /** Frees coroutine `no` (made by create(), not started, or finished); it may go back to the pool. */
  destroy(no: number): void;
  /** The async context a chain (the scheduler's pass, a hand-off) runs coroutine `no` (made by create()) in. */
  set_base(no: number, asyncId: number, triggerId: number, resource: object): void;
  /** Frees pooled coroutines until at most `keep` (default 0) wait; returns how many were freed. */
  trim_pool(keep?: number): number;
  /** The parts of one switch on backend #`backend`, each timed alone over n repetitions, in ns per switch (for the bench). */
  switch_costs(backend: number, n: number): { bridgeNs: number; v8Ns: number; slotsNs: number; backendNs: number };
  /** The pool's idle tick: empties it if nothing was taken since the last tick; returns how many still wait. */
  pool_tick(): number;
  /** The pool of finished coroutines: how many wait, its limit, how many create() made and reused. */
  pool_info(): { idle: number; cap: number; fresh: number; reused: number };
  /** The Node version the addon was built for (it loads into no other ABI). */
  readonly built_for: string;
  Coroutine: new (backend: string, stackSize: number, guardSize: number, body: () => void) => NativeCoroutine;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const load: (dir: string) => NativeBinding = require('node-gyp-build');

/** The package's root: where build/ and prebuilds/ are. */
const ROOT = path.join(__dirname, '..', '..');

function loadAddon(): NativeBinding {
  try {
    const addon = load(ROOT);
    addon.set_error_class(KorutinError);
    return addon;
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    const message = String(err.message);
    if (err.code === 'ERR_BACKEND_UNAVAILABLE') throw new KorutinError('ERR_BACKEND_UNAVAILABLE', message);
    throw new KorutinError(
      'ERR_BACKEND_UNAVAILABLE',
      `korutin's native addon could not be loaded for Node ${process.version} (${process.platform}-${process.arch}): ` +
        `${message.trim().split('\n')[0]}. Reinstall korutin with this Node (npm rebuild korutin); ` +
        'where no prebuild matches, that builds from source and names any missing tool',
      { cause: e },
    );
  }
}

/** The addon for this runtime (built by `npm install`, or a prebuild). @internal */
export const native: NativeBinding = loadAddon();

/**
 * Where the native program `name` (korutin-selfcheck, korutin-bench) is:
 * the source build's, else the prebuilt one for this platform and CPU, else
 * null.
 */
export function nativeProgram(name: 'korutin-selfcheck' | 'korutin-bench'): string | null {
  const candidates = [
    path.join(ROOT, 'build', 'Release', name),
    path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`, name),
  ];
  return candidates.find((f) => fs.existsSync(f)) ?? null;
}

/**
 * V8 aborts ("archived threads in combination with wasm not supported") when
 * Wasm code GC runs while a V8 thread is archived, which every suspended
 * coroutine is. Turning Wasm code GC off avoids it (Node 20-26 allow flags
 * after start-up). KORUTIN_WASM_CODE_GC=keep leaves it on, to prove the point.
 */
if (process.env.KORUTIN_WASM_CODE_GC !== 'keep') setFlagsFromString('--no-wasm-code-gc');
