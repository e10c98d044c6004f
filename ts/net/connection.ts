/**
 * A TCP (or TLS) connection read and written blocking-style from a task:
 * `read`, `readExactly` and `readLine` wait (this task only) for bytes,
 * `write` waits while the socket applies backpressure. Incoming bytes are
 * buffered here up to a high-water mark; past it the socket is paused, so
 * a slow reader slows the peer down instead of filling memory.
 */
import type * as net from 'net';
import { KorutinError } from '../errors';
import { deadline, Parking } from './park';

/** Default read size and buffering limit (bytes). */
export const DEFAULT_HIGH_WATER = 64 * 1024;

function closedError(what: string): KorutinError {
  return new KorutinError('ERR_SOCKET_CLOSED', `${what}: the connection was closed with close(); open a new one`);
}

function checkTimeoutArg(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw new KorutinError('ERR_INVALID_ARGUMENT', `${what}: the timeout must be a number of milliseconds, got ${typeof v}`);
  return v;
}

export class Connection implements Iterable<Buffer> {
  /** The underlying node:net (or node:tls) socket. */
  readonly socket: net.Socket;
  /** The peer's address and port (as when the connection was made). */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of the buffer already searched for a newline. */
  private scanned = 0;
  /** Bytes a waiting reader needs buffered before the socket may be paused. */
  private want = 0;
  private paused = false;
  private pauseCount = 0;
  private ended = false;
  private error: Error | null = null;
  private closedByUs = false;
  private ending = false;
  private readonly highWater: number;
  private readonly readable: Parking;
  private readonly writable: Parking;

  /** @internal Use `connect()` or a server's handler / `accept()`. */
  constructor(socket: net.Socket, highWater = DEFAULT_HIGH_WATER) {
    this.socket = socket;
    this.highWater = highWater;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    const peer = `${this.remoteAddress}:${this.remotePort}`;
    this.readable = new Parking(`read ${peer}`);
    this.writable = new Parking(`write ${peer}`);
    socket.on('data', (b: Buffer) => {
      this.chunks.push(b);
      this.buffered += b.length;
      if (this.buffered >= Math.max(this.highWater, this.want) && !this.paused) {
        this.paused = true;
        this.pauseCount++;
        socket.pause();
      }
      this.readable.wakeAll();
    });
    socket.on('end', () => {
      this.ended = true;
      this.readable.wakeAll();
    });
    socket.on('error', (e: Error) => {
      this.error ??= e;
      this.readable.wakeAll();
      this.writable.wakeAll();
    });
    socket.on('close', () => {
      this.ended = true;
      this.readable.wakeAll();
      this.writable.wakeAll();
    });
    socket.on('drain', () => this.writable.wakeAll());
  }

  /** Bytes received and not read yet. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** How often the socket was paused because the reader fell behind (receive-side backpressure). */
  get pauses(): number {
    return this.pauseCount;
  }

  /** True once `close()` was called or the socket is gone. */
  get closed(): boolean {
    return this.closedByUs || this.socket.destroyed;
  }

  /**
   * Waits for bytes and returns up to `maxBytes` of them (default 64 KiB),
   * or `null` once the peer has ended the stream and everything was read.
   * `ERR_TIMEOUT` after `timeoutMs` (nothing is lost; read again).
   */
  read(maxBytes = DEFAULT_HIGH_WATER, timeoutMs?: number): Buffer | null {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `read(maxBytes): maxBytes must be an integer >= 1, got ${String(maxBytes)}`);
    }
    if (!this.waitFor(1, 'read()', checkTimeoutArg(timeoutMs, 'read()'))) return null;
    return this.take(maxBytes);
  }

  /**
   * Waits until exactly `n` bytes have arrived and returns them. If the peer
   * ends the stream first, throws `ERR_UNEXPECTED_EOF` (what did arrive
   * stays buffered for `read()`). `ERR_TIMEOUT` leaves the bytes buffered.
   */
  readExactly(n: number, timeoutMs?: number): Buffer {
    if (!Number.isInteger(n) || n < 0) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `readExactly(n): n must be an integer >= 0, got ${String(n)}`);
    }
    if (n === 0) return Buffer.alloc(0);
    if (!this.waitFor(n, 'readExactly()', checkTimeoutArg(timeoutMs, 'readExactly()'))) {
      throw new KorutinError(
        'ERR_UNEXPECTED_EOF',
        `readExactly(${n}): the peer ended the stream after ${this.buffered} bytes; they are still buffered for read()`,
      );
    }
    return this.take(n);
  }

  /**
   * Waits for a whole line and returns it as UTF-8 text without its `\n`
   * (or `\r\n`). At the end of the stream, returns what is left as a last
   * line, then `null`. `ERR_TIMEOUT` leaves a partial line buffered.
   */
  readLine(timeoutMs?: number): string | null {
    const timeout = checkTimeoutArg(timeoutMs, 'readLine()');
    const dl = deadline(timeout, 'readLine()');
    for (;;) {
      const at = this.findNewline();
      if (at >= 0) {
        const line = this.take(at + 1);
        const end = at > 0 && line[at - 1] === 0x0d ? at - 1 : at;
        return line.toString('utf8', 0, end);
      }
      if (!this.waitMore(this.buffered + 1, 'readLine()', dl)) {
        return this.buffered > 0 ? this.take(this.buffered).toString('utf8') : null;
      }
    }
  }

  /**
   * Writes bytes (a string is sent as UTF-8). Returns at once while the
   * socket takes them; when it applies backpressure, waits (this task
   * only) until it drains. `ERR_TIMEOUT` after `timeoutMs` of waiting: the
   * bytes are queued all the same.
   */
  write(data: Uint8Array | string, timeoutMs?: number): void {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `write(data): data must be a Buffer, a Uint8Array or a string, got ${typeof data}`);
    }
    const timeout = checkTimeoutArg(timeoutMs, 'write()');
    this.checkWritable('write()');
    if (this.socket.write(data)) return;
    const dl = deadline(timeout, 'write()');
    while (this.socket.writableNeedDrain) {
      this.checkWritable('write()');
      this.writable.park('write()', dl);
    }
    this.checkWritable('write()');
  }

  /** Ends the sending side (the peer reads the end of the stream); reading goes on. */
  end(): void {
    if (this.closedByUs || this.ending) return;
    this.ending = true;
    this.socket.end();
  }

  /**
   * Closes the connection at once (unsent bytes are dropped); tasks blocked
   * in its calls get `ERR_SOCKET_CLOSED`. Closing twice does nothing.
   */
  close(): void {
    if (this.closedByUs) return;
    this.closedByUs = true;
    this.chunks = [];
    this.buffered = 0;
    this.scanned = 0;
    this.socket.destroy();
    this.readable.wakeAll();
    this.writable.wakeAll();
  }

  /** Inside a task: `for (const chunk of conn)` reads until the end of the stream. */
  [Symbol.iterator](): Iterator<Buffer> {
    return {
      next: (): IteratorResult<Buffer> => {
        const b = this.read();
        return b === null ? { done: true, value: undefined } : { done: false, value: b };
      },
    };
  }

  private checkWritable(what: string): void {
    if (this.closedByUs) throw closedError(what);
    if (this.error) throw this.error;
    if (this.ending) throw new KorutinError('ERR_SOCKET_CLOSED', `${what}: end() was called on this connection; nothing more can be sent`);
    if (this.socket.destroyed) throw new KorutinError('ERR_SOCKET_CLOSED', `${what}: the socket is closed; open a new connection`);
  }

  /** Waits until `n` bytes are buffered; false at the end of the stream. */
  private waitFor(n: number, what: string, timeoutMs: number | undefined): boolean {
    if (this.buffered >= n && !this.closedByUs) return true;
    return this.waitMore(n, what, deadline(timeoutMs, what));
  }

  private waitMore(n: number, what: string, dl: number): boolean {
    for (;;) {
      if (this.closedByUs) throw closedError(what);
      if (this.buffered >= n) return true;
      if (this.error) throw this.error;
      if (this.ended) return false;
      this.want = n;
      if (this.paused) {
        this.paused = false;
        this.socket.resume();
      }
      try {
        this.readable.park(what, dl);
      } finally {
        this.want = 0;
      }
    }
  }

  /** Takes up to n buffered bytes (at least one is buffered). */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      if (first.length === n) {
        this.chunks.shift();
        out = first;
      } else {
        out = first.subarray(0, n);
        this.chunks[0] = first.subarray(n);
      }
    } else {
      const parts: Buffer[] = [];
      let got = 0;
      while (got < n && this.chunks.length > 0) {
        const c = this.chunks[0];
        if (got + c.length <= n) {
          parts.push(c);
          got += c.length;
          this.chunks.shift();
        } else {
          parts.push(c.subarray(0, n - got));
          this.chunks[0] = c.subarray(n - got);
          got = n;
        }
      }
      out = Buffer.concat(parts, got);
    }
    this.buffered -= out.length;
    this.scanned = Math.max(0, this.scanned - out.length);
    if (this.paused && this.buffered < this.highWater) {
      this.paused = false;
      this.socket.resume();
    }
    return out;
  }

  /** The offset of the first buffered '\n', or -1 (remembering how far it looked). */
  private findNewline(): number {
    let base = 0;
    for (const c of this.chunks) {
      if (base + c.length > this.scanned) {
        const i = c.indexOf(0x0a, Math.max(0, this.scanned - base));
        if (i >= 0) return base + i;
      }
      base += c.length;
    }
    this.scanned = this.buffered;
    return -1;
  }
}
