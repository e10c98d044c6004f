/** Shared by the net suites: socket handle counts, the TLS fixture, a free port. */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';

const SOCKET_KINDS = new Set(['TCPSocketWrap', 'TCPServerWrap', 'TLSWrap', 'UDPWrap', 'PipeWrap']);

/** Open socket and listener handles of this process. */
export function socketHandles(): number {
  return process.getActiveResourcesInfo().filter((k) => SOCKET_KINDS.has(k)).length;
}

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures', 'tls');
/** A self-signed certificate for localhost / 127.0.0.1. */
export const TLS_KEY = fs.readFileSync(path.join(fixtures, 'key.pem'));
export const TLS_CERT = fs.readFileSync(path.join(fixtures, 'cert.pem'));

/** A port nobody listens on (it was free a moment ago). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
