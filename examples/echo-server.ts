// An echo server, blocking-style: one task per connection.
//   node dist/examples/echo-server.js [port]      (default 9001; Ctrl-C stops it)
import { createEngine } from '../ts';

const ko = createEngine();
const port = Number(process.argv[2] ?? 9001);

ko.spawn(() => {
  const server = ko.net.listen({ port, host: '127.0.0.1' }, (conn) => {
    // this runs in a task named after the peer, e.g. '127.0.0.1:50312'
    for (const chunk of conn) conn.write(chunk); // write() waits while the socket is full
  });
  console.log(`echo server on ${JSON.stringify(server.address())}`);
  process.once('SIGINT', () => server.close());
});
