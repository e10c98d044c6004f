#!/usr/bin/env node
// Feeds binding.gyp from engine/sources.json, so that node-gyp and CMake
// build the same files. Usage (from gyp): node engine/node/configure.js
// sources|selfcheck|bench|defines|benchDefines|libraries|lto [TARGET_ARCH]
// TARGET_ARCH is gyp's target_arch (x64, ia32, arm64, arm; node-gyp's
// --arch), for cross builds; it defaults to this Node's arch.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..', '..');
const list = JSON.parse(fs.readFileSync(path.join(root, 'engine', 'sources.json'), 'utf8'));

const targetArch = process.argv[3] || process.arch;

// The asm switch file for the target (backends/asm/arch.txt), or null.
function asmFile() {
  const format = { win32: 'pe', darwin: 'macho' }[process.platform] || 'elf';
  const rows = fs.readFileSync(path.join(root, 'backends', 'asm', 'arch.txt'), 'utf8')
    .split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trim().split(/\s+/));
  const row = rows.find(([, , f, , node]) => f === format && node === targetArch);
  return row ? `backends/asm/${row[1]}` : null;
}

// Boost.Context from the system: the header and the static library, for
// the target: its multiarch directory, and the plain ones for a native build.
function boostLibrary() {
  const multiarch = { x64: 'x86_64-linux-gnu', ia32: 'i386-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf' };
  const dirs = [`/usr/lib/${multiarch[targetArch]}`];
  if (targetArch === process.arch) dirs.push('/usr/lib64', '/usr/lib', '/usr/local/lib');
  const header = ['/usr/include', '/usr/local/include'].some((d) =>
    fs.existsSync(path.join(d, 'boost/context/detail/fcontext.hpp')));
  if (!header || process.env.KORUTIN_WITH_BOOST === '0') return null;
  for (const d of dirs) {
    const lib = path.join(d, 'libboost_context.a');
    if (fs.existsSync(lib)) return lib;
  }
  return null;
}

// Link-time optimization for the addon, whose hot paths cross its files (a
// blocking op goes from the scheduler binding through the bridge into the
// engine): inlined across them, each switch returns through fewer frames,
// and every return after a stack switch is a mispredicted one (README,
// Performance). GCC only: clang's LTO needs a linker plugin a system may
// not have. KORUTIN_LTO=0: none.
function lto() {
  if (process.env.KORUTIN_LTO === '0' || process.platform !== 'linux') return [];
  const cxx = (process.env.CXX || 'c++').trim().split(/\s+/);
  const r = spawnSync(cxx[0], [...cxx.slice(1), '--version'], { encoding: 'utf8' });
  if (r.status !== 0 || !/Free Software Foundation/.test(r.stdout)) return [];
  // =auto (GCC 10 and later): the link's jobs run in parallel, quietly
  const major = Number((/(\d+)\.\d+\.\d+/.exec(r.stdout.split('\n')[0]) || [])[1]);
  return [major >= 10 ? '-flto=auto' : '-flto'];
}

const asm = asmFile();
const boost = boostLibrary();
const core = [...list.engine, ...list.backends, ...(asm ? [asm] : [])];
const out = {
  sources: [...core, ...list.sched],
  // korutin-selfcheck, the native suite that `korutin selfcheck` runs
  selfcheck: [...core, ...list.selfcheck],
  // korutin-bench, the native benchmark that `korutin bench` runs
  bench: [...core, ...list.bench],
  benchDefines: [
    ...(boost ? ['KO_BENCH_FCONTEXT'] : []),
    ...(process.platform === 'linux' ? ['KO_BENCH_UCONTEXT'] : []),
  ],
  defines: [
    ...(asm ? ['KO_ASM_SWITCH'] : []),
    ...(process.platform === 'linux' ? ['KO_HAVE_UCONTEXT'] : []),
    ...(boost ? ['KO_HAVE_BOOST'] : []),
  ],
  libraries: boost ? [boost] : [],
};
// asked for on its own: it runs the compiler
Object.defineProperty(out, 'lto', { get: lto, enumerable: true });
const what = process.argv[2];
if (!(what in out)) {
  console.error(`usage: configure.js ${Object.keys(out).join('|')}`);
  process.exit(2);
}
console.log(out[what].join(' '));
