// coro++'s echo client load, blocking-style: C connections x N transactions of B bytes.
//   node dist/examples/echo-client.js [port] [connections] [transactions] [bytes]
//   (default: 9001 100 100 100, against examples/echo-server.js)
import { createEngine, Task } from '../ts';

const ko = createEngine();
const [port, conns, txns, bytes] = [9001, 100, 100, 100].map((d, i) => Number(process.argv[2 + i] ?? d));

ko.spawn(() => {
  const start = process.hrtime.bigint();
  const clients: Task<number>[] = [];
  for (let c = 0; c < conns; c++) {
    clients.push(ko.spawn(() => {
      const conn = ko.net.connect(port, '127.0.0.1', { timeoutMs: 5000 });
      try {
        const msg = Buffer.alloc(bytes, c & 0xff);
        for (let t = 0; t < txns; t++) {
          conn.write(msg);
          conn.readExactly(bytes, 5000); // waits for the echo: this task only
        }
        return txns;
      } finally {
        conn.close();
      }
    }));
  }
  let done = 0;
  for (const t of clients) done += t.join();
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${done} transactions of ${bytes} bytes on ${conns} connections in ${s.toFixed(3)} s: ${Math.round(done / s)}/s`);
}).catch((e) => {
  console.error(String(e));
  process.exitCode = 1;
});
