// Any async API called blocking-style with ko.sync: fs.promises, dns.promises and fetch.
//   node dist/examples/sync.js
// (fetch asks a server this example starts on 127.0.0.1, so it needs no network.)
import { promises as dns } from 'dns';
import { promises as fs } from 'fs';
import * as http from 'http';
import { createEngine } from '../ts';

const ko = createEngine();
const readFile = ko.sync(fs.readFile);
const lookup = ko.sync((host: string) => dns.lookup(host, { family: 4 }));
const get = ko.sync(async (url: string) => (await fetch(url)).text());

const server = http.createServer((_req, res) => res.end('hello from http\n')).listen(0, '127.0.0.1');

ko.spawn(() => {
  const text = readFile(__filename, 'utf8'); // only this task waits
  console.log(`read ${text.length} characters of ${__filename}`);
  console.log('localhost is', lookup('localhost').address);
  const { port } = server.address() as { port: number };
  process.stdout.write(get(`http://127.0.0.1:${port}/`));
  try {
    readFile('/no/such/file');
  } catch (e) {
    console.log('a rejection is thrown in the task:', (e as NodeJS.ErrnoException).code);
  }
})
  .toPromise()
  .finally(() => server.close());
