/**
 * Debugging inside coroutines: a breakpoint in a coroutine body pauses with
 * the coroutine's own call frames and locals, stepping over a `ko.yield()`
 * pauses at the next line of the same coroutine once it is resumed, and the
 * program then runs to its end. Driven through the inspector protocol from
 * outside the paused thread, two ways: a child started with
 * --inspect-brk=0 and driven over its WebSocket by a small client here,
 * and a Worker in the child whose session is connected to the main thread.
 * Every wait is bounded and the child is always killed.
 */
import { strict as assert } from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { PACKAGE_ENTRY, testBackends } from './helpers';

/** The program under the debugger (its lines are found by their tags). */
const PROGRAM = `
const { createEngine } = require(process.env.KO_ENTRY);
const ko = createEngine({ backend: process.env.KO_BACKEND });
function innerWork(n) {
  const localValue = n * 7;
  ko.yield(localValue); // BREAK
  const after = localValue + 1; // NEXT
  return after;
}
function coroutineBody() { return innerWork(6); }
function runProgram() {
  const co = ko.create(coroutineBody);
  const first = co.resume();
  const second = co.resume();
  return { first, second };
}
`;
const lines = PROGRAM.split('\n');
const lineOf = (tag: string) => lines.findIndex((l) => l.includes(`// ${tag}`));

/** The Worker that drives the main thread's debugger (connectToMainThread). */
const WORKER = `
const { parentPort, workerData } = require('worker_threads');
const inspector = require('inspector');
const keep = setInterval(() => {}, 1000);
const s = new inspector.Session();
s.connectToMainThread();
const post = (m, p) => new Promise((res, rej) => s.post(m, p || {}, (e, r) => (e ? rej(e) : res(r))));
let n = 0;
s.on('Debugger.paused', async ({ params }) => {
  try {
    parentPort.postMessage({ pause: await describePause(post, params) });
    await post(++n === 1 ? 'Debugger.stepOver' : 'Debugger.resume');
  } catch (e) {
    parentPort.postMessage({ error: String((e && e.stack) || e) });
    await post('Debugger.resume').catch(() => {});
  }
});
${describePauseSource()}
(async () => {
  await post('Debugger.enable');
  await post('Debugger.setBreakpointByUrl', { urlRegex: workerData.urlRegex, lineNumber: workerData.line });
  parentPort.postMessage({ ready: true });
})().catch((e) => parentPort.postMessage({ error: String(e) }));
`;

/** Shared by both drivers: what a pause shows (as source, for the Worker). */
function describePauseSource(): string {
  return `
async function describePause(post, params) {
  const top = params.callFrames[0];
  const ev = await post('Debugger.evaluateOnCallFrame', { callFrameId: top.callFrameId, expression: 'localValue' });
  const scope = top.scopeChain.find((x) => x.type === 'local');
  const props = scope ? (await post('Runtime.getProperties', { objectId: scope.object.objectId, ownProperties: true })).result : [];
  const locals = {};
  for (const p of props) locals[p.name] = p.value ? p.value.value : undefined;
  return { reason: params.reason, line: top.location.lineNumber, frames: params.callFrames.map((f) => f.functionName), evaluated: ev.result.value, locals };
}`;
}
const describePause = new Function(`${describePauseSource()}; return describePause;`)() as (
  post: (m: string, p?: object) => Promise<any>,
  params: any,
) => Promise<Pause>;

interface Pause {
  reason: string;
  line: number;
  frames: string[];
  evaluated: unknown;
  locals: Record<string, unknown>;
}

function checkPauses(pauses: Pause[]) {
  assert.equal(pauses.length, 2, `expected two pauses in the coroutine, got ${JSON.stringify(pauses)}`);
  const [bp, step] = pauses;
  assert.equal(bp.line, lineOf('BREAK'), `breakpoint pause: ${JSON.stringify(bp)}`);
  assert.deepEqual(bp.frames.slice(0, 2), ['innerWork', 'coroutineBody'], `breakpoint frames: ${bp.frames}`);
  assert.equal(bp.evaluated, 42);
  assert.equal(bp.locals.localValue, 42);
  assert.equal(bp.locals.n, 6);
  assert.equal(step.line, lineOf('NEXT'), `after stepping over ko.yield(): ${JSON.stringify(step)}`);
  assert.deepEqual(step.frames.slice(0, 2), ['innerWork', 'coroutineBody'], `frames after the step: ${step.frames}`);
  assert.equal(step.evaluated, 42);
}

/** A minimal WebSocket client (RFC 6455 text frames) over an http upgrade. */
class TinyWebSocket {
  private buf = Buffer.alloc(0);
  private onText: (s: string) => void = () => {};
  private constructor(private sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.drain();
    });
  }

  static connect(url: string, ms: number): Promise<TinyWebSocket> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: u.hostname,
        port: Number(u.port),
        path: u.pathname,
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
        },
        timeout: ms,
      });
      req.on('upgrade', (_res, sock, head) => {
        const ws = new TinyWebSocket(sock);
        if (head.length) sock.unshift(head);
        resolve(ws);
      });
      req.on('timeout', () => req.destroy(new Error('WebSocket upgrade timed out')));
      req.on('error', reject);
      req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
      req.end();
    });
  }

  onMessage(fn: (s: string) => void) {
    this.onText = fn;
  }

  send(text: string) {
    const payload = Buffer.from(text);
    const mask = crypto.randomBytes(4);
    let header: Buffer;
    if (payload.length < 126) header = Buffer.from([0x81, 0x80 | payload.length]);
    else if (payload.length < 65536) {
      header = Buffer.alloc(4);
      header[0] = 0x81;
      header[1] = 0x80 | 126;
      header.writeUInt16BE(payload.length, 2);
    } else {
      header = Buffer.alloc(10);
      header[0] = 0x81;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(payload.length), 2);
    }
    for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
    this.sock.write(Buffer.concat([header, mask, payload]));
  }

  close() {
    this.sock.destroy();
  }

  /**
   * A close frame, then the end of our half of the connection. Destroying
   * the socket while Node's inspector thread still has writes queued for it
   * can crash that thread (node::inspector::TcpHolder::WriteRaw, SIGSEGV,
   * seen on Node 20 whatever korutin does), so the test ends politely.
   */
  closeGracefully() {
    this.sock.end(Buffer.concat([Buffer.from([0x88, 0x80]), crypto.randomBytes(4)]));
  }

  private drain() {
    for (;;) {
      if (this.buf.length < 2) return;
      const op = this.buf[0] & 0x0f;
      let len = this.buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        at = 10;
      }
      if (this.buf.length < at + len) return;
      const payload = this.buf.subarray(at, at + len);
      this.buf = this.buf.subarray(at + len);
      if (op === 0x1) this.onText(payload.toString('utf8'));
      else if (op === 0x8) this.sock.end();
    }
  }
}

/** A protocol client over a TinyWebSocket: calls with replies, and events. */
class Cdp {
  private id = 0;
  private waiting = new Map<number, { resolve: (r: any) => void; reject: (e: Error) => void }>();
  private handlers = new Map<string, (params: any) => void>();
  constructor(private ws: TinyWebSocket) {
    ws.onMessage((text) => {
      const m = JSON.parse(text);
      if (m.id !== undefined) {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error) w?.reject(new Error(`${m.error.message} (${m.error.code})`));
        else w?.resolve(m.result);
      } else this.handlers.get(m.method)?.(m.params);
    });
  }
  post = (method: string, params: object = {}): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = ++this.id;
      this.waiting.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  on(method: string, fn: (params: any) => void) {
    this.handlers.set(method, fn);
  }
}

/** Rejects after ms unless p settles first. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

function waitExit(ch: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (ch.exitCode !== null || ch.signalCode !== null) resolve(ch.exitCode);
    else ch.on('exit', (code) => resolve(code));
  });
}

for (const backend of testBackends()) {
  describe(`debugger [${backend}]`, function () {
    this.timeout(90_000);
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'korutin-dbg-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
    const env = () => ({ ...process.env, KO_ENTRY: PACKAGE_ENTRY, KO_BACKEND: backend });
    const urlRegex = (file: string) => `${path.basename(file).replace(/[.]/g, '\\.')}$`;

    // Every backend: on threads, a coroutine resumed after a pause once
    // crashed on Node 20 (see KO_ENTER_BEFORE_LOCK in the bridge).
    const itHere = it;
    itHere('--inspect-brk over the WebSocket: breakpoint, frames, locals, step over ko.yield()', async () => {
      const file = path.join(dir, 'program.js');
      fs.writeFileSync(file, `${PROGRAM}\nconsole.log(JSON.stringify(runProgram()));\n`);
      const ch = spawn(process.execPath, ['--inspect-brk=127.0.0.1:0', file], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      ch.stdout!.on('data', (d) => (stdout += d));
      let ws: TinyWebSocket | undefined;
      try {
        const url = await within(
          new Promise<string>((resolve, reject) => {
            ch.stderr!.on('data', (d) => {
              stderr += d;
              const m = /ws:\/\/[^\s]+/.exec(stderr);
              if (m) resolve(m[0]);
            });
            ch.on('exit', (code) => reject(new Error(`child exited (${code}) before listening: ${stderr}`)));
          }),
          20_000,
          'the child to print its ws:// address',
        );
        ws = await TinyWebSocket.connect(url, 10_000);
        const cdp = new Cdp(ws);
        const pauses: Pause[] = [];
        let errors = '';
        const done = new Promise<void>((resolve) => {
          cdp.on('Debugger.paused', async (params) => {
            try {
              if (params.callFrames[0]?.url && !params.callFrames[0].url.endsWith('program.js')) {
                await cdp.post('Debugger.resume');
                return;
              }
              if (params.reason === 'Break on start' || (pauses.length === 0 && params.callFrames[0].location.lineNumber !== lineOf('BREAK'))) {
                await cdp.post('Debugger.resume');
                return;
              }
              pauses.push(await describePause(cdp.post, params));
              await cdp.post(pauses.length === 1 ? 'Debugger.stepOver' : 'Debugger.resume');
              if (pauses.length === 2) resolve();
            } catch (e) {
              errors += `${(e as Error).stack}\n`;
              resolve();
            }
          });
        });
        await within(cdp.post('Runtime.enable'), 10_000, 'Runtime.enable');
        await within(cdp.post('Debugger.enable'), 10_000, 'Debugger.enable');
        await within(
          cdp.post('Debugger.setBreakpointByUrl', { urlRegex: urlRegex(file), lineNumber: lineOf('BREAK') }),
          10_000,
          'setBreakpointByUrl',
        );
        await within(cdp.post('Runtime.runIfWaitingForDebugger'), 10_000, 'runIfWaitingForDebugger');
        await within(done, 30_000, `two pauses in the coroutine (stderr: ${stderr})`);
        assert.equal(errors, '');
        checkPauses(pauses);
        // Quiet the session, let the program end, then disconnect politely.
        await within(cdp.post('Debugger.disable'), 10_000, 'Debugger.disable');
        await within(cdp.post('Runtime.disable'), 10_000, 'Runtime.disable');
        await within(
          new Promise<void>((resolve) => {
            const check = (): unknown => (/Waiting for the debugger to disconnect/.test(stderr) ? resolve() : setTimeout(check, 10));
            check();
          }),
          20_000,
          'the program to finish',
        );
        ws.closeGracefully();
        ws = undefined;
        const code = await within(waitExit(ch), 20_000, 'the child to finish');
        assert.equal(code, 0, `child (${ch.signalCode}): ${stderr}`);
        const out = JSON.parse(stdout.trim().split('\n').pop()!);
        assert.deepEqual(out, { first: { value: 42, done: false }, second: { value: 43, done: true } });
      } finally {
        ws?.close();
        if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
      }
    });

    itHere("a Worker's session on the main thread: breakpoint, frames, locals, step over ko.yield()", () => {
      const file = path.join(dir, 'program.js');
      fs.writeFileSync(
        file,
        `${PROGRAM}
const { Worker } = require('worker_threads');
const worker = new Worker(${JSON.stringify(WORKER)}, { eval: true, workerData: ${JSON.stringify({
          urlRegex: urlRegex(file),
          line: lineOf('BREAK'),
        })} });
const got = [];
worker.on('message', (m) => {
  if (!m.ready) return void got.push(m);
  const result = runProgram();
  setTimeout(() => {
    console.log(JSON.stringify({ result, got }));
    worker.terminate().then(() => process.exit(0));
  }, 300);
});
worker.on('error', (e) => { console.error(e); process.exit(2); });
`,
      );
      const r = spawnSync(process.execPath, [file], { env: env(), encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
      assert.equal(r.status, 0, `child failed (${r.signal ?? r.status}): ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      const errors = out.got.filter((m: { error?: string }) => m.error);
      assert.deepEqual(errors, []);
      checkPauses(out.got.map((m: { pause: Pause }) => m.pause));
      assert.deepEqual(out.result, { first: { value: 42, done: false }, second: { value: 43, done: true } });
    });
  });
}
