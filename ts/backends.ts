/**
 * Which backends this binary has, which of them run JavaScript here, and
 * the choice behind `backend: 'auto'`.
 */
import { BACKENDS, BackendName } from './config';
import { KorutinError } from './errors';
import { native } from './native';
import { K } from './vocab';

/** A backend as seen from JavaScript. */
export interface BackendInfo {
  name: BackendName;
  /** Compiled in and able to run JavaScript bodies on this runtime. */
  available: boolean;
  /** Why not, when not available. */
  reason: string | null;
  /** Each coroutine runs on an OS thread of its own. */
  ownThread: boolean;
}

/** Every backend korutin knows, in order of speed. */
export function backends(): BackendInfo[] {
  const bridge = native.bridge();
  return native.backends().map((b) => ({
    name: b.name as BackendName,
    available: b.available && bridge.ok,
    reason: !b.available ? b.reason : bridge.ok ? null : `JavaScript bodies are not supported on this runtime: ${bridge.reason}`,
    ownThread: b.ownThread,
  }));
}

/** Runs a tiny JS coroutine on `name`: resume/yield values must round-trip. */
function quickProbe(name: BackendName): boolean {
  try {
    let seen = 0;
    const co = new native.Coroutine(name, 128 * 1024, 4096, () => {
      seen = 1;
      native.yield();
      seen = 2;
    });
    native.resume(co.no);
    const mid = seen;
    native.resume(co.no);
    return mid === 1 && seen === 2 && native.status(co.no) === K.DONE;
  } catch {
    return false;
  }
}

let autoChoice: BackendName | undefined;

/** The fastest backend that is available and passes a quick probe here. */
export function autoBackend(): BackendName {
  if (autoChoice) return autoChoice;
  const infos = backends();
  for (const name of BACKENDS) {
    const info = infos.find((b) => b.name === name);
    if (info?.available && quickProbe(name)) return (autoChoice = name);
  }
  const why = infos.map((b) => `${b.name}: ${b.reason ?? 'failed its probe'}`).join('; ');
  throw new KorutinError('ERR_BACKEND_UNAVAILABLE', `no korutin backend can run JavaScript here (${why})`);
}

/** Checks that `name` can be used; throws ERR_BACKEND_UNAVAILABLE with the reason if not. @internal */
export function requireBackend(name: BackendName | 'auto'): BackendName {
  if (name === 'auto') return autoBackend();
  const info = backends().find((b) => b.name === name);
  if (!info?.available) {
    throw new KorutinError(
      'ERR_BACKEND_UNAVAILABLE',
      `backend '${name}' is not available here: ${info?.reason ?? 'unknown backend'}; use backend: 'auto' or run \`npx korutin selfcheck\` to see what works`,
    );
  }
  return name;
}
