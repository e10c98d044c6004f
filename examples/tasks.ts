// The README's scheduling example, runnable: node dist/examples/tasks.js
import { readFile } from 'fs/promises';
import { createEngine, Channel, select } from '../ts';

async function main(): Promise<void> {
  const ko = createEngine();

  const jobs = new Channel<number>(16); // 0 = rendezvous, n = buffered
  ko.spawn(() => {
    for (let i = 0; i < 100; i++) jobs.send(i);
    jobs.close();
  }, { name: 'producer' });
  const worker = ko.spawn(() => {
    let sum = 0;
    for (const j of jobs) sum += j;
    return sum;
  });
  console.log('sum', await worker); // 4950: a Task is awaitable outside coroutines

  const other = ko.spawn(() => {
    ko.sleep(50); // only this task waits
    const text = ko.await(readFile(__filename, 'utf8')); // a Promise, awaited in place
    const idle = new Channel<string>(0);
    const r = select([idle.recvCase(), ko.after(100)]); // fair among ready cases; here the timeout fires
    return { bytes: text.length, fired: r };
  });
  console.log(await other);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
