/**
 * Errors thrown by korutin. Each has a stable `code`; the message says what
 * to do about it.
 */
import { describeValue } from './format';
import type { NativeErrorCode } from './vocab';

/**
 * Every error code korutin throws: those of the native engine (one per
 * row of korutin.h's KO_ERRNO_MAP, mirrored into ts/vocab.ts) and those
 * only the TypeScript layer throws.
 */
export type ErrorCode =
  | NativeErrorCode
  | 'ERR_INVALID_CONFIG'
  | 'ERR_ASYNC_CONTEXT'
  | 'ERR_FUTURE_UNRESOLVED'
  | 'ERR_FUTURE_RESOLVED'
  | 'ERR_NOT_SUSPENDED'
  | 'ERR_DEADLOCK'
  | 'ERR_OWNER_DEAD'
  | 'ERR_JOINED_CANCELLED'
  | 'ERR_UNWIND_UNSAFE'
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_UNEXPECTED_EOF'
  | 'ERR_UNSAFE_YIELD';

/** The base class of korutin's errors. */
export class KorutinError extends Error {
  /** A stable code, for programs to test. */
  readonly code: ErrorCode;
  /**
   * What to do about it, when the message alone does not say (errors that
   * keep another library's exact message, such as `korutin/fibers`', carry
   * korutin's advice here).
   */
  readonly hint?: string;

  /**
   * @param options.hint see {@link KorutinError.hint}.
   * @param options.name the error's `name` instead of `'KorutinError'`
   * (`korutin/fibers` gives node-fibers' errors node-fibers' `'Error'`, so
   * that their stacks and `String(error)` read as they did).
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; hint?: string; name?: string }) {
    super(message, options);
    this.code = code;
    this.name = options?.name ?? 'KorutinError';
    if (options?.hint !== undefined) this.hint = options.hint;
  }
}

/**
 * A `TypeError` (or another built-in error class) with korutin's stable
 * `code` and an optional `hint`, for APIs whose callers expect the built-in
 * class (node-fibers threw `TypeError`s). @internal
 */
export function codedError<E extends Error>(
  Kind: new (message: string) => E,
  code: ErrorCode,
  message: string,
  hint?: string,
): E & { code: ErrorCode; hint?: string } {
  const e = new Kind(message) as E & { code: ErrorCode; hint?: string };
  e.code = code;
  if (hint !== undefined) e.hint = hint;
  return e;
}

/** Thrown at a task's suspension point when the task is cancelled. */
export class CancelledError extends KorutinError {
  /** What `cancel(reason)` was given. */
  readonly reason: unknown;

  constructor(reason?: unknown) {
    super('ERR_CANCELLED', `the task was cancelled${reason === undefined ? '' : `: ${describeValue(reason)}`}`);
    this.name = 'CancelledError';
    this.reason = reason;
    cancelledErrors.add(this);
  }
}

const cancelledErrors = new WeakSet<object>();

/**
 * Whether `v` is a {@link CancelledError}, without running any of its code:
 * `instanceof` calls a Proxy's getPrototypeOf trap, which may throw (a
 * revoked Proxy always does). @internal
 */
export function isCancelledError(v: unknown): v is CancelledError {
  return typeof v === 'object' && v !== null && cancelledErrors.has(v);
}

/** Shorthand for `new KorutinError(code, message)`. @internal */
export function fail(code: ErrorCode, message: string): never {
  throw new KorutinError(code, message);
}
