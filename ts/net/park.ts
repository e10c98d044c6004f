/**
 * Where a task waits for a socket event: the socket's callbacks wake it.
 * Built on the scheduler's external waits (the same core calls as
 * `ko.await`, without a Promise per wait), so timeouts and cancel come from
 * the core: a timeout throws `ERR_TIMEOUT`, a cancel `CancelledError`.
 * @internal
 */
import { KorutinError } from '../errors';
import { clock, io, S, timeoutUs } from '../sched/binding';
import { self, kick, suspend, waitError } from '../sched/driver';
import { Task } from '../sched/task';
import { K } from '../vocab';

interface Parked {
  t: Task<any>;
  seq: number;
}

/** Tasks waiting for one kind of event of one object (readable, drained, accepted...). */
export class Parking {
  // the usual case, one waiter, without allocating; more go to `more`
  private t: Task<any> | null = null;
  private seq = 0;
  private more: Parked[] | null = null;

  /** @param label what `ko.tasks()` shows for a task waiting here, e.g. 'read 127.0.0.1:80' */
  constructor(public label: string) {}

  /** How many tasks wait here. */
  get size(): number {
    return (this.t ? 1 : 0) + (this.more ? this.more.length : 0);
  }

  /**
   * Suspends the calling task until {@link wakeAll} (or the deadline, or a
   * cancel). `deadlineUs` is on the scheduler's clock; -1: none.
   */
  park(what: string, deadlineUs: number): void {
    const t = self(what);
    let timeout = -1;
    let now = 0;
    if (deadlineUs >= 0) {
      now = clock();
      timeout = Math.max(0, deadlineUs - now);
    }
    let st = S.block_external(t.h, now, timeout, K.EXT_AWAIT, 0);
    if (st === K.BLOCK) {
      const seq = io[K.IO_SEQ];
      let me: Parked | null = null;
      if (this.t === null) {
        this.t = t;
        this.seq = seq;
      } else {
        me = { t, seq };
        (this.more ??= []).push(me);
      }
      t.waitLabel = this.label;
      try {
        st = suspend(t);
      } finally {
        t.waitLabel = null;
        if (me === null) {
          if (this.t === t && this.seq === seq) this.t = null;
        } else if (this.more) {
          const i = this.more.indexOf(me);
          if (i >= 0) this.more.splice(i, 1);
        }
      }
    }
    if (st !== K.OK) throw waitError(t, st, what);
  }

  /** Wakes every waiting task (each checks again what it waits for). */
  wakeAll(): void {
    const t = this.t;
    const more = this.more;
    if (t === null && (more === null || more.length === 0)) return;
    this.t = null;
    this.more = null;
    if (t !== null) S.wake_external(t.h, this.seq, K.OK);
    if (more !== null) for (const p of more) S.wake_external(p.t.h, p.seq, K.OK);
    kick();
  }
}

/** A timeout in ms to a deadline on the scheduler's clock (-1: none); validates it. */
export function deadline(timeoutMs: number | undefined, what: string): number {
  const us = timeoutUs(timeoutMs, what);
  return us < 0 ? -1 : clock() + us;
}

/** Validates a port number. */
export function checkPort(port: unknown, what: string): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `${what}: the port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  return port;
}
