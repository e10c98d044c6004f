/**
 * Errors thrown by korutin. Each has a stable `code`; the message says what
 * to do about it.
 */
import { describeValue } from './format';

/** Every error code korutin throws. */
export type ErrorCode =
  | 'ERR_NOT_IN_COROUTINE'
  | 'ERR_COROUTINE_DONE'
  | 'ERR_ALREADY_RUNNING'
  | 'ERR_BACKEND_UNAVAILABLE'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_TIMEOUT'
  | 'ERR_CANCELLED'
  | 'ERR_CHANNEL_CLOSED'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_ASYNC_CONTEXT'
  | 'ERR_FUTURE_UNRESOLVED'
  | 'ERR_FUTURE_RESOLVED'
  | 'ERR_NOT_SUSPENDED'
  | 'ERR_DEADLOCK'
  | 'ERR_OWNER_DEAD'
  | 'ERR_JOINED_CANCELLED'
  | 'ERR_UNWIND_UNSAFE';

/** The base class of korutin's errors. */
export class KorutinError extends Error {
  /** A stable code, for programs to test. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'KorutinError';
  }
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

/** Shorthand for `new KorutinError(code, message)`. */
export function fail(code: ErrorCode, message: string): never {
  throw new KorutinError(code, message);
}
