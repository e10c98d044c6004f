/**
 * Synchronisation between tasks: Mutex, Cond (lthread's condition, with an
 * optional mutex), Semaphore and WaitGroup. Their queues live in the
 * scheduler core (C), shared with the C API; every queue is FIFO and a
 * released mutex or permit goes straight to the first waiter.
 */
import { KorutinError } from './errors';
import { describeGiven } from './format';
import { clock, io, S, timeoutUs } from './sched/binding';
import { kick, self, suspend, waitError } from './sched/driver';
import { Task } from './sched/task';
import { K } from './vocab';

const registry = new FinalizationRegistry<number>((h) => {
  S.obj_free(h);
});

function made(h: number, what: string): number {
  if (h <= 0) throw new KorutinError('ERR_OUT_OF_MEMORY', `cannot create a ${what}: out of memory`);
  return h;
}

/** Runs a blocking core call for the current task and returns its final status. */
function blockingCall(t: Task<any>, st: number): number {
  return st === K.BLOCK ? suspend(t) : st;
}

/**
 * A mutual-exclusion lock for tasks. Waiters queue in order; only the task
 * holding the lock may unlock it.
 */
export class Mutex {
  /** The `#N` of `'lock mutex#N'`. */
  readonly id: number;
  /** @internal */
  readonly h: number;
  /** @internal the task that ended holding it, until the next owner is told */
  deadOwner: { id: number; name: string } | null = null;

  constructor() {
    this.h = made(S.mutex_new(), 'mutex');
    this.id = io[K.IO_SERIAL];
    registry.register(this, this.h);
  }

  /**
   * Takes the lock, waiting (this task only) while another task holds it.
   * Throws `ERR_TIMEOUT` when the timeout runs out, `ERR_INVALID_ARGUMENT`
   * if this task already holds it. When the task that held it last ended
   * without unlocking it, throws `ERR_OWNER_DEAD` *with the lock taken*
   * (as a robust mutex's EOWNERDEAD): repair what it protects, then unlock.
   */
  lock(timeoutMs?: number): void {
    const t = self('Mutex.lock()');
    const timeout = timeoutUs(timeoutMs, 'lock()');
    const st = blockingCall(t, S.mutex_lock(t.h, this.h, timeout < 0 ? 0 : clock(), timeout));
    if (st === K.EBUSY) throw new KorutinError('ERR_INVALID_ARGUMENT', `mutex#${this.id} is already held by this task`);
    if (st !== K.OK) throw waitError(t, st, `lock mutex#${this.id}`);
    this.took(t);
  }

  /** Takes the lock if it is free (`ERR_OWNER_DEAD` as for lock(), with the lock taken). */
  tryLock(): boolean {
    const t = self('Mutex.tryLock()');
    const st = S.mutex_trylock(t.h, this.h);
    if (st === K.OK) {
      this.took(t);
      return true;
    }
    if (st === K.EBUSY) throw new KorutinError('ERR_INVALID_ARGUMENT', `mutex#${this.id} is already held by this task`);
    return false;
  }

  /** Releases the lock (the calling task must hold it) to the first waiter. */
  unlock(): void {
    const t = self('Mutex.unlock()');
    const st = S.mutex_unlock(t.h, this.h);
    if (st !== K.OK) throw new KorutinError('ERR_INVALID_ARGUMENT', `mutex#${this.id} is not held by this task`);
    t.held?.delete(this);
  }

  /** True while some task holds it. */
  get locked(): boolean {
    return S.mutex_info(this.h) > 0;
  }

  /** Runs fn with the lock held (on `ERR_OWNER_DEAD`, unlocks and rethrows without running fn). */
  withLock<R>(fn: () => R, timeoutMs?: number): R {
    try {
      this.lock(timeoutMs);
    } catch (e) {
      if (e instanceof KorutinError && e.code === 'ERR_OWNER_DEAD') this.unlock();
      throw e;
    }
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  /** @internal `t` holds it now: it is told if `t` ends; the first owner after a dead one hears of it. */
  took(t: Task<any>, tell = true): void {
    (t.held ??= new Set()).add(this);
    const dead = this.deadOwner;
    if (dead === null || !tell) return;
    this.deadOwner = null;
    throw new KorutinError(
      'ERR_OWNER_DEAD',
      `mutex#${this.id} was held by task#${dead.id} (${dead.name}), which ended without unlocking it; this task holds it now: make the state it protects consistent, then unlock() it`,
    );
  }

  /** @internal the task holding it ended: release it to the first waiter, who is told. */
  ownerEnded(t: Task<any>): void {
    if (S.mutex_unlock(t.h, this.h) !== K.OK) return; // it did not hold it (a cond wait gave it up)
    this.deadOwner = { id: t.id, name: t.name };
    kick();
  }
}

/**
 * A condition variable (lthread's cond): `wait` until `signal`ed (or the
 * timeout), `signal` wakes the first waiter, `broadcast` all. Made with a
 * Mutex, `wait` releases it while waiting and holds it again when it
 * returns, whatever the outcome.
 */
export class Cond {
  /** The `#N` of `'wait cond#N'`. */
  readonly id: number;
  /** The mutex `wait` releases and takes back, if any. */
  readonly mutex: Mutex | null;
  /** @internal */
  readonly h: number;

  constructor(mutex?: Mutex) {
    if (mutex !== undefined && !(mutex instanceof Mutex)) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', 'new Cond(mutex): mutex must be a Mutex');
    }
    this.h = made(S.cond_new(), 'cond');
    this.id = io[K.IO_SERIAL];
    this.mutex = mutex ?? null;
    registry.register(this, this.h);
  }

  /**
   * Waits for a signal: true when signalled, false when the timeout ran
   * out (lthread's cond returns -2 then).
   */
  wait(timeoutMs?: number): boolean {
    const t = self('Cond.wait()');
    const timeout = timeoutUs(timeoutMs, 'wait()');
    const st = blockingCall(t, S.cond_wait(t.h, this.h, this.mutex ? this.mutex.h : 0, timeout < 0 ? 0 : clock(), timeout));
    // held again, whatever the outcome; a cancel is not masked by ERR_OWNER_DEAD
    if (this.mutex && st !== K.EINVAL) this.mutex.took(t, st !== K.ECANCELED);
    if (st === K.OK) return true;
    if (st === K.ETIMEDOUT) return false;
    if (st === K.EINVAL && this.mutex) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `cond#${this.id}.wait(): this task must hold mutex#${this.mutex.id}`);
    }
    throw waitError(t, st, `wait cond#${this.id}`);
  }

  /** Wakes the first waiter; returns how many were woken (0 or 1). Works anywhere. */
  signal(): number {
    const n = S.cond_signal(this.h);
    kick();
    return n;
  }

  /** Wakes every waiter; returns how many. Works anywhere. */
  broadcast(): number {
    const n = S.cond_broadcast(this.h);
    kick();
    return n;
  }
}

/** A counting semaphore: `acquire` takes a permit (waiting for one), `release` gives permits back. */
export class Semaphore {
  /** The `#N` of `'acquire semaphore#N'`. */
  readonly id: number;
  /** @internal */
  readonly h: number;

  constructor(permits: number) {
    if (!Number.isInteger(permits) || permits < 0) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `a semaphore needs an integer number of permits >= 0, got ${describeGiven(permits)}`);
    }
    this.h = made(S.sem_new(permits), 'semaphore');
    this.id = io[K.IO_SERIAL];
    registry.register(this, this.h);
  }

  /** Takes a permit, waiting (this task only) for one. `ERR_TIMEOUT` when the timeout runs out. */
  acquire(timeoutMs?: number): void {
    const t = self('Semaphore.acquire()');
    const timeout = timeoutUs(timeoutMs, 'acquire()');
    const st = blockingCall(t, S.sem_acquire(t.h, this.h, timeout < 0 ? 0 : clock(), timeout));
    if (st !== K.OK) throw waitError(t, st, `acquire semaphore#${this.id}`);
  }

  /** Takes a permit if one is free. Works anywhere. */
  tryAcquire(): boolean {
    return S.sem_try_acquire(this.h) === K.OK;
  }

  /** Gives n permits back (to waiters first). Works anywhere. */
  release(n = 1): void {
    if (!Number.isInteger(n) || n < 1) throw new KorutinError('ERR_INVALID_ARGUMENT', `release(n): n must be an integer >= 1`);
    S.sem_release(this.h, n);
    kick();
  }

  /** Free permits now. */
  get available(): number {
    return S.sem_count(this.h);
  }
}

/** Go's WaitGroup: `add(n)` before starting work, `done()` after each, `wait()` until the count is 0. */
export class WaitGroup {
  /** The `#N` of `'wait waitgroup#N'`. */
  readonly id: number;
  /** @internal */
  readonly h: number;

  constructor() {
    this.h = made(S.wg_new(), 'wait group');
    this.id = io[K.IO_SERIAL];
    registry.register(this, this.h);
  }

  /** Adds to the counter (may be negative); throws if it would go below 0. Works anywhere. */
  add(n = 1): void {
    if (!Number.isInteger(n)) throw new KorutinError('ERR_INVALID_ARGUMENT', `add(n): n must be an integer`);
    if (S.wg_add(this.h, n) !== K.OK) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `waitgroup#${this.id}: the counter cannot go below 0`);
    }
    kick();
  }

  /** `add(-1)`. */
  done(): void {
    this.add(-1);
  }

  /** Waits (this task only) until the counter is 0. `ERR_TIMEOUT` when the timeout runs out. */
  wait(timeoutMs?: number): void {
    const t = self('WaitGroup.wait()');
    const timeout = timeoutUs(timeoutMs, 'wait()');
    const st = blockingCall(t, S.wg_wait(t.h, this.h, timeout < 0 ? 0 : clock(), timeout));
    if (st !== K.OK) throw waitError(t, st, `wait waitgroup#${this.id}`);
  }

  /** The counter now. */
  get count(): number {
    return S.wg_count(this.h);
  }
}
