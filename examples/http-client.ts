// A minimal HTTP/1.1 client written blocking-style: three requests on one kept-alive connection.
//   node dist/examples/http-client.js [port]      (default 8080, against examples/http-server.js)
import { createEngine } from '../ts';
import type { Connection } from '../ts/net';

const ko = createEngine();
const port = Number(process.argv[2] ?? 8080);

/** Sends one request and reads its response (status, headers, Content-Length body). */
function request(conn: Connection, method: string, target: string, body = ''): { status: number; body: string } {
  conn.write(`${method} ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const statusLine = conn.readLine(5000);
  if (statusLine === null) throw new Error('the server closed the connection');
  let length = 0;
  for (let line = conn.readLine(5000); line; line = conn.readLine(5000)) {
    const [name, value] = line.split(':');
    if (name.trim().toLowerCase() === 'content-length') length = Number(value);
  }
  return { status: Number(statusLine.split(' ')[1]), body: conn.readExactly(length, 5000).toString() };
}

ko.spawn(() => {
  const conn = ko.net.connect(port, '127.0.0.1', { timeoutMs: 5000 });
  try {
    for (const [method, target, body] of [['GET', '/hello'], ['POST', '/echo', 'some data'], ['GET', '/bye']]) {
      const r = request(conn, method, target, body);
      process.stdout.write(`${r.status} ${r.body}`);
    }
  } finally {
    conn.close();
  }
}).catch((e) => {
  console.error(String(e));
  process.exitCode = 1;
});
