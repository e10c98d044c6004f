/**
 * korutin/fibers and korutin/future where node-fibers' behaviour was easy to
 * miss: stack traces that end at the user's function, node-fibers' exact
 * error messages, `this` in the fiber function, and the Future's public
 * fields and old-style subclassing. On every backend.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as util from 'util';
import { KorutinError } from '../ts';
import Fiber = require('../ts/fibers');
import Future = require('../ts/future');
import { fibersEngine, lastJson, onEveryBackend, repoRoot, runNode } from './fixtures/fibers-support';

/** Where korutin's own built modules are: no frame below a user's function may point there. */
const KORUTIN_DIST = path.join(repoRoot, 'dist', 'ts') + path.sep;

/** The `at ...` lines of a formatted stack. */
function frames(stack: string | undefined): string[] {
  return (stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
}

/** Asserts that the stack's last frame is the function named `fn` and that no frame is korutin's. */
function endsAt(stack: string | undefined, fn: string): void {
  const at = frames(stack);
  assert.ok(at.length > 0, `no frames in ${stack}`);
  assert.match(at[at.length - 1], new RegExp(`^\\s+at ${fn} \\(`), `the last frame is ${fn}:\n${stack}`);
  assert.ok(!(stack ?? '').includes(KORUTIN_DIST), `korutin's own frames are in the trace:\n${stack}`);
}

/** V8's structured frames, as a custom Error.prepareStackTrace receives them. */
interface CallSite {
  getFunctionName(): string | null;
  getFileName(): string | null | undefined;
}

/** Runs `fn` with Error.prepareStackTrace set to `prepare`, then puts back what was there (the usual save/restore). */
function withPrepare<R>(prepare: (error: Error, trace: CallSite[]) => unknown, fn: () => R): R {
  const saved = Error.prepareStackTrace;
  Error.prepareStackTrace = prepare as typeof Error.prepareStackTrace;
  try {
    return fn();
  } finally {
    Error.prepareStackTrace = saved;
  }
}

/** Asserts that `fn` throws an error of class `Kind` with exactly `message`, and with `code` (and a hint, when `hint` is set). */
function throwsExactly(fn: () => unknown, Kind: ErrorConstructor | TypeErrorConstructor, message: string, code?: string, hint?: boolean): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Kind, `expected a ${Kind.name}, got ${util.inspect(e)}`);
    assert.equal((e as Error).message, message);
    if (code !== undefined) assert.equal((e as KorutinError).code, code);
    if (hint) assert.equal(typeof (e as KorutinError).hint, 'string');
    // read as node-fibers' did: "Error: …" / "TypeError: …"
    assert.equal(String(e), `${Kind.name}: ${message}`);
    assert.ok(String((e as Error).stack).startsWith(`${Kind.name}: ${message}\n`), String((e as Error).stack));
    return true;
  });
}

onEveryBackend('stack traces inside fibers and coroutines', function () {
  it('a stack taken in a fiber function ends at that function, with no korutin frame', function () {
    const stack = Fiber(function fiberFunction() {
      return new Error('here').stack;
    }).run();
    endsAt(stack, 'fiberFunction');
  });

  it('so does a stack taken deeper in a fiber, and after the fiber yielded and was resumed', function () {
    function inner(): string | undefined {
      return new Error('deep').stack;
    }
    const fiber = Fiber(function resumedFiber() {
      Fiber.yield(inner());
      return inner();
    });
    for (const stack of [fiber.run(), fiber.run()] as Array<string | undefined>) {
      endsAt(stack, 'resumedFiber');
      const at = frames(stack);
      assert.match(at[0], /^\s+at inner \(/);
      assert.equal(at.length, 2);
    }
  });

  it('the stack of an error thrown out of a fiber ends at the fiber function', function () {
    let caught: unknown;
    try {
      Fiber(function throwingFiber() {
        throw new Error('out');
      }).run();
    } catch (e) {
      caught = e;
    }
    endsAt((caught as Error).stack, 'throwingFiber');
  });

  it('a stack taken in a ko.create or ko.spawn body ends at that body', async function () {
    const ko = fibersEngine()!;
    endsAt(ko.create(function createdBody() {
      return new Error('here').stack;
    }).resume().value as string, 'createdBody');
    const spawned = await ko.spawn(function spawnedBody() {
      return new Error('here').stack;
    }).toPromise();
    endsAt(spawned, 'spawnedBody');
  });

  it('a stack taken in a Future.task or fn.future() function ends at that function', async function () {
    const fromTask = await Future.task(function taskBody() {
      return new Error('here').stack;
    }).promise();
    endsAt(fromTask, 'taskBody');
    const fromFuture = await function futureBody() {
      return new Error('here').stack;
    }.future()().promise();
    endsAt(fromFuture, 'futureBody');
  });

  it('a user’s Error.prepareStackTrace is called, with the frames ending at the user’s function', function () {
    let calls = 0;
    const names = Fiber(function structured() {
      return withPrepare(
        (_error, trace) => {
          calls++;
          return trace;
        },
        () => (new Error('x').stack as unknown as CallSite[]).map((c) => [c.getFunctionName(), c.getFileName()]),
      );
    }).run() as Array<[string | null, string]>;
    assert.equal(calls, 1);
    assert.equal(names[names.length - 1][0], 'structured');
    assert.ok(names.every(([, file]) => !String(file).startsWith(KORUTIN_DIST)), JSON.stringify(names));
  });

  it('saving and restoring Error.prepareStackTrace gives back the same formatting', function () {
    const before = Error.prepareStackTrace;
    const mine = (): string => 'mine';
    Error.prepareStackTrace = mine;
    try {
      assert.equal(new Error('x').stack, 'mine');
      assert.equal(Fiber(() => new Error('x').stack).run(), 'mine');
    } finally {
      Error.prepareStackTrace = before;
    }
    assert.equal(Error.prepareStackTrace, before);
    assert.match(new Error('restored').stack ?? '', /^Error: restored\n\s+at /);
  });

  it('a stack taken outside any coroutine keeps every frame', function () {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = Infinity;
    try {
      const outside = frames(new Error('outside').stack);
      // mocha's frames and Node's below them are all still there
      assert.ok(outside.length > 3, outside.join('\n'));
      assert.ok(outside.some((l) => /node_modules[\\/]mocha/.test(l)), outside.join('\n'));
    } finally {
      Error.stackTraceLimit = limit;
    }
  });
});

describe('stack traces in a fresh process (Node’s default formatting, no other test’s state)', function () {
  it('an Error.prepareStackTrace installed before korutin is kept, and called with the filtered frames', async function () {
    const script = `
      let calls = 0;
      const mine = (error, trace) => { calls++; return trace.map((c) => c.getFunctionName() + '@' + c.getFileName()); };
      Error.prepareStackTrace = mine;
      const Fiber = require(process.argv[1]);
      const names = Fiber(function early() { return new Error('x').stack; }).run();
      const saved = Error.prepareStackTrace;
      Error.prepareStackTrace = undefined;
      const plain = Fiber(function plainFormat() { return new Error('y').stack; }).run();
      Error.prepareStackTrace = saved;
      const again = Fiber(function again() { return new Error('z').stack; }).run();
      console.log(JSON.stringify({ calls, last: names[names.length - 1], korutin: names.some((n) => n.includes(process.argv[2])),
        plain: /^Error: y\\n\\s+at plainFormat \\([^\\n]*\\)$/.test(plain), againLast: again[again.length - 1] }));`;
    const r = await runNode(['-e', script, path.join(KORUTIN_DIST, 'fibers.js'), KORUTIN_DIST]);
    const got = lastJson(r);
    assert.equal(got.calls, 2);
    assert.match(got.last, /^early@/);
    assert.match(got.againLast, /^again@/);
    assert.equal(got.korutin, false);
    assert.equal(got.plain, true, 'with Error.prepareStackTrace unset, V8’s format, ending at the fiber function');
  });

  it('a fiber’s stack ends at its function, and stacks outside fibers are as without korutin', async function () {
    const script = `
      const before = new Error('x').stack.split('\\n').length;
      const Fiber = require(process.argv[1]);
      const inFiber = Fiber(function theFiber() { return new Error('in').stack; }).run();
      const after = new Error('x').stack.split('\\n').length;
      const last = inFiber.split('\\n').pop();
      console.log(JSON.stringify({ last: /^\\s+at theFiber \\(/.test(last), korutin: inFiber.includes(process.argv[2]), before, after }));`;
    const r = await runNode(['-e', script, path.join(KORUTIN_DIST, 'fibers.js'), KORUTIN_DIST]);
    const got = lastJson(r);
    assert.deepEqual({ last: got.last, korutin: got.korutin }, { last: true, korutin: false });
    assert.equal(got.after, got.before);
  });
});

onEveryBackend('node-fibers’ error messages', function () {
  it('Fiber() without exactly one function argument', function () {
    const fn = (): void => undefined;
    const call = Fiber as unknown as (...a: unknown[]) => unknown;
    throwsExactly(() => call(), TypeError, 'Fiber expects 1 argument', 'ERR_INVALID_ARGUMENT', true);
    throwsExactly(() => call(fn, 2), TypeError, 'Fiber expects 1 argument', 'ERR_INVALID_ARGUMENT', true);
    throwsExactly(() => new (Fiber as unknown as new (...a: unknown[]) => unknown)(fn, 2), TypeError, 'Fiber expects 1 argument');
    throwsExactly(() => call(42), TypeError, 'Fiber expects a function', 'ERR_INVALID_ARGUMENT', true);
  });

  it('run(), reset() and throwInto() on a fiber that is running', function () {
    const errors: unknown[] = [];
    Fiber(() => {
      const self = Fiber.current!;
      for (const act of [() => self.run(), () => self.reset(), () => self.throwInto(new Error('x'))]) {
        try {
          act();
        } catch (e) {
          errors.push(e);
        }
      }
    }).run();
    assert.deepEqual(errors.map((e) => [(e as Error).constructor, String(e), (e as KorutinError).code, typeof (e as KorutinError).hint]), [
      [KorutinError, 'Error: This Fiber is already running', 'ERR_ALREADY_RUNNING', 'string'],
      [KorutinError, 'Error: This Fiber is not yielding', 'ERR_ALREADY_RUNNING', 'string'],
      [KorutinError, 'Error: This Fiber is not yielding', 'ERR_ALREADY_RUNNING', 'string'],
    ]);
  });

  it('throwInto() on a fiber that is not started', function () {
    throwsExactly(() => Fiber(() => 1).throwInto(new Error('x')), Error, 'This Fiber is not yielding', 'ERR_NOT_SUSPENDED', true);
  });

  it('too many arguments to run(), throwInto(), reset() and Fiber.yield()', function () {
    const fiber = Fiber(() => {
      for (;;) Fiber.yield();
    });
    const loose = fiber as unknown as Record<'run' | 'throwInto' | 'reset', (...a: unknown[]) => unknown>;
    fiber.run();
    throwsExactly(() => loose.run(1, 2), TypeError, 'run() excepts 1 or no arguments', 'ERR_INVALID_ARGUMENT');
    throwsExactly(() => loose.throwInto(new Error('a'), 2), TypeError, 'throwInto() expects 1 or no arguments', 'ERR_INVALID_ARGUMENT');
    throwsExactly(() => loose.reset(1), TypeError, 'reset() expects no arguments', 'ERR_INVALID_ARGUMENT');
    assert.equal(fiber.started, true, 'the refused calls left the fiber as it was');
    fiber.reset();
    const yielder = Fiber(() => (Fiber.yield as (...a: unknown[]) => unknown)(1, 2));
    throwsExactly(() => yielder.run(), TypeError, 'yield() expects 1 or no arguments', 'ERR_INVALID_ARGUMENT');
  });

  it('no memory for another fiber’s stack: RangeError "Out of memory", with korutin’s reason as the hint', function () {
    // A child under `ulimit -v`: 64 MiB stacks exhaust 4 GB of address space.
    const script = `
      const Fiber = require(${JSON.stringify(path.join(KORUTIN_DIST, 'fibers.js'))});
      const { createEngine } = require(${JSON.stringify(path.join(KORUTIN_DIST, 'index.js'))});
      Fiber[Symbol.for('korutin.fibers.engine')] = createEngine({ backend: ${JSON.stringify(fibersEngine()!.backend)}, stackSize: '64m' });
      const live = [];
      try { for (let i = 0; i < 100000; i++) { const f = Fiber(() => Fiber.yield()); f.run(); live.push(f); } console.log('{}'); }
      catch (e) {
        for (const f of live) f.run();
        console.log(JSON.stringify({ range: e instanceof RangeError, message: e.message, code: e.code, hint: /max_map_count/.test(e.hint), live: live.length > 0, again: Fiber(() => 'ok').run() }));
      }`;
    const r = spawnSync('bash', ['-c', 'ulimit -v 4000000 && exec "$0" -e "$1"', process.execPath, script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), {
      range: true, message: 'Out of memory', code: 'ERR_OUT_OF_MEMORY', hint: true, live: true, again: 'ok',
    });
  });

  it('an abandoned fiber that throws while it is unwound: node-fibers’ words, as a warning', async function () {
    const script = `
      const Fiber = require(process.argv[1]);
      const { createEngine } = require(process.argv[2]);
      Fiber[Symbol.for('korutin.fibers.engine')] = createEngine({ backend: process.argv[3] });
      process.on('warning', (w) => { if (w.code === 'KORUTIN_FIBER_UNWIND') { console.log(JSON.stringify({ message: w.message })); process.exit(0); } });
      (() => { Fiber(() => { try { Fiber.yield(); } finally { throw new Error('thrown in finally'); } }).run(); })();
      const spin = () => { globalThis.gc(); setTimeout(spin, 5); };
      spin();
      setTimeout(() => { console.log('{}'); process.exit(0); }, 20000);`;
    const r = await runNode(['--expose-gc', '-e', script, path.join(KORUTIN_DIST, 'fibers.js'), path.join(KORUTIN_DIST, 'index.js'), fibersEngine()!.backend]);
    const { message } = lastJson(r) as { message?: string };
    assert.ok(message, `no warning; stderr:\n${r.stderr}`);
    assert.ok(message.startsWith('An exception was thrown from a Fiber which was being garbage collected.'), message);
    assert.match(message, /Error: thrown in finally/);
  });

  it('Fiber.yield() with no fiber running', function () {
    throwsExactly(() => Fiber.yield(), Error, 'yield() called with no fiber running', 'ERR_NOT_IN_COROUTINE', true);
    const ko = fibersEngine()!;
    const r = ko.create(() => {
      try {
        Fiber.yield();
      } catch (e) {
        return (e as Error).message;
      }
      return 'yielded';
    }).resume();
    assert.equal(r.value, 'yield() called with no fiber running');
  });

  it('the error that unwinds a fiber being reset is node-fibers’ zombie Error, the same one at every yield', function () {
    const seen: unknown[] = [];
    const fiber = Fiber(() => {
      for (let i = 0; i < 3; i++) {
        try {
          Fiber.yield();
        } catch (e) {
          seen.push(e);
        }
      }
    });
    fiber.run();
    fiber.reset();
    assert.equal(seen.length, 3);
    assert.ok(seen[0] instanceof Error);
    assert.equal((seen[0] as Error).message, 'This Fiber is a zombie');
    assert.equal((seen[0] as Error).name, 'Error');
    assert.ok(seen.every((e) => e === seen[0]));
  });

  it('a method called on something that is not a fiber', function () {
    throwsExactly(() => Fiber.prototype.run.call({}), TypeError, 'Illegal invocation', 'ERR_INVALID_ARGUMENT', true);
    throwsExactly(() => Fiber.prototype.reset.call(null), TypeError, 'Illegal invocation', 'ERR_INVALID_ARGUMENT', true);
    throwsExactly(() => Fiber.prototype.throwInto.call(42, new Error('x')), TypeError, 'Illegal invocation', 'ERR_INVALID_ARGUMENT', true);
  });

  it('a fiber shows no property of korutin: util.inspect, Object.assign and a spread see none, and a copy is no fiber', function () {
    const f = Fiber(function () {
      Fiber.yield(1);
    });
    f.run();
    assert.equal(util.inspect(f), 'Fiber {}');
    const copy = Object.assign({}, f);
    assert.deepEqual(Reflect.ownKeys(copy), []);
    assert.deepEqual(Reflect.ownKeys({ ...f }), []);
    throwsExactly(() => Fiber.prototype.run.call(copy), TypeError, 'Illegal invocation', 'ERR_INVALID_ARGUMENT', true);
    f.run();
  });

  it('Future: get() too early, resolving twice, a falsy error, waiting without a fiber, waiting on a non-future', function () {
    throwsExactly(() => new Future().get(), Error, 'Future must resolve before value is ready', 'ERR_FUTURE_UNRESOLVED', true);
    const f = new Future();
    f.return(1);
    throwsExactly(() => f.return(2), Error, 'Future resolved more than once', 'ERR_FUTURE_RESOLVED', true);
    throwsExactly(() => f.throw(new Error('x')), Error, 'Future resolved more than once', 'ERR_FUTURE_RESOLVED', true);
    throwsExactly(() => new Future().throw(null), Error, 'Must throw non-empty error', 'ERR_INVALID_ARGUMENT', true);
    throwsExactly(() => new Future().wait(), Error, "Can't wait without a fiber", 'ERR_NOT_IN_COROUTINE', true);
    throwsExactly(() => Future.wait(new Future()), Error, "Can't wait without a fiber", 'ERR_NOT_IN_COROUTINE', true);
    throwsExactly(() => Future.wait(5 as unknown as Future), Error, '5 is not a future', 'ERR_INVALID_ARGUMENT');
    throwsExactly(() => Future.wait([new Future(), 'x' as unknown as Future]), Error, 'x is not a future', 'ERR_INVALID_ARGUMENT');
  });
});

onEveryBackend('this in the fiber function', function () {
  it('is the global object, as in node-fibers (strict code too), not korutin’s internals', function () {
    const seen: unknown[] = [];
    const fiber = Fiber(function (this: unknown) {
      'use strict';
      seen.push(this);
      Fiber.yield();
      seen.push(this);
    });
    fiber.run();
    fiber.run();
    assert.equal(seen.length, 2);
    assert.equal(seen[0], globalThis);
    assert.equal(seen[1], globalThis);
    // a sloppy-mode function sees it too
    const sloppy = new Function('return this') as () => unknown;
    assert.equal(Fiber(sloppy).run(), globalThis);
  });
});

onEveryBackend('the fiber function’s arguments', function () {
  it('is called with no argument when the first run() has none, and with the value given otherwise', function () {
    const count = function (): number {
      return arguments.length;
    };
    assert.equal(Fiber(count).run(), 0);
    assert.equal(Fiber(count).run(undefined), 1);
    assert.equal(Fiber(count).run(7), 1);
    const fiber = Fiber(count);
    assert.equal(fiber.run(), 0);
    assert.equal(fiber.run('again'), 1, 'each incarnation follows its own first run()');
  });
});

onEveryBackend('Future’s public fields and subclassing', function () {
  it('resolved, value and error are absent until it resolves, then set as node-fibers set them', function () {
    const ok = new Future<number>();
    assert.equal(ok.resolved, undefined);
    assert.equal(ok.value, undefined);
    assert.equal(ok.error, undefined);
    assert.deepEqual(Object.keys(ok), [], 'no enumerable clutter on a fresh future');
    ok.resolve(() => undefined);
    assert.deepEqual(Object.keys(ok), [], 'nor on one with a pending callback');
    assert.equal(JSON.stringify(ok), '{}');
    ok.return(5);
    assert.equal(ok.resolved, true);
    assert.equal(ok.value, 5);
    assert.equal(ok.error, undefined);
    assert.deepEqual(Object.keys(ok).sort(), ['resolved', 'value']);

    const bad = new Future();
    const err = new Error('bad');
    bad.throw(err);
    assert.equal(bad.resolved, true);
    assert.equal(bad.error, err);
    assert.equal('value' in bad, false);
    assert.deepEqual(Object.keys(bad).sort(), ['error', 'resolved']);
  });

  it('its methods read the public fields, as node-fibers’ did', function () {
    const f = new Future<string>();
    f.resolved = true;
    f.value = 'set by hand';
    assert.equal(f.isResolved(), true);
    assert.equal(f.get(), 'set by hand');
  });

  it('a future made by a Future.wrap() function carries what the function returned in _', async function () {
    const wrapped = Future.wrap((x: number, cb: (err: null, v: number) => void) => {
      setImmediate(() => cb(null, x));
      return 'returned';
    });
    const f = wrapped(3);
    assert.equal(f._, 'returned');
    assert.equal(await f.promise(), 3);
  });

  it('an old-style subclass can call Future.call(this) and works like a Future', async function () {
    interface Tagged extends Future<number> {
      tag: string;
    }
    const TaggedFuture = function (this: Tagged, tag: string) {
      Future.call(this);
      this.tag = tag;
    } as unknown as { new (tag: string): Tagged; prototype: Tagged };
    util.inherits(TaggedFuture as unknown as new () => unknown, Future as unknown as new () => unknown);

    const t = new TaggedFuture('mine');
    assert.ok(t instanceof Future);
    assert.equal(t.tag, 'mine');
    assert.equal(t.isResolved(), false);
    setTimeout(() => t.return(42), 2);
    const got = await Future.task(() => {
      Future.wait(t);
      return t.wait() + 1;
    }).promise();
    assert.equal(got, 43);
    assert.equal(t.value, 42);
  });

  it('class syntax can extend it too', function () {
    class Later extends Future<string> {
      label(): string {
        return `later: ${this.get()}`;
      }
    }
    const l = new Later();
    l.return('x');
    assert.ok(l instanceof Future);
    assert.equal(l.label(), 'later: x');
  });

  it('Future.task(fn1, fn2, ...) resolves with the array of their results, or the error one threw', async function () {
    assert.deepEqual(await Future.task(() => 1, () => 'two').promise(), [1, 'two']);
    const boom = new Error('boom');
    await assert.rejects(
      Future.task(() => 1, () => {
        throw boom;
      }).promise(),
      (e: unknown) => e === boom,
    );
  });

  it('get() rethrows the very error, keeping its stack as futureStack, as node-fibers did', function () {
    const err = new Error('plain');
    const original = err.stack;
    // V8 14 (Node 26) makes an error's stack an accessor; before, a plain value.
    const accessor = typeof Object.getOwnPropertyDescriptor(err, 'stack')?.get === 'function';
    const f = new Future();
    f.throw(err);
    assert.throws(() => f.get(), (e: unknown) => e === err);
    assert.equal(Object.getOwnPropertyDescriptor(err, 'futureStack')!.enumerable, false);
    if (accessor) {
      // joined with the get() caller's trace, as the accessor case below
      assert.equal(err.stack!.split('\n')[0], 'Error: plain');
      assert.ok(err.stack!.includes('\n    - - - - -\n'), err.stack);
      assert.ok(err.stack!.endsWith(original!.split('\n').slice(1).join('\n')), err.stack);
    } else {
      assert.equal((err as { futureStack?: string }).futureStack, original);
      assert.equal(err.stack, original, 'a plain stack value stays as it is');
    }
  });

  it('get() joins the caller’s trace above an error whose stack is an accessor, as node-fibers did', function () {
    const err = new Error('accessor');
    const own = err.stack!;
    Object.defineProperty(err, 'stack', { get: () => own, configurable: true, enumerable: false });
    const f = new Future();
    f.throw(err);
    function theCaller(): void {
      f.get();
    }
    assert.throws(theCaller, (e: unknown) => e === err);
    const lines = err.stack!.split('\n');
    assert.equal(lines[0], 'Error: accessor');
    const split = lines.indexOf('    - - - - -');
    assert.ok(split > 1, err.stack);
    assert.match(lines[1], /^\s+at theCaller /, 'the caller’s frames come first');
    assert.deepEqual(lines.slice(split + 1), own.split('\n').slice(1), 'then the error’s own');
    err.stack = 'replaced';
    assert.equal(err.stack, 'replaced');
  });

  it('its built module has no #private fields (tools that re-parse node_modules choke on them)', function () {
    const source = fs.readFileSync(path.join(KORUTIN_DIST, 'future.js'), 'utf8');
    assert.doesNotMatch(source, /\.#[A-Za-z_$]|^\s*#[A-Za-z_$][\w$]*\s*[=;(]/m);
    assert.equal(typeof Future, 'function');
    assert.doesNotThrow(() => Future.call({}));
  });
});
