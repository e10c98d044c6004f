/**
 * Errors thrown by the native addon are plain `Error`s with a `code`
 * property; at the TypeScript boundary they become {@link KorutinError}s
 * (same code and message, the original as `cause`), so that
 * `instanceof KorutinError` holds for every error korutin throws.
 */
import { ErrorCode, KorutinError } from './errors';

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'ERR_NOT_IN_COROUTINE', 'ERR_COROUTINE_DONE', 'ERR_ALREADY_RUNNING', 'ERR_BACKEND_UNAVAILABLE',
  'ERR_INVALID_CONFIG', 'ERR_INVALID_ARGUMENT', 'ERR_TIMEOUT', 'ERR_CANCELLED', 'ERR_CHANNEL_CLOSED',
  'ERR_OUT_OF_MEMORY', 'ERR_ASYNC_CONTEXT', 'ERR_FUTURE_UNRESOLVED', 'ERR_FUTURE_RESOLVED', 'ERR_NOT_SUSPENDED',
  'ERR_DEADLOCK', 'ERR_OWNER_DEAD', 'ERR_JOINED_CANCELLED', 'ERR_UNWIND_UNSAFE',
]);

/** `e` as a KorutinError when it is a coded native error; anything else as it is. */
export function fromNative(e: unknown): unknown {
  try {
    if (e instanceof KorutinError || !(e instanceof Error)) return e;
    const code: unknown = (e as { code?: unknown }).code;
    if (typeof code !== 'string' || !CODES.has(code)) return e;
    const k = new KorutinError(code as ErrorCode, e.message, { cause: e });
    const frames = typeof e.stack === 'string' ? e.stack.split('\n').slice(1) : [];
    if (frames.length > 0) k.stack = [`KorutinError: ${e.message}`, ...frames].join('\n');
    return k;
  } catch {
    return e; // an exotic value: never ours
  }
}

/** Runs a native call; its coded errors come out as KorutinErrors. */
export function nativeCall<R>(call: () => R): R {
  try {
    return call();
  } catch (e) {
    throw fromNative(e);
  }
}
