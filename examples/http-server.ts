// A minimal HTTP/1.1 server written blocking-style (keep-alive, Content-Length bodies).
//   node dist/examples/http-server.js [port]      (default 8080; Ctrl-C stops it)
//   curl -s http://127.0.0.1:8080/hello     or     node dist/examples/http-client.js
import { createEngine } from '../ts';
import type { Connection } from '../ts/net';

const ko = createEngine();
const port = Number(process.argv[2] ?? 8080);

/** Serves requests on one connection until the client closes it (or idles 30 s). */
function serve(conn: Connection): void {
  for (;;) {
    const requestLine = conn.readLine(30_000);
    if (requestLine === null || requestLine === '') return;
    const [method, target] = requestLine.split(' ');
    const headers = new Map<string, string>();
    for (let line = conn.readLine(5000); line; line = conn.readLine(5000)) {
      const at = line.indexOf(':');
      headers.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim());
    }
    const body = conn.readExactly(Number(headers.get('content-length') ?? 0), 5000);
    const text = `${method} ${target} from ${conn.remoteAddress}:${conn.remotePort}, ${body.length} body bytes\n`;
    conn.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    if (headers.get('connection') === 'close') return;
  }
}

ko.spawn(() => {
  const server = ko.net.listen({ port, host: '127.0.0.1' }, serve);
  console.log(`http://127.0.0.1:${server.port}/`);
  process.once('SIGINT', () => server.close());
});
