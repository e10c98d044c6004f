/**
 * korutin/net on every backend: TCP echo through backpressure, 1,000
 * concurrent connections with exact byte totals, every timeout, cancel in
 * every blocking call (counting socket handles), Node's error codes, TLS,
 * UDP. Loopback (127.0.0.1) only; every wait has a timeout.
 */
import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import * as net from 'net';
import { CancelledError, KorutinError, Task, WaitGroup } from '../ts';
import { connect, Connection, listen, bind } from '../ts/net';
import { codeOf, engineFor, testBackends, until } from './helpers';
import { freePort, socketHandles, TLS_CERT, TLS_KEY } from './net-helpers';

const HOST = '127.0.0.1';
/** Every read and accept in these tests gives up after this (ms), so nothing hangs. */
const T = 10_000;

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

function echo(conn: Connection): void {
  for (let b = conn.read(65536, T); b !== null; b = conn.read(65536, T)) conn.write(b);
  conn.end();
}

for (const backend of testBackends()) {
  describe(`net [${backend}]`, () => {
    const ko = engineFor(backend);
    const run = <R>(fn: () => R): Promise<R> => ko.spawn(fn).toPromise();

    it('echo: 1 MiB round trip through backpressure', async () => {
      const data = Buffer.alloc(1 << 20);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
      const out = await run(() => {
        let serverPauses = 0;
        // a 4 KiB buffer: the server's socket is paused whenever its reader falls behind
        const server = listen({ port: 0, host: HOST, highWaterMark: 4096 }, (conn) => {
          try {
            echo(conn);
          } finally {
            serverPauses = conn.pauses;
          }
        });
        const c = connect(server.port, HOST, { timeoutMs: T, highWaterMark: 4096 });
        try {
          const reader = ko.spawn(() => {
            const parts: Buffer[] = [];
            for (let b = c.read(65536, T); b !== null; b = c.read(65536, T)) parts.push(b);
            return Buffer.concat(parts);
          });
          for (let off = 0; off < data.length; off += 256 << 10) c.write(data.subarray(off, off + (256 << 10)));
          c.end();
          const got = reader.join(T);
          const until2 = Date.now() + T;
          while (server.tasks.length > 0 && Date.now() < until2) ko.sleep(1);
          return { got, serverPauses, clientPauses: c.pauses };
        } finally {
          c.close();
          server.close();
        }
      });
      assert.equal(out.got.length, data.length);
      assert.equal(md5(out.got), md5(data));
      assert.ok(out.serverPauses > 0, 'the server paused its socket while its reader was behind');
      assert.ok(out.clientPauses > 0, 'the client paused its socket while its reader was behind');
    });

    it('1,000 concurrent connections: exact byte totals, each handler task named after its peer', async function () {
      this.timeout(110_000);
      const N = 1000;
      const r = await run(() => {
        let live = 0;
        let most = 0;
        let serverBytes = 0;
        const names = new Set<string>();
        const server = listen({ port: 0, host: HOST, backlog: 2048 }, (conn) => {
          live++;
          most = Math.max(most, live);
          names.add(ko.current()!.name);
          try {
            for (let b = conn.read(65536, 60_000); b !== null; b = conn.read(65536, 60_000)) {
              serverBytes += b.length;
              conn.write(b);
            }
          } finally {
            live--;
          }
        });
        const opened = new WaitGroup();
        opened.add(N);
        const gate = new WaitGroup();
        gate.add(1);
        const clients: Task<number>[] = [];
        const peers = new Set<string>();
        for (let i = 0; i < N; i++) {
          clients.push(ko.spawn(() => {
            const size = 100 + (i % 300);
            const c = connect(server.port, HOST, { timeoutMs: 60_000 });
            try {
              peers.add(`${HOST}:${c.localPort}`);
              opened.done();
              gate.wait(60_000); // every connection is open before any byte moves
              const msg = Buffer.alloc(size, i & 0xff);
              c.write(msg);
              const back = c.readExactly(size, 60_000);
              assert.ok(back.equals(msg));
              c.end();
              assert.equal(c.read(16, 60_000), null);
              return size;
            } finally {
              c.close();
            }
          }));
        }
        opened.wait(60_000);
        gate.done();
        let clientBytes = 0;
        for (const t of clients) clientBytes += t.join(60_000);
        const until2 = Date.now() + 10_000;
        while (server.tasks.length > 0 && Date.now() < until2) ko.sleep(5);
        server.close();
        return { clientBytes, serverBytes, most, names, peers, left: server.tasks.length };
      });
      let expected = 0;
      for (let i = 0; i < N; i++) expected += 100 + (i % 300);
      assert.equal(r.clientBytes, expected);
      assert.equal(r.serverBytes, expected);
      assert.equal(r.left, 0);
      assert.ok(r.most > 1, 'connections were served concurrently');
      assert.deepEqual([...r.names].sort(), [...r.peers].sort());
    });

    it('readLine, readExactly, read(maxBytes) and the end of the stream', async () => {
      const r = await run(() => {
        const server = listen({ port: 0, host: HOST }, (conn) => {
          conn.write('one\r\ntwo\nthr');
          ko.sleep(5);
          conn.write('ee\nlast');
          conn.end();
        });
        const c = connect(server.port, HOST);
        try {
          const lines = [c.readLine(T), c.readLine(T), c.readLine(T)];
          const two = c.readExactly(2, T).toString();
          let eof: unknown;
          try {
            c.readExactly(10, T);
          } catch (e) {
            eof = e;
          }
          const rest = c.read(1, T)!.toString() + c.read(100, T)!.toString();
          return { lines, two, eof, rest, end: c.read(10, T), endLine: c.readLine(T) };
        } finally {
          c.close();
          server.close();
        }
      });
      assert.deepEqual(r.lines, ['one', 'two', 'three']);
      assert.equal(r.two, 'la');
      assert.equal(codeOf(r.eof), 'ERR_UNEXPECTED_EOF');
      assert.equal(r.rest, 'st');
      assert.equal(r.end, null);
      assert.equal(r.endLine, null);
    });

    it('readExactly and readLine past the high-water mark; EADDRINUSE keeps its code', async () => {
      const big = Buffer.alloc(300_000, 0x41);
      const r = await run(() => {
        const server = listen({ port: 0, host: HOST }, (conn) => {
          conn.write(big);
          conn.write(Buffer.concat([big, Buffer.from('\n')]));
          conn.end();
        });
        const c = connect(server.port, HOST, { highWaterMark: 1024 });
        let inUse: unknown;
        try {
          listen({ port: server.port, host: HOST });
        } catch (e) {
          inUse = e;
        }
        try {
          const exact = c.readExactly(big.length, T);
          const line = c.readLine(T);
          return { exact: exact.equals(big), line: line?.length, end: c.read(1, T), inUse: codeOf(inUse) };
        } finally {
          c.close();
          server.close();
        }
      });
      assert.deepEqual(r, { exact: true, line: big.length, end: null, inUse: 'EADDRINUSE' });
    });

    it('ko.tasks() says what a task waits on: read, accept, recvFrom', async () => {
      const r = await run(() => {
        const server = listen({ port: 0, host: HOST });
        const u = bind({ port: 0, address: HOST });
        const acceptor = ko.spawn(() => server.accept(T));
        const receiver = ko.spawn(() => u.recvFrom(T));
        const c = connect(server.port, HOST);
        const reader = ko.spawn(() => c.read(10, T));
        let acceptor2: Task<unknown> | undefined;
        try {
          const until2 = Date.now() + T;
          while ([receiver, reader].some((t) => t.state !== 'blocked') && Date.now() < until2) ko.sleep(1);
          const acceptorDone = acceptor.done;
          acceptor2 = ko.spawn(() => server.accept(T));
          while (acceptor2.state !== 'blocked' && Date.now() < until2) ko.sleep(1);
          ko.sleep(5);
          const info = new Map(ko.tasks().map((i) => [i.id, i.waitingOn]));
          return {
            reader: info.get(reader.id),
            receiver: info.get(receiver.id),
            acceptor: info.get(acceptor2.id),
            acceptorDone,
            expected: { reader: `read ${HOST}:${server.port}`, receiver: `recvFrom udp ${HOST}:${u.port}`, acceptor: `accept ${HOST}:${server.port}` },
          };
        } finally {
          for (const t of [acceptor, receiver, reader, acceptor2]) t?.cancel();
          c.close();
          u.close();
          server.close();
        }
      });
      assert.equal(r.reader, r.expected.reader);
      assert.equal(r.receiver, r.expected.receiver);
      assert.equal(r.acceptor, r.expected.acceptor);
      assert.equal(r.acceptorDone, true, 'the connect was accepted');
    });

    it('accept(): a server without a handler; address() as node:net', async () => {
      const r = await run(() => {
        const server = listen({ port: 0, host: HOST });
        try {
          const addr = server.address() as net.AddressInfo;
          const client = ko.spawn(() => {
            const c = connect(addr.port, HOST);
            try {
              c.write('ping\n');
              return c.readLine(T);
            } finally {
              c.close();
            }
          });
          const conn = server.accept(T);
          try {
            const line = conn.readLine(T);
            conn.write(`${line} pong\n`);
            return { addr, reply: client.join(T), peer: conn.remoteAddress };
          } finally {
            conn.close();
          }
        } finally {
          server.close();
        }
      });
      assert.equal(r.addr.address, HOST);
      assert.equal(r.addr.family, 'IPv4');
      assert.equal(r.reply, 'ping pong');
      assert.equal(r.peer, HOST);
    });

    it('every timeout throws ERR_TIMEOUT and leaves the connection usable', async function () {
      this.timeout(60_000);
      const r = await run(() => {
        const codes: Record<string, string | undefined> = {};
        const server = listen({ port: 0, host: HOST });
        const c = connect(server.port, HOST, { timeoutMs: T });
        const s = server.accept(T);
        try {
          const attempt = (name: string, fn: () => unknown): void => {
            try {
              fn();
              codes[name] = 'no error';
            } catch (e) {
              codes[name] = codeOf(e);
            }
          };
          attempt('read', () => c.read(100, 20));
          s.write('ab');
          attempt('readExactly', () => c.readExactly(4, 20));
          s.write('c\n');
          const line = c.readLine(T); // 'abc'
          s.write('de');
          attempt('readLine partial', () => c.readLine(20));
          s.write('f');
          const exact = c.readExactly(3, T).toString(); // 'def': nothing was lost
          attempt('accept', () => server.accept(20));
          // the peer reads nothing: a big write waits for a drain that does not come
          const big = Buffer.alloc(16 << 20, 1);
          attempt('write', () => c.write(big, 50));
          let drained = 0;
          const drainer = ko.spawn(() => {
            while (drained < big.length) drained += s.read(Math.min(1 << 20, big.length - drained), T)!.length;
          });
          c.write('x', T); // waits until the big write drained, then goes through
          drainer.join(T);
          const x = s.read(1, T)!.toString();
          return { codes, line, exact, drained, x };
        } finally {
          c.close();
          s.close();
          server.close();
        }
      });
      assert.deepEqual(r.codes, {
        read: 'ERR_TIMEOUT',
        readExactly: 'ERR_TIMEOUT',
        'readLine partial': 'ERR_TIMEOUT',
        accept: 'ERR_TIMEOUT',
        write: 'ERR_TIMEOUT',
      });
      assert.equal(r.line, 'abc');
      assert.equal(r.exact, 'def');
      assert.equal(r.drained, 16 << 20);
      assert.equal(r.x, 'x');
    });

    it('connect timeout: ERR_TIMEOUT (a TLS handshake nobody answers); recvFrom timeout', async () => {
      const before = socketHandles();
      const r = await run(() => {
        const silent = listen({ port: 0, host: HOST }, (conn) => {
          while (conn.read(65536, T) !== null); // reads the ClientHello, answers nothing
        });
        const u = bind({ port: 0, address: HOST });
        try {
          let connectCode: string | undefined;
          try {
            connect(silent.port, HOST, { timeoutMs: 50, tls: { rejectUnauthorized: false } });
          } catch (e) {
            connectCode = codeOf(e);
          }
          let recvCode: string | undefined;
          try {
            u.recvFrom(20);
          } catch (e) {
            recvCode = codeOf(e);
          }
          return { connectCode, recvCode };
        } finally {
          u.close();
          silent.close();
        }
      });
      assert.deepEqual(r, { connectCode: 'ERR_TIMEOUT', recvCode: 'ERR_TIMEOUT' });
      await until(() => socketHandles() <= before, 'sockets to close', T);
    });

    it('cancel while blocked in connect, accept, read, readExactly, readLine, write, recvFrom: finally runs, no socket leaks', async function () {
      this.timeout(60_000);
      const before = socketHandles();
      const results = await run(() => {
        const out: Record<string, { error: string | undefined; finallyRan: boolean }> = {};
        const silent = listen({ port: 0, host: HOST }, (conn) => {
          while (conn.read(65536, T) !== null); // reads the ClientHello, answers nothing
        });
        const server = listen({ port: 0, host: HOST });
        // connect blocks in a TLS handshake nobody answers
        const kinds = (['connect', 'accept', 'read', 'readExactly', 'readLine', 'write', 'recvFrom'] as const);
        try {
          for (const kind of kinds) {
            const rec = { error: undefined as string | undefined, finallyRan: false };
            out[kind] = rec;
            let peer: Connection | null = null;
            const t = ko.spawn(() => {
              let c: Connection | null = null;
              const u = kind === 'recvFrom' ? bind({ port: 0, address: HOST }) : null;
              try {
                if (kind === 'connect') c = connect(silent.port, HOST, { tls: { rejectUnauthorized: false }, timeoutMs: T });
                else if (kind === 'accept') server.accept(T);
                else if (kind === 'recvFrom') u!.recvFrom(T);
                else {
                  c = connect(server.port, HOST, { timeoutMs: T });
                  if (kind === 'read') c.read(10, T);
                  else if (kind === 'readExactly') c.readExactly(10, T);
                  else if (kind === 'readLine') c.readLine(T);
                  else c.write(Buffer.alloc(32 << 20), T);
                }
              } catch (e) {
                rec.error = codeOf(e);
                throw e;
              } finally {
                rec.finallyRan = true;
                c?.close();
                u?.close();
              }
            });
            if (kind !== 'connect' && kind !== 'accept' && kind !== 'recvFrom') peer = server.accept(T);
            if (kind === 'readExactly' || kind === 'readLine') peer!.write('abc');
            const until2 = Date.now() + T;
            while (t.state !== 'blocked' && Date.now() < until2) ko.sleep(1);
            ko.sleep(20); // let it settle into its wait
            t.cancel('test');
            try {
              t.join(T);
            } catch (e) {
              // Joining a cancelled task: ERR_JOINED_CANCELLED, with the task's CancelledError as the cause.
              assert.ok((e as KorutinError).code === 'ERR_JOINED_CANCELLED' && (e as Error).cause instanceof CancelledError, `${kind}: ${String(e)}`);
            }
            peer?.close();
          }
        } finally {
          server.close();
          silent.close();
        }
        return out;
      });
      for (const [kind, r] of Object.entries(results)) {
        assert.deepEqual(r, { error: 'ERR_CANCELLED', finallyRan: true }, kind);
      }
      await until(() => socketHandles() <= before, 'every socket and listener to close', T);
    });

    it('cancelling handler tasks closes their connections; close() stops accepting', async () => {
      const before = socketHandles();
      const r = await run(() => {
        let finallies = 0;
        const server = listen({ port: 0, host: HOST }, (conn) => {
          try {
            conn.read(10, T);
          } finally {
            finallies++;
          }
        });
        const c1 = connect(server.port, HOST);
        const c2 = connect(server.port, HOST);
        const until2 = Date.now() + T;
        while (server.tasks.length < 2 && Date.now() < until2) ko.sleep(1);
        const handlers = server.tasks.length;
        for (const t of server.tasks) t.cancel();
        const end1 = c1.read(10, T);
        const end2 = c2.read(10, T);
        server.close();
        let refused: string | undefined;
        try {
          connect(server.port, HOST, { timeoutMs: T }).close();
        } catch (e) {
          refused = codeOf(e);
        }
        c1.close();
        c2.close();
        let acceptCode: string | undefined;
        const acceptor = listen({ port: 0, host: HOST });
        const blocked = ko.spawn(() => acceptor.accept(T));
        ko.sleep(10);
        acceptor.close();
        try {
          blocked.join(T);
        } catch (e) {
          acceptCode = codeOf(e);
        }
        return { handlers, finallies, end1, end2, refused, acceptCode };
      });
      assert.deepEqual(r, { handlers: 2, finallies: 2, end1: null, end2: null, refused: 'ECONNREFUSED', acceptCode: 'ERR_SOCKET_CLOSED' });
      await until(() => socketHandles() <= before, 'sockets to close', T);
    });

    it('handler errors: onError gets them; without it a cancel or a socket error ends only that connection', async () => {
      const r = await run(() => {
        const seen: string[] = [];
        const a = listen({ port: 0, host: HOST, onError: (e, conn) => seen.push(`${(e as Error).message} ${conn.remotePort > 0}`) }, () => {
          throw new Error('bad request');
        });
        const b = listen({ port: 0, host: HOST }, (conn) => {
          conn.read(10, T); // the peer resets: ECONNRESET, dropped
        });
        try {
          const c = connect(a.port, HOST);
          const endA = c.read(10, T);
          c.close();
          const d = connect(b.port, HOST);
          const until2 = Date.now() + T;
          while (b.tasks.length === 0 && Date.now() < until2) ko.sleep(1);
          const handler = b.tasks[0];
          d.socket.resetAndDestroy();
          let outcome: string;
          try {
            handler.join(T);
            outcome = 'returned';
          } catch (e) {
            outcome = String(e);
          }
          return { seen, endA, outcome, state: handler.state };
        } finally {
          a.close();
          b.close();
        }
      });
      assert.deepEqual(r, { seen: ['bad request true'], endA: null, outcome: 'returned', state: 'done' });
    });

    it("a refused connect and a reset keep Node's codes; use after close() is ERR_SOCKET_CLOSED", async () => {
      const port = await freePort();
      const r = await run(() => {
        let refused: unknown;
        try {
          connect(port, HOST, { timeoutMs: T });
        } catch (e) {
          refused = e;
        }
        const server = listen({ port: 0, host: HOST });
        const c = connect(server.port, HOST);
        const s = server.accept(T);
        try {
          s.socket.resetAndDestroy();
          let reset: unknown;
          try {
            c.read(10, T);
          } catch (e) {
            reset = e;
          }
          c.close();
          let closed: string | undefined;
          try {
            c.read(10, T);
          } catch (e) {
            closed = codeOf(e);
          }
          let closedWrite: string | undefined;
          try {
            c.write('x');
          } catch (e) {
            closedWrite = codeOf(e);
          }
          return { refused, reset, closed, closedWrite };
        } finally {
          s.close();
          server.close();
        }
      });
      assert.equal(codeOf(r.refused), 'ECONNREFUSED');
      assert.ok(!(r.refused instanceof KorutinError));
      assert.equal(codeOf(r.reset), 'ECONNRESET');
      assert.equal(r.closed, 'ERR_SOCKET_CLOSED');
      assert.equal(r.closedWrite, 'ERR_SOCKET_CLOSED');
    });

    it('TLS through the same API', async () => {
      const r = await run(() => {
        const server = listen({ port: 0, host: HOST, tls: { key: TLS_KEY, cert: TLS_CERT } }, (conn) => {
          const line = conn.readLine(T);
          conn.write(`secure ${line} ${(conn.socket as import('tls').TLSSocket).encrypted}\n`);
        });
        const c = connect(server.port, HOST, { timeoutMs: T, tls: { ca: TLS_CERT, servername: 'localhost' } });
        try {
          c.write('hello\n');
          return c.readLine(T);
        } finally {
          c.close();
          server.close();
        }
      });
      assert.equal(r, 'secure hello true');
    });

    it('UDP: bind, sendTo, recvFrom', async () => {
      const r = await run(() => {
        const a = bind({ port: 0, address: HOST });
        const b = bind(0);
        try {
          b.sendTo('ping', a.port, HOST);
          const d = a.recvFrom(T);
          a.sendTo(Buffer.from(`${d.data.toString()} pong`), d.port, d.address);
          const e = b.recvFrom(T);
          return { got: d.data.toString(), back: e.data.toString(), from: e.port === a.port };
        } finally {
          a.close();
          b.close();
        }
      });
      assert.deepEqual(r, { got: 'ping', back: 'ping pong', from: true });
    });

    it('blocking calls outside a task throw ERR_NOT_IN_COROUTINE; bad arguments ERR_INVALID_ARGUMENT', async () => {
      assert.throws(() => connect(80, HOST), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      assert.throws(() => listen(0), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      assert.throws(() => bind(0), (e) => codeOf(e) === 'ERR_NOT_IN_COROUTINE');
      const codes = await run(() => {
        const out: (string | undefined)[] = [];
        const tryIt = (fn: () => unknown): void => {
          try {
            fn();
            out.push('ok');
          } catch (e) {
            out.push(codeOf(e));
          }
        };
        tryIt(() => connect(70000, HOST));
        tryIt(() => connect(80, HOST, { timeoutMs: -1 }));
        tryIt(() => listen(0, 'not a function' as never));
        const server = ko.net.listen(0, () => undefined);
        try {
          tryIt(() => server.accept(10));
          const c = ko.net.connect(server.port, HOST);
          tryIt(() => c.read(0));
          tryIt(() => c.readExactly(-1));
          tryIt(() => c.write(42 as never));
          c.close();
        } finally {
          server.close();
        }
        return out;
      });
      assert.deepEqual(codes, Array(7).fill('ERR_INVALID_ARGUMENT'));
    });
  });
}
