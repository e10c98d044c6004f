/**
 * Channels between tasks, Go style, and select. The queues, the buffer
 * and the choice among ready cases live in the scheduler core (C); the
 * values themselves stay in JavaScript (the core carries slot numbers).
 */
import { KorutinError } from './errors';
import { describeGiven } from './format';
import { caseRoom, clock, io, S, slotPut, slotTake, timeoutUs } from './sched/binding';
import { kick, proxyWait, self, suspend, waitError, wokeFired, wokeValue } from './sched/driver';
import { AfterCase } from './sched/ops';
import { Task } from './sched/task';
import { K } from './vocab';

const registry = new FinalizationRegistry<number>((h) => {
  // nobody can reach the channel any more: drop what it still buffers
  while (S.chan_try_recv(h) === K.OK) slotTake(io[K.IO_VALUE]);
  S.obj_free(h);
});

const END: unique symbol = Symbol('end');

/** What {@link Channel.tryRecv} returns. */
export type TryRecvResult<T> = { ok: true; value: T } | { ok: false; closed: boolean };

/** A case of {@link select}: receive from a channel. */
export interface RecvCase<T = unknown> {
  readonly kind: 'recv';
  readonly channel: Channel<T>;
}

/** A case of {@link select}: send `value` on a channel. */
export interface SendCase<T = unknown> {
  readonly kind: 'send';
  readonly channel: Channel<T>;
  readonly value: T;
}

/** Any case of {@link select}. */
export type SelectCase = RecvCase<any> | SendCase<any> | AfterCase;

/** Which case of a {@link select} fired. */
export interface SelectResult {
  /** Its index in the array given to select. */
  index: number;
  /** The case itself. */
  case: SelectCase;
  /** What a recv case received (undefined for send and after cases, and at the end of a channel). */
  value: unknown;
  /** False when a recv case found its channel closed and drained. */
  ok: boolean;
}

/**
 * A channel of values of type T. Capacity 0 (the default) is a rendezvous:
 * a send waits for a receiver. Capacity n buffers n values.
 *
 * Inside a task, `send`/`recv` block only that task; `for (const v of ch)`
 * receives until the channel is closed and drained. Outside tasks, use
 * `sendAsync`/`recvAsync` (or `for await`), or the non-blocking
 * `trySend`/`tryRecv`.
 */
export class Channel<T = unknown> implements Iterable<T>, AsyncIterable<T> {
  /** Unique in this thread: the `#N` of `'recv channel#N'`. */
  readonly id: number;
  /** How many values it buffers. */
  readonly capacity: number;
  /** @internal */
  readonly h: number;

  constructor(capacity = 0) {
    if (!Number.isInteger(capacity) || capacity < 0 || capacity > 0x7fffffff) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `a channel's capacity must be an integer >= 0, got ${describeGiven(capacity)}`);
    }
    const h = S.chan_new(capacity);
    if (h <= 0) throw new KorutinError('ERR_OUT_OF_MEMORY', `cannot create a channel of capacity ${capacity}`);
    this.h = h;
    this.id = io[K.IO_SERIAL];
    this.capacity = capacity;
    registry.register(this, h);
  }

  /** Values buffered now. */
  get length(): number {
    return S.chan_info(this.h);
  }

  /** True once `close()` was called (buffered values may still be received). */
  get closed(): boolean {
    S.chan_info(this.h);
    return io[K.IO_AUX2] !== 0;
  }

  /**
   * Sends a value, waiting (this task only) for a receiver or for room.
   * Throws `ERR_CHANNEL_CLOSED` if the channel is or gets closed, and
   * `ERR_TIMEOUT` when the timeout runs out.
   */
  send(value: T, timeoutMs?: number): void {
    const t = self('Channel.send()');
    const timeout = timeoutUs(timeoutMs, 'send()');
    const slot = slotPut(value);
    let st = S.chan_send(t.h, this.h, slot, timeout < 0 ? 0 : clock(), timeout);
    if (st === K.BLOCK) st = suspend(t);
    if (st !== K.OK) {
      slotTake(slot);
      throw waitError(t, st, `send on channel#${this.id}`);
    }
  }

  /**
   * Receives a value, waiting (this task only) for one. Once the channel is
   * closed and drained, throws `ERR_CHANNEL_CLOSED` (iteration ends
   * instead). `ERR_TIMEOUT` when the timeout runs out.
   */
  recv(timeoutMs?: number): T {
    const v = this.recvOrEnd(timeoutMs);
    if (v === END) throw new KorutinError('ERR_CHANNEL_CLOSED', `recv on channel#${this.id}: the channel is closed and drained`);
    return v;
  }

  private recvOrEnd(timeoutMs?: number): T | typeof END {
    const t = self('Channel.recv()');
    const timeout = timeoutUs(timeoutMs, 'recv()');
    let st = S.chan_recv(t.h, this.h, timeout < 0 ? 0 : clock(), timeout);
    let slot: number;
    if (st === K.BLOCK) {
      st = suspend(t);
      slot = wokeValue(t);
    } else {
      slot = io[K.IO_VALUE];
    }
    if (st === K.OK) return slotTake(slot) as T;
    if (st === K.ECLOSED) return END;
    throw waitError(t, st, `recv on channel#${this.id}`);
  }

  /** Sends without waiting: false when it would have to wait. Works anywhere. */
  trySend(value: T): boolean {
    const slot = slotPut(value);
    const st = S.chan_try_send(this.h, slot);
    if (st === K.OK) {
      kick();
      return true;
    }
    slotTake(slot);
    if (st === K.EAGAIN) return false;
    throw waitError(null, st, `trySend on channel#${this.id}`);
  }

  /** Receives without waiting. Works anywhere. */
  tryRecv(): TryRecvResult<T> {
    const st = S.chan_try_recv(this.h);
    if (st === K.OK) {
      const value = slotTake(io[K.IO_VALUE]) as T;
      kick();
      return { ok: true, value };
    }
    return { ok: false, closed: st === K.ECLOSED };
  }

  /**
   * Closes the channel: every waiting sender fails with
   * `ERR_CHANNEL_CLOSED`, receivers get what is buffered, then the end.
   * Closing twice throws `ERR_CHANNEL_CLOSED`. Works anywhere.
   */
  close(): void {
    const st = S.chan_close(this.h);
    kick();
    if (st !== K.OK) throw new KorutinError('ERR_CHANNEL_CLOSED', `channel#${this.id} is already closed`);
  }

  /** For plain async code: resolves once the value is sent. */
  sendAsync(value: T, timeoutMs?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timeout = timeoutUs(timeoutMs, 'sendAsync()');
      const slot = slotPut(value);
      proxyWait(
        (px) => S.chan_send(px, this.h, slot, timeout < 0 ? 0 : clock(), timeout),
        (st) => {
          if (st === K.OK) return resolve();
          slotTake(slot);
          reject(waitError(null, st, `sendAsync on channel#${this.id}`));
        },
      );
    });
  }

  /**
   * For plain async code: resolves with the next value; rejects with
   * `ERR_CHANNEL_CLOSED` once the channel is closed and drained.
   */
  recvAsync(timeoutMs?: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timeout = timeoutUs(timeoutMs, 'recvAsync()');
      proxyWait(
        (px) => S.chan_recv(px, this.h, timeout < 0 ? 0 : clock(), timeout),
        (st, _fired, value) => {
          if (st === K.OK) return resolve(slotTake(value) as T);
          reject(
            st === K.ECLOSED
              ? new KorutinError('ERR_CHANNEL_CLOSED', `recvAsync on channel#${this.id}: the channel is closed and drained`)
              : waitError(null, st, `recvAsync on channel#${this.id}`),
          );
        },
      );
    });
  }

  /** A select case receiving from this channel. */
  recvCase(): RecvCase<T> {
    return { kind: 'recv', channel: this };
  }

  /** A select case sending `value` on this channel. */
  sendCase(value: T): SendCase<T> {
    return { kind: 'send', channel: this, value };
  }

  /** Inside a task: receives until the channel is closed and drained. */
  [Symbol.iterator](): Iterator<T> {
    return {
      next: (): IteratorResult<T> => {
        const v = this.recvOrEnd();
        return v === END ? { done: true, value: undefined } : { done: false, value: v };
      },
    };
  }

  /** For plain async code: `for await (const v of ch)`. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: (): Promise<IteratorResult<T>> =>
        this.recvAsync().then(
          (value) => ({ done: false, value }),
          (e: unknown) => {
            if (e instanceof KorutinError && e.code === 'ERR_CHANNEL_CLOSED') return { done: true, value: undefined };
            throw e;
          },
        ),
    };
  }
}

/** Encodes the cases into the shared buffer; returns the send slots. */
function encode(cases: readonly SelectCase[]): number[] | null {
  const buf = caseRoom(cases.length);
  let slots: number[] | null = null;
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const o = 3 * i;
    if (c === null || typeof c !== 'object') {
      freeSlots(slots, -1);
      throw new KorutinError('ERR_INVALID_ARGUMENT', `select(): case ${i} is not a case (use ch.recvCase(), ch.sendCase(v), ko.after(ms))`);
    }
    if (c.kind === 'after') {
      buf[o] = K.OP_AFTER;
      buf[o + 1] = 0;
      buf[o + 2] = Math.round(c.ms * 1000);
    } else if ((c.kind === 'recv' || c.kind === 'send') && c.channel instanceof Channel) {
      buf[o] = c.kind === 'recv' ? K.OP_RECV : K.OP_SEND;
      buf[o + 1] = c.channel.h;
      if (c.kind === 'send') {
        if (!slots) slots = new Array<number>(cases.length).fill(-1);
        buf[o + 2] = slots[i] = slotPut(c.value);
      } else {
        buf[o + 2] = 0;
      }
    } else {
      freeSlots(slots, -1);
      throw new KorutinError('ERR_INVALID_ARGUMENT', `select(): case ${i} is not a case (use ch.recvCase(), ch.sendCase(v), ko.after(ms))`);
    }
  }
  return slots;
}

function freeSlots(slots: number[] | null, keep: number): void {
  if (!slots) return;
  for (let i = 0; i < slots.length; i++) if (slots[i] >= 0 && i !== keep) slotTake(slots[i]);
}

function decode(
  t: Task<any> | null,
  cases: readonly SelectCase[],
  slots: number[] | null,
  st: number,
  fired: number,
  value: number,
): SelectResult {
  // a send that fired handed its slot over; the others take theirs back
  freeSlots(slots, st === K.OK ? fired : -1);
  if (st === K.OK) {
    const c = cases[fired];
    return { index: fired, case: c, value: c.kind === 'recv' ? slotTake(value) : undefined, ok: true };
  }
  if (st === K.ECLOSED && fired >= 0 && cases[fired].kind === 'recv') {
    return { index: fired, case: cases[fired], value: undefined, ok: false };
  }
  throw waitError(t, st, 'select()');
}

/**
 * Inside a task: waits until one of the cases can proceed, performs it and
 * says which. When several are ready, one is picked at random (fairly).
 * A recv case on a closed, drained channel fires with `ok: false`; a send
 * case on a closed channel throws `ERR_CHANNEL_CLOSED`; an after case
 * fires once its time has passed.
 */
export function select(cases: readonly SelectCase[]): SelectResult {
  const t = self('select()');
  if (!Array.isArray(cases)) throw new KorutinError('ERR_INVALID_ARGUMENT', 'select() takes an array of cases');
  const slots = encode(cases);
  let st = S.select(t.h, cases.length, clock(), -1, 0);
  let fired: number;
  let value: number;
  if (st === K.BLOCK) {
    st = suspend(t);
    fired = wokeFired(t);
    value = wokeValue(t);
  } else {
    fired = io[K.IO_FIRED];
    value = io[K.IO_VALUE];
  }
  return decode(t, cases, slots, st, fired, value);
}

/**
 * Like {@link select} but never waits (Go's `default:`): undefined when no
 * case is ready. Works anywhere.
 */
export function trySelect(cases: readonly SelectCase[]): SelectResult | undefined {
  if (!Array.isArray(cases)) throw new KorutinError('ERR_INVALID_ARGUMENT', 'trySelect() takes an array of cases');
  const t = currentTaskOrNull();
  const slots = encode(cases);
  const st = S.select(t ? t.h : 0, cases.length, clock(), -1, 1);
  const fired = io[K.IO_FIRED];
  const value = io[K.IO_VALUE];
  kick();
  if (st === K.EAGAIN) {
    freeSlots(slots, -1);
    return undefined;
  }
  return decode(t, cases, slots, st, fired, value);
}

function currentTaskOrNull(): Task<any> | null {
  try {
    return self('trySelect()');
  } catch {
    return null;
  }
}

/** For plain async code: {@link select} as a Promise. */
export function selectAsync(cases: readonly SelectCase[]): Promise<SelectResult> {
  if (!Array.isArray(cases)) return Promise.reject(new KorutinError('ERR_INVALID_ARGUMENT', 'selectAsync() takes an array of cases'));
  return new Promise<SelectResult>((resolve, reject) => {
    const slots = encode(cases);
    proxyWait(
      (px) => S.select(px, cases.length, clock(), -1, 0),
      (st, fired, value) => {
        try {
          resolve(decode(null, cases, slots, st, fired, value));
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}
