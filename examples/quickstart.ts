// The README's 30-second example, runnable: node dist/examples/quickstart.js
import { createEngine } from '../ts';

const ko = createEngine({ backend: 'auto', stackSize: '256k' });

// A plain function that suspends from deep inside a synchronous call chain.
function readAll(source: () => string | undefined): string[] {
  const out: string[] = [];
  for (let line = source(); line !== undefined; line = source()) out.push(line);
  return out;
}

const co = ko.create(() => readAll(() => ko.yield<string | undefined>('need a line')));
console.log(co.resume());
console.log(co.resume('first'));
console.log(co.resume('second'));
console.log(co.resume(undefined));
