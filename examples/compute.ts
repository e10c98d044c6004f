// CPU work off the event loop: 8 tasks each run fib(32) on the worker pool,
// while a ping task keeps answering every 10 ms.
//   node dist/examples/compute.js
import * as path from 'path';
import { createEngine, Task } from '../ts';

const ko = createEngine();
const jobs = path.join(__dirname, 'compute-jobs.js'); // absolute: workers load it themselves

ko.spawn(() => {
  let worst = 0;
  let stop = false;
  const ping = ko.spawn(() => {
    while (!stop) {
      const t0 = performance.now();
      ko.sleep(10);
      worst = Math.max(worst, performance.now() - t0 - 10);
    }
  }, { name: 'ping' });
  const t0 = performance.now();
  const tasks: Task<number>[] = [];
  for (let i = 0; i < 8; i++) tasks.push(ko.spawn(() => ko.compute<number>(jobs, 'fib', 32)));
  const results = tasks.map((t) => t.join());
  stop = true;
  ping.join();
  console.log(`8 x fib(32) = ${results[0]} in ${(performance.now() - t0).toFixed(0)} ms; ping's worst delay ${worst.toFixed(1)} ms`);
})
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => ko.close()); // optional: idle workers never keep the process alive
