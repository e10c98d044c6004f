/**
 * Blocking-style UDP on node:dgram: `bind()` returns a socket whose
 * `recvFrom()` waits (this task only) for a datagram and whose `sendTo()`
 * waits until the datagram was handed to the system.
 */
import * as dgram from 'dgram';
import { KorutinError } from '../errors';
import { self } from '../sched/driver';
import { awaitPromise } from '../sched/ops';
import { checkPort, deadline, Parking } from './park';

/** Options of {@link bind}. */
export interface BindOptions {
  port?: number;
  /** Local address (default: all of the family's). */
  address?: string;
  type?: 'udp4' | 'udp6';
  reuseAddr?: boolean;
  /** Datagrams kept for `recvFrom()`; past that, new ones are dropped (default 1024). */
  maxQueue?: number;
}

/** A received datagram. */
export interface Datagram {
  data: Buffer;
  address: string;
  port: number;
  family: string;
}

export class UdpSocket {
  /** The underlying node:dgram socket. */
  readonly socket: dgram.Socket;
  /** Datagrams dropped because the queue was full. */
  dropped = 0;
  private readonly queue: Datagram[] = [];
  private readonly receivers = new Parking('recvFrom');
  private error: Error | null = null;
  private closedFlag = false;

  /** @internal Use `bind()`. */
  constructor(socket: dgram.Socket, private readonly maxQueue: number) {
    this.socket = socket;
    socket.on('message', (data: Buffer, rinfo: dgram.RemoteInfo) => {
      if (this.queue.length >= this.maxQueue) {
        this.dropped++;
        return;
      }
      this.queue.push({ data, address: rinfo.address, port: rinfo.port, family: rinfo.family });
      this.receivers.wakeAll();
    });
    socket.on('error', (e: Error) => {
      this.error ??= e;
      this.receivers.wakeAll();
    });
  }

  /** @internal once bound: waits in recvFrom() show the address */
  labelWaits(): void {
    const a = this.socket.address();
    this.receivers.label = `recvFrom udp ${a.address}:${a.port}`;
  }

  /** As node:dgram's `address()`. */
  address(): { address: string; family: string; port: number } {
    return this.socket.address();
  }

  /** The local port. */
  get port(): number {
    return this.socket.address().port;
  }

  /**
   * Waits for a datagram. `ERR_TIMEOUT` after `timeoutMs`;
   * `ERR_SOCKET_CLOSED` once the socket is closed.
   */
  recvFrom(timeoutMs?: number): Datagram {
    const dl = deadline(timeoutMs, 'recvFrom()');
    for (;;) {
      if (this.closedFlag) throw new KorutinError('ERR_SOCKET_CLOSED', 'recvFrom(): the socket is closed; bind() a new one');
      const d = this.queue.shift();
      if (d) return d;
      if (this.error) throw this.error;
      this.receivers.park('recvFrom()', dl);
    }
  }

  /** Sends a datagram to `host:port` (default host `127.0.0.1` / `::1`); Node's errors are thrown. */
  sendTo(data: Uint8Array | string, port: number, host?: string): void {
    self('sendTo()');
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new KorutinError('ERR_INVALID_ARGUMENT', `sendTo(data): data must be a Buffer, a Uint8Array or a string, got ${typeof data}`);
    }
    checkPort(port, 'sendTo()');
    if (host !== undefined && typeof host !== 'string') throw new KorutinError('ERR_INVALID_ARGUMENT', 'sendTo(): host must be a string');
    if (this.closedFlag) throw new KorutinError('ERR_SOCKET_CLOSED', 'sendTo(): the socket is closed; bind() a new one');
    const to = host ?? (this.socket.address().family === 'IPv6' ? '::1' : '127.0.0.1');
    awaitPromise(
      new Promise<void>((resolve, reject) => this.socket.send(data, port, to, (e) => (e ? reject(e) : resolve()))),
    );
  }

  /** Closes the socket; tasks blocked in `recvFrom()` get `ERR_SOCKET_CLOSED`. Closing twice does nothing. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.queue.length = 0;
    this.socket.close();
    this.receivers.wakeAll();
  }
}

/** Inside a task: binds a UDP socket (port 0: any free one) and returns it once bound. */
export function bind(portOrOptions: number | BindOptions = 0): UdpSocket {
  self('bind()');
  const o: BindOptions = typeof portOrOptions === 'number' ? { port: portOrOptions } : portOrOptions;
  if (o === null || typeof o !== 'object') throw new KorutinError('ERR_INVALID_ARGUMENT', 'bind(port | options): give a port or options');
  checkPort(o.port ?? 0, 'bind()');
  const maxQueue = o.maxQueue ?? 1024;
  if (!Number.isInteger(maxQueue) || maxQueue < 1) {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `bind(): maxQueue must be an integer >= 1, got ${String(o.maxQueue)}`);
  }
  if (o.type !== undefined && o.type !== 'udp4' && o.type !== 'udp6') {
    throw new KorutinError('ERR_INVALID_ARGUMENT', `bind(): type must be 'udp4' or 'udp6', got ${String(o.type)}`);
  }
  const socket = dgram.createSocket({ type: o.type ?? 'udp4', reuseAddr: o.reuseAddr });
  const u = new UdpSocket(socket, maxQueue);
  try {
    awaitPromise(
      new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: o.port ?? 0, address: o.address }, () => {
          socket.removeListener('error', reject);
          resolve();
        });
      }),
    );
    u.labelWaits();
  } catch (e) {
    u.close();
    throw e;
  }
  return u;
}
