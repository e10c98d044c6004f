/**
 * `korutin/net`: blocking-style TCP, TLS and UDP for tasks, on node:net,
 * node:tls and node:dgram. Also reachable as `ko.net` from an engine.
 *
 * ```ts
 * import { createEngine } from 'korutin';
 * import { listen, connect } from 'korutin/net';
 * const ko = createEngine();
 * ko.spawn(() => {
 *   const server = listen(0, (conn) => { for (const chunk of conn) conn.write(chunk); });
 *   const c = connect(server.port, '127.0.0.1');
 *   c.write('hello\n');
 *   console.log(c.readLine()); // 'hello'
 *   c.close();
 *   server.close();
 * });
 * ```
 */
import type { Engine } from '../engine';
import { ConnectionHandler, listenOn, ListenOptions, Server, connect } from './tcp';
import { bind } from './udp';

export { Connection } from './connection';
export { Server, connect } from './tcp';
export type { ConnectOptions, ListenOptions, ConnectionHandler } from './tcp';
export { UdpSocket, bind } from './udp';
export type { BindOptions, Datagram } from './udp';

/**
 * Inside a task: listens and returns the server once it is listening. A
 * handler runs per connection in a task of its own (on the caller's engine).
 */
export function listen(portOrOptions: number | ListenOptions, handler?: ConnectionHandler): Server {
  return listenOn(undefined, portOrOptions, handler);
}

/** What `ko.net` offers: the functions of `korutin/net`, handler tasks on that engine. */
export interface Net {
  listen(portOrOptions: number | ListenOptions, handler?: ConnectionHandler): Server;
  connect: typeof connect;
  bind: typeof bind;
}

/** The `net` namespace of an engine. @internal */
export function netFor(engine: Engine): Net {
  return {
    listen: (portOrOptions, handler) => listenOn(engine, portOrOptions, handler),
    connect,
    bind,
  };
}
