#!/usr/bin/env node
// bench-chart.js - draws docs/bench.svg from korutin-bench --json output.
//
//   node scripts/bench-chart.js BENCH.json [OUT.svg]
//
// Two panels: ns per switch (lower is better) for raw Boost jump_fcontext,
// the floor (a switch keeping no FP state, where measured) and the asm and
// boost backends (through the engine and raw), and round
// trips per second with 1,024 and 16,384 coroutines (higher is better).
// swapcontext and the futex handoff are two orders of magnitude slower: they
// are named in a note rather than drawn. No dependencies.
'use strict';
const fs = require('fs');

const [input, output = 'docs/bench.svg'] = process.argv.slice(2);
if (!input) {
  console.error('usage: node scripts/bench-chart.js BENCH.json [OUT.svg]');
  process.exit(2);
}
const r = JSON.parse(fs.readFileSync(input, 'utf8'));
const be = (name) => r.backends.find((b) => b.name === name) || {};
const ref = r.references_ns_per_switch;
const refRt = r.references_round_trips_per_s || {};

const ns = [
  ['raw Boost jump_fcontext', ref.jump_fcontext, '#888'],
  ['floor: a switch keeping no FP state', ref.switch_no_fp_state, '#ccc'],
  ['korutin asm (ko_resume/ko_yield)', be('asm').engine_ns_per_switch, '#1f77b4'],
  ['korutin asm, raw jump', be('asm').raw_ns_per_switch, '#6baed6'],
  ['korutin boost (ko_resume/ko_yield)', be('boost').engine_ns_per_switch, '#d62728'],
  ['korutin boost, raw jump', be('boost').raw_ns_per_switch, '#f4a3a3'],
].filter((x) => typeof x[1] === 'number');
const rt = [
  ['raw jump_fcontext, 1,024', refRt.jump_fcontext_1024, '#888'],
  ['raw jump_fcontext, 16,384', refRt.jump_fcontext_16384, '#bbb'],
  ['floor (no FP state), 1,024', refRt.switch_no_fp_state_1024, '#ccc'],
  ['floor (no FP state), 16,384', refRt.switch_no_fp_state_16384, '#ddd'],
  ['asm, 1,024 coroutines', be('asm').round_trips_per_s_1024, '#1f77b4'],
  ['asm, 16,384 coroutines', be('asm').round_trips_per_s_16384, '#6baed6'],
  ['boost, 1,024 coroutines', be('boost').round_trips_per_s_1024, '#d62728'],
  ['boost, 16,384 coroutines', be('boost').round_trips_per_s_16384, '#f4a3a3'],
].filter((x) => typeof x[1] === 'number').map(([l, v, c]) => [l, v / 1e6, c]);

const W = 760, LABEL = 260, BAR = 22, GAP = 8, PLOT = W - LABEL - 90;
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
let y = 0;
const out = [];
function panel(title, rows, unit, digits) {
  y += 28;
  out.push(`<text x="10" y="${y}" font-weight="bold">${esc(title)}</text>`);
  y += 10;
  const max = Math.max(...rows.map((x) => x[1]));
  for (const [label, v, color] of rows) {
    const w = Math.max(1, (v / max) * PLOT);
    out.push(`<text x="${LABEL - 8}" y="${y + BAR * 0.7}" text-anchor="end">${esc(label)}</text>`);
    out.push(`<rect x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${color}"/>`);
    out.push(`<text x="${(LABEL + w + 6).toFixed(1)}" y="${y + BAR * 0.7}">${v.toFixed(digits)} ${unit}</text>`);
    y += BAR + GAP;
  }
}
panel('ns per switch (a round trip is two) - lower is better', ns, 'ns', 1);
panel('round trips per second, round-robin (one resume + one yield) - higher is better', rt, 'M/s', 1);
y += 18;
const note = `korutin-bench ${r.korutin}, ${r.platform.os} ${r.platform.arch}, ${r.platform.cpus} CPUs, ` +
  `${r.statistic} of ${r.reps}; not drawn: swapcontext ${ref.swapcontext == null ? '-' : ref.swapcontext.toFixed(0)} ns, ` +
  `futex handoff ${ref.futex_handoff == null ? '-' : ref.futex_handoff.toFixed(0)} ns per switch`;
out.push(`<text x="10" y="${y}" font-size="11" fill="#555">${esc(note)}</text>`);
y += 12;
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" ` +
  `font-family="sans-serif" font-size="13">\n<rect width="100%" height="100%" fill="#fff"/>\n` +
  out.join('\n') + '\n</svg>\n';
fs.writeFileSync(output, svg);
console.log(`wrote ${output}`);
