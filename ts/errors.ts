/**
 * Errors thrown by korutin. Each has a stable `code`; the message says what
 * to do about it.
 */

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
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_UNEXPECTED_EOF';

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
    super('ERR_CANCELLED', `the task was cancelled${reason === undefined ? '' : `: ${String(reason)}`}`);
    this.name = 'CancelledError';
    this.reason = reason;
  }
}

/** Shorthand for `new KorutinError(code, message)`. */
export function fail(code: ErrorCode, message: string): never {
  throw new KorutinError(code, message);
}
