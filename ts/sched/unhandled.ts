/**
 * ts/sched/unhandled.ts - what happens to a task error nobody observed: the engines' unhandled-error policies.
 * Part of the scheduler (ts/scheduler.ts says how the parts fit). @internal
 */
import { UnhandledPolicy, UnhandledSchema } from '../config';
import { KorutinError } from '../errors';
import { describeValue } from '../format';
import type { Engine } from '../engine';
import { S } from './binding';
import { Task } from './task';

const policies = new WeakMap<Engine, UnhandledPolicy>();

/** Sets an engine's policy for unhandled task errors. @internal */
export function setUnhandledPolicy(engine: Engine, policy: UnhandledPolicy): void {
  const r = UnhandledSchema.safeParse(policy);
  if (!r.success) {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `unhandled must be 'throw', 'warn', 'ignore' or a function (error, task) => void`);
  }
  policies.set(engine, policy);
}

function policyOf(engine: Engine): UnhandledPolicy {
  const p = policies.get(engine);
  if (p) return p;
  return engine.config.unhandled;
}

/** What the finalization registry keeps of a task (never the Task itself). @internal */
export interface TaskFin {
  h: number;
  id: number;
  name: string;
  engine: Engine;
  failed: boolean;
  error: unknown;
  observed: boolean;
  reported: boolean;
}

/** @internal */
export function reportUnhandled(fin: TaskFin): void {
  if (fin.reported || fin.observed) return;
  fin.reported = true;
  const policy = policyOf(fin.engine);
  const err = fin.error;
  const who = { id: fin.id, name: fin.name };
  if (policy === 'ignore') return;
  if (policy === 'warn') {
    const text = describeValue(err, true);
    process.emitWarning(`unhandled error in task#${fin.id} (${fin.name}): ${text}`, {
      type: 'KorutinWarning',
      code: 'KORUTIN_UNHANDLED_TASK_ERROR',
    });
    return;
  }
  if (policy === 'throw') {
    // as Node's default for rejections: 'unhandledRejection' listeners get
    // it (with a promise of the task's outcome); without one it is thrown
    if (process.listenerCount('unhandledRejection') > 0) {
      const outcome = Promise.reject(err);
      outcome.catch(() => undefined);
      process.emit('unhandledRejection', err, outcome);
      return;
    }
    process.nextTick(() => {
      throw err;
    });
    return;
  }
  try {
    policy(err, who);
  } catch (e) {
    process.nextTick(() => {
      throw e;
    });
  }
}

/**
 * A failed task nobody joins, awaits or detaches by the time the event loop
 * has gone round once more (a setImmediate after the failure, so after the
 * microtasks and the rest of this turn) is reported: an error is never lost
 * just because no garbage collection came.
 * @internal
 */
export function reportLater(fin: TaskFin): void {
  setImmediate(() => {
    if (!fin.observed) reportUnhandled(fin);
  });
}

/** Something a task holds (a Mutex) and gives up when the task ends. @internal */
export interface Holdable {
  ownerEnded(t: Task<any>): void;
}

/** @internal */
export const taskRegistry = new FinalizationRegistry<TaskFin>((fin) => {
  S.release(fin.h);
  if (fin.failed) reportUnhandled(fin);
});
