// Runs under Node 14 with fibers@5 (see run.sh): node-fibers' own figures,
// for `korutin bench` to print beside korutin's. Prints one JSON line:
// { node, createNs, roundTripNs } (ns; the median of `reps` repetitions).
'use strict';
const path = require('path');
const dir = process.argv[2];
const n = Number(process.argv[3] || 100000);
const reps = Number(process.argv[4] || 5);
const Fiber = require(path.join(dir, 'node_modules', 'fibers'));

function ns(start) {
  const d = process.hrtime(start);
  return d[0] * 1e9 + d[1];
}
function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
const body = () => 1;
function create(count) {
  const t = process.hrtime();
  for (let i = 0; i < count; i++) Fiber(body).run();
  return ns(t) / count;
}
const looping = Fiber(() => {
  for (;;) Fiber.yield();
});
looping.run();
function roundTrip(count) {
  const t = process.hrtime();
  for (let i = 0; i < count; i++) looping.run();
  return ns(t) / count;
}
create(Math.min(n, 5000));
roundTrip(Math.min(n, 5000));
const c = [];
const r = [];
for (let i = 0; i < reps; i++) {
  c.push(create(n));
  r.push(roundTrip(n));
}
console.log(JSON.stringify({ node: process.version, createNs: median(c), roundTripNs: median(r) }));
