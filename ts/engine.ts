/**
 * The engine: a validated configuration bound to one backend, and the
 * coroutine operations that use it.
 */
import { requireBackend } from './backends';
import { BackendName, EngineConfig, parseConfig, ResolvedConfig } from './config';
import { Coroutine, CoroutineOptions, currentCoroutine, yieldValue } from './coroutine';
import { native } from './native';

/** Coroutines on one backend with one stack configuration. */
export class Engine {
  /** The backend in use (resolved when `'auto'` was asked for). */
  readonly backend: BackendName;
  /** The validated configuration. */
  readonly config: Readonly<ResolvedConfig>;

  constructor(config: EngineConfig = {}) {
    this.config = Object.freeze(parseConfig(config));
    this.backend = requireBackend(this.config.backend);
    native.setPoolLimit(this.config.poolSize);
  }

  /**
   * Creates a suspended coroutine running `fn`. Its first `resume(v)` calls
   * `fn(v)`; inside, `engine.yield()` suspends it at any call depth.
   */
  create<TIn = any, TYield = any, TReturn = any>(
    fn: (arg: TIn) => TReturn,
    options?: CoroutineOptions,
  ): Coroutine<TIn, TYield, TReturn> {
    return new Coroutine<TIn, TYield, TReturn>(
      fn,
      { backend: this.backend, stackSize: this.config.stackSize, guardSize: this.config.guardSize },
      options,
    );
  }

  /** Suspends the running coroutine with `value`; returns what the next `resume()` passes. */
  yield<TIn = any>(value?: unknown): TIn {
    return yieldValue<TIn>(value);
  }

  /** The innermost running coroutine, or undefined outside any. */
  currentCoroutine(): Coroutine | undefined {
    return currentCoroutine();
  }

  /** True when called from inside a coroutine. */
  inCoroutine(): boolean {
    return native.inCoroutine();
  }
}

/** Creates an engine; throws ERR_INVALID_CONFIG or ERR_BACKEND_UNAVAILABLE. */
export function createEngine(config?: EngineConfig): Engine {
  return new Engine(config);
}
