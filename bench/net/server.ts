/**
 * The echo server under test, in a child process of bench/net/index.ts:
 * `korutin` (blocking-style, a task per connection) or `async` (the same
 * server with async/await on node:net). Sends its port over IPC, then
 * answers 'stats' with its RSS and open connections; 'exit' ends it.
 */
import { once } from 'events';
import * as net from 'net';
import { BackendName, createEngine } from '../../ts';

const kind = process.argv[2];
const backend = (process.argv[3] ?? 'auto') as BackendName | 'auto';
let live = 0;

function ready(port: number): void {
  process.send!({ port });
  process.on('message', (m: unknown) => {
    if (m === 'stats') {
      (globalThis as { gc?: () => void }).gc?.();
      process.send!({ rss: process.memoryUsage().rss, live });
    } else if (m === 'exit') process.exit(0);
  });
}

if (kind === 'korutin') {
  const ko = createEngine({ backend });
  ko.spawn(() => {
    const server = ko.net.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, (conn) => {
      live++;
      try {
        for (const chunk of conn) conn.write(chunk);
      } finally {
        live--;
      }
    });
    ready(server.port);
  });
} else if (kind === 'async') {
  const server = net.createServer({ noDelay: true }, (socket) => {
    void (async () => {
      live++;
      try {
        for await (const chunk of socket) {
          if (!socket.write(chunk as Buffer)) await once(socket, 'drain');
        }
        socket.end();
      } catch {
        socket.destroy();
      } finally {
        live--;
      }
    })();
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => ready((server.address() as net.AddressInfo).port));
} else {
  console.error('usage: server.js korutin|async [backend]');
  process.exit(2);
}
