/**
 * Blocking-style TCP and TLS on node:net / node:tls: `connect()` returns a
 * {@link Connection} once it is made; `listen()` returns a {@link Server}
 * that runs a handler task per connection or hands connections out with
 * `accept()`. Every call that waits must run inside a task.
 */
import * as net from 'net';
import * as tls from 'tls';
import type { Engine } from '../engine';
import { CancelledError, KorutinError } from '../errors';
import { S } from '../sched/binding';
import { proxyWait, self } from '../sched/driver';
import { awaitPromise, spawnTaskWith } from '../sched/ops';
import { Task } from '../sched/task';
import { Connection, DEFAULT_HIGH_WATER } from './connection';
import { checkPort, deadline, Parking } from './park';

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Give up connecting after this many milliseconds (`ERR_TIMEOUT`). */
  timeoutMs?: number;
  /** Connect with TLS: options for node:tls's `connect()` (`true`: the defaults). */
  tls?: tls.ConnectionOptions | true;
  /** Disable Nagle's algorithm (default true: blocking-style code writes whole messages). */
  noDelay?: boolean;
  /** Bytes buffered before the socket is paused (default 64 KiB). */
  highWaterMark?: number;
}

/** Options of {@link listen}. */
export interface ListenOptions {
  port?: number;
  host?: string;
  backlog?: number;
  /** Serve TLS: options for node:tls's `createServer()` (key, cert, ...). */
  tls?: tls.TlsOptions;
  noDelay?: boolean;
  highWaterMark?: number;
  /**
   * Errors that end handler tasks. Without it, cancels and Node's socket
   * errors (ECONNRESET, EPIPE...) are dropped and any other error is
   * reported as an unhandled task error of the engine.
   */
  onError?: (error: unknown, conn: Connection) => void;
}

/** A connection handler: runs in a task of its own; the connection is closed when it returns. */
export type ConnectionHandler = (conn: Connection) => unknown;

function checkOptions(o: unknown, what: string): void {
  if (o !== undefined && (o === null || typeof o !== 'object')) {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `${what}: options must be an object`);
  }
}

function checkHighWater(v: unknown, what: string): number {
  if (v === undefined) return DEFAULT_HIGH_WATER;
  if (!Number.isInteger(v) || (v as number) < 1) {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `${what}: highWaterMark must be an integer >= 1, got ${String(v)}`);
  }
  return v as number;
}

/** Waits inside the calling task for one of a socket's events; cleans its listeners up. */
function waitEvent(emitter: NodeJS.EventEmitter, ok: string, timeoutMs: number | undefined): void {
  let onOk!: () => void;
  let onErr!: (e: Error) => void;
  const p = new Promise<void>((resolve, reject) => {
    onOk = resolve;
    onErr = reject;
    emitter.once(ok, onOk);
    emitter.once('error', onErr);
  });
  try {
    awaitPromise(p, timeoutMs);
  } finally {
    emitter.removeListener(ok, onOk);
    emitter.removeListener('error', onErr);
  }
}

/**
 * Makes a node:tls object on the event loop's own thread, the calling task
 * waiting: Node keeps per-thread state when it makes a TLS context (from
 * Node 24 a per-thread cleanup hook, which aborts the process when a second
 * OS thread registers it), and a `threads`-backend task runs on an OS thread
 * of its own. One event-loop turn, next to a TLS handshake's milliseconds.
 */
function onLoopThread<T>(make: () => T): T {
  return awaitPromise(new Promise<T>((resolve, reject) => setImmediate(() => {
    try {
      resolve(make());
    } catch (e) {
      reject(e);
    }
  })));
}

/**
 * Inside a task: connects to `host:port` (default host `localhost`) and
 * returns the connection. Node's errors (ECONNREFUSED...) are thrown with
 * their `code`; `ERR_TIMEOUT` after `timeoutMs`. A cancel or a timeout
 * destroys the half-made socket.
 */
export function connect(port: number, host?: string | ConnectOptions, options?: ConnectOptions): Connection {
  self('connect()');
  if (typeof host === 'object' && host !== null) {
    options = host;
    host = undefined;
  }
  checkPort(port, 'connect()');
  if (host !== undefined && typeof host !== 'string') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `connect(port, host): host must be a string, got ${typeof host}`);
  }
  checkOptions(options, 'connect()');
  const o = options ?? {};
  const hw = checkHighWater(o.highWaterMark, 'connect()');
  deadline(o.timeoutMs, 'connect()'); // validates
  const where = host ?? 'localhost';
  const useTls = o.tls !== undefined;
  const socket: net.Socket = useTls
    ? onLoopThread(() => tls.connect({ ...(o.tls === true ? {} : o.tls), port, host: where }))
    : net.connect({ allowHalfOpen: true, port, host: where });
  try {
    waitEvent(socket, useTls ? 'secureConnect' : 'connect', o.timeoutMs);
  } catch (e) {
    socket.destroy();
    if (e instanceof KorutinError && e.code === 'ERR_TIMEOUT') {
      throw new KorutinError('ERR_TIMEOUT', `connect to ${where}:${port} timed out after ${o.timeoutMs} ms; is the server up and reachable?`);
    }
    throw e;
  }
  socket.setNoDelay(o.noDelay ?? true);
  return new Connection(socket, hw);
}

/** A listening TCP or TLS server. */
export class Server {
  /** The underlying node:net (or node:tls) server. */
  readonly server: net.Server;
  private readonly pending: net.Socket[] = [];
  private readonly acceptors = new Parking('accept');
  private readonly live = new Set<Task<unknown>>();
  private error: Error | null = null;
  private closedFlag = false;
  private readonly hw: number;
  private readonly noDelay: boolean;

  /** @internal Use `listen()`. */
  constructor(
    server: net.Server,
    private readonly engine: Engine,
    private readonly handler: ConnectionHandler | undefined,
    private readonly options: ListenOptions,
  ) {
    this.server = server;
    this.hw = checkHighWater(options.highWaterMark, 'listen()');
    this.noDelay = options.noDelay ?? true;
    const event = options.tls ? 'secureConnection' : 'connection';
    server.on(event, (s: net.Socket) => this.onSocket(s));
    server.on('error', (e: Error) => {
      this.error ??= e;
      this.acceptors.wakeAll();
    });
    if (options.tls) server.on('tlsClientError', () => undefined); // a failed handshake: tls destroys the socket
  }

  /** As node:net's `server.address()`. */
  address(): net.AddressInfo | string | null {
    return this.server.address();
  }

  /** The port it listens on. */
  get port(): number {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a.port : 0;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Handler tasks still running (one per open connection). */
  get tasks(): Task<unknown>[] {
    return [...this.live];
  }

  /**
   * Inside a task: waits for the next connection and returns it (for a
   * server listening without a handler). `ERR_TIMEOUT` after `timeoutMs`;
   * `ERR_SOCKET_CLOSED` once the server is closed.
   */
  accept(timeoutMs?: number): Connection {
    if (this.handler) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', 'accept(): this server hands its connections to its handler; listen() without a handler to accept them yourself');
    }
    const dl = deadline(timeoutMs, 'accept()');
    for (;;) {
      if (this.closedFlag) throw new KorutinError('ERR_SOCKET_CLOSED', 'accept(): the server is closed; listen() again');
      if (this.error) throw this.error;
      const s = this.pending.shift();
      if (s) return this.wrap(s);
      this.acceptors.park('accept()', dl);
    }
  }

  /**
   * Stops accepting: the listening socket is closed (its port freed once
   * open connections end), connections not accepted yet are dropped and
   * tasks blocked in `accept()` get `ERR_SOCKET_CLOSED`. Handler tasks go on
   * until they return (see {@link Server.tasks} to cancel them).
   */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.server.close();
    for (const s of this.pending.splice(0)) s.destroy();
    this.acceptors.wakeAll();
  }

  /** @internal once listening: waits in accept() show the address */
  labelWaits(): void {
    const a = this.server.address();
    this.acceptors.label = `accept ${a !== null && typeof a === 'object' ? `${a.address}:${a.port}` : String(a)}`;
  }

  private wrap(s: net.Socket): Connection {
    s.removeListener('error', ignore);
    s.setNoDelay(this.noDelay);
    return new Connection(s, this.hw);
  }

  private onSocket(s: net.Socket): void {
    if (this.closedFlag) {
      s.destroy();
      return;
    }
    s.on('error', ignore); // until a Connection listens
    if (!this.handler) {
      this.pending.push(s);
      this.acceptors.wakeAll();
      return;
    }
    const handler = this.handler;
    const onError = this.options.onError;
    const name = `${s.remoteAddress}:${s.remotePort}`;
    let started = false;
    const task = spawnTaskWith(this.engine, { name }, () => {
      started = true;
      const conn = this.wrap(s);
      try {
        return handler(conn);
      } catch (e) {
        if (onError) onError(e, conn);
        else if (!(e instanceof CancelledError) && !isSystemError(e)) throw e;
        return undefined;
      } finally {
        conn.close();
        this.live.delete(task);
      }
    }, []);
    this.live.add(task);
    task.detach();
    // a task cancelled before it started never ran the handler: close its socket here
    // (a join of the core's that, unlike join() or await, leaves its errors unhandled)
    proxyWait(
      (px) => S.join(px, task.h, 0, -1),
      () => {
        this.live.delete(task);
        if (!started) s.destroy();
      },
    );
  }
}

function ignore(): void {}

/** Node's own socket errors (they carry `syscall`, e.g. read ECONNRESET). */
function isSystemError(e: unknown): boolean {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

/**
 * Inside a task: listens on a port (0: any free one) and returns the server
 * once it is listening. With a handler, each connection runs
 * `handler(conn)` in a task of its own, named after the peer
 * (`127.0.0.1:50312`), and is closed when the handler returns; without
 * one, take connections with `server.accept()`. Node's errors
 * (EADDRINUSE...) are thrown with their `code`.
 * @internal engine: where handler tasks run (the caller's engine when omitted)
 */
export function listenOn(engine: Engine | undefined, portOrOptions: number | ListenOptions, handler?: ConnectionHandler): Server {
  const me = self('listen()');
  const o: ListenOptions = typeof portOrOptions === 'number' ? { port: portOrOptions } : portOrOptions;
  checkOptions(o, 'listen()');
  if (o === undefined) throw new KorutinError('ERR_INVALID_ARGUMENT', 'listen(port | options, handler?): give a port or options');
  checkPort(o.port ?? 0, 'listen()');
  if (handler !== undefined && typeof handler !== 'function') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `listen(): the handler must be a function (conn) => ..., got ${typeof handler}`);
  }
  if (o.onError !== undefined && typeof o.onError !== 'function') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', 'listen(): onError must be a function (error, conn) => void');
  }
  // half-open: reading the end of the stream leaves the sending side open
  const tlsOptions = o.tls;
  const server = tlsOptions
    ? onLoopThread(() => tls.createServer({ allowHalfOpen: true, ...tlsOptions }))
    : net.createServer({ allowHalfOpen: true });
  const s = new Server(server, engine ?? me.fin.engine, handler, o);
  try {
    const listening = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: o.port ?? 0, host: o.host, backlog: o.backlog }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    awaitPromise(listening);
    s.labelWaits();
  } catch (e) {
    s.close();
    throw e;
  }
  return s;
}
