// Checks an installed korutin from inside the project that installed it
// (the current directory; test/package/run.sh sets it up): CommonJS and ESM
// imports of every entry point, a strict TypeScript consumer under three
// module resolutions, the CLI, every code block of the README, and what the
// package holds. Prints one line per check and "N passed, N failed".
// Environment: KORUTIN_REPO (the repository: its TypeScript, @types/node and
// acorn serve the checks), KORUTIN_PACKAGE_MODE (default, no-compiler,
// from-source).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const app = process.cwd();
const repo = process.env.KORUTIN_REPO;
const mode = process.env.KORUTIN_PACKAGE_MODE || 'default';
const pkgDir = path.join(app, 'node_modules', 'korutin');
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const results = [];
// Prebuilt binaries ship when scripts/prebuild.sh ran before `npm pack`; a
// tarball without them (a contributor's) builds from source at install.
const prebuilt = fs.existsSync(path.join(pkgDir, 'prebuilds'));
const sourceBuild = mode === 'from-source' || !prebuilt;
if (mode === 'no-compiler' && !prebuilt) {
  console.log('FAIL  the tarball holds no prebuilds (run bash scripts/prebuild.sh before packing)');
  process.exit(1);
}

function check(name, fn) {
  const t = Date.now();
  try {
    fn();
    results.push(true);
    console.log(`ok    ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    results.push(false);
    console.log(`FAIL  ${name}\n      ${String(e && e.stack ? e.stack : e).split('\n').join('\n      ')}`);
  }
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: app, encoding: 'utf8', timeout: 600_000, ...opts });
  const out = { status: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '' };
  if (opts.expectStatus !== undefined ? r.status !== opts.expectStatus : r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${out.stdout.slice(-2000)}\n${out.stderr.slice(-2000)}`);
  }
  return out;
}

const node = (args, opts) => run(process.execPath, args, opts);
const korutin = (args, opts) => run('npx', ['--no-install', 'korutin', ...args], opts);
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function write(file, text) {
  fs.mkdirSync(path.dirname(path.join(app, file)), { recursive: true });
  fs.writeFileSync(path.join(app, file), text);
}

// --- the addon -------------------------------------------------------------
check(`the addon is the ${sourceBuild ? 'source build' : 'prebuild'} for this Node`, () => {
  const file = require(require.resolve('node-gyp-build', { paths: [pkgDir] })).path(pkgDir);
  if (sourceBuild) assert(file.includes(`${path.sep}build${path.sep}Release${path.sep}`), `loads ${file}`);
  else {
    assert(file.includes(`${path.sep}prebuilds${path.sep}`), `loads ${file}, not a prebuild`);
    assert(file.endsWith(`.abi${process.versions.modules}.glibc.node`), `${file} is not for ABI ${process.versions.modules}`);
  }
  if (mode === 'no-compiler') assert(!fs.existsSync(path.join(pkgDir, 'build')), 'a build/ folder exists: something compiled');
});

check('an addon built for another Node refuses to load, naming both versions (ERR_BACKEND_UNAVAILABLE)', () => {
  const dir = path.join(pkgDir, 'prebuilds', `linux-${process.arch}`);
  const others = prebuilt ? fs.readdirSync(dir).filter((f) => f.endsWith('.node') && !f.includes(`.abi${process.versions.modules}.`)) : [];
  if (!others.length) {
    console.log('      (no addon for another Node in this tarball)');
    return;
  }
  for (const f of others) {
    const r = node(['-e', `try { require(${JSON.stringify(path.join(dir, f))}); console.log('loaded'); } catch (e) { console.log(e.code + ': ' + e.message); }`]);
    assert(r.stdout.startsWith('ERR_BACKEND_UNAVAILABLE: '), `${f}: ${r.stdout}${r.stderr}`);
    assert(r.stdout.includes(`runs in Node ${process.versions.node} (ABI ${process.versions.modules})`), `${f}: ${r.stdout}`);
  }
});

// --- imports ---------------------------------------------------------------
const BODY = `
const ko = createEngine();
const co = ko.create((x) => ko.yield(x + 1) * 2);
const a = co.resume(1), b = co.resume(5);
if (a.value !== 2 || a.done || b.value !== 10 || !b.done) throw new Error('create/resume: ' + JSON.stringify([a, b]));
let seen;
const f = Fiber(() => { seen = Fiber.yield(1); });
if (f.run() !== 1) throw new Error('Fiber.yield');
f.run('back');
if (seen !== 'back') throw new Error('Fiber.run(value)');
const fut = new Future();
fut.return(7);
if (fut.get() !== 7) throw new Error('Future');
`;
check("require('korutin'), 'korutin/fibers', 'korutin/future' (CommonJS)", () => {
  write('cjs.cjs', `const { createEngine } = require('korutin');
const Fiber = require('korutin/fibers');
const Future = require('korutin/future');
const { version } = require('korutin/package.json');
${BODY}
console.log('cjs ok', version);`);
  assert(node(['cjs.cjs']).stdout.includes(`cjs ok ${pkg.version}`), 'no output');
});
check("import from 'korutin', 'korutin/fibers', 'korutin/future' (ESM)", () => {
  write('esm.mjs', `import { createEngine, Channel, KorutinError } from 'korutin';
import Fiber from 'korutin/fibers';
import Future from 'korutin/future';
import * as ns from 'korutin';
if (typeof Channel !== 'function' || typeof KorutinError !== 'function' || ns.createEngine !== createEngine) throw new Error('named exports');
${BODY}
console.log('esm ok');`);
  assert(node(['esm.mjs']).stdout.includes('esm ok'), 'no output');
});

check("'korutin/net' (CommonJS and ESM), a blocking-style echo on 127.0.0.1", () => {
  const body = `const ko = createEngine();
ko.spawn(() => {
  const server = listen({ port: 0, host: '127.0.0.1' }, (c) => { for (const b of c) c.write(b); });
  const c = connect(server.port, '127.0.0.1', { timeoutMs: 5000 });
  c.write('hi\\n');
  const line = c.readLine(5000);
  c.close();
  server.close();
  if (line !== 'hi' || ko.net.connect !== connect) throw new Error('echo: ' + line);
}).then(() => console.log('net ok'), (e) => { console.error(e); process.exitCode = 1; });`;
  write('net.cjs', `const { createEngine } = require('korutin');\nconst { listen, connect } = require('korutin/net');\n${body}`);
  write('net.mjs', `import { createEngine } from 'korutin';\nimport { listen, connect } from 'korutin/net';\n${body}`);
  assert(node(['net.cjs']).stdout.includes('net ok'), 'cjs: no output');
  assert(node(['net.mjs']).stdout.includes('net ok'), 'esm: no output');
});

// --- a strict TypeScript consumer --------------------------------------------
const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
const TS_BODY = `
const ko: Engine = createEngine({ backend: 'auto', stackSize: '256k' });
const co = ko.create((x: number) => ko.yield<number>(x + 1) * 2);
const r: IteratorResult<unknown, number> = co.resume(1);
const ch = new Channel<number>(1);
const e: KorutinError | undefined = undefined;
const task: Task<number> = ko.spawn(() => 1);
const fiber = Fiber(() => Fiber.yield(1));
const future = new Future<number>();
export const used = [r, ch, e, task, fiber, future];
`;
for (const [resolution, module, file] of [
  ['node16', 'node16', 'consumer.mts'],
  ['nodenext', 'nodenext', 'consumer.mts'],
  ['bundler', 'esnext', 'consumer.ts'],
]) {
  check(`a strict TypeScript consumer compiles (moduleResolution ${resolution})`, () => {
    const dir = `ts-${resolution}`;
    write(`${dir}/${file}`, `import { createEngine, Channel, Engine, KorutinError, Task } from 'korutin';
import Fiber from 'korutin/fibers';
import Future from 'korutin/future';
${TS_BODY}`);
    const files = [file];
    if (resolution !== 'bundler') {
      // The require condition's types, from a CommonJS module.
      write(`${dir}/consumer.cts`, `import korutin = require('korutin');
import Fiber = require('korutin/fibers');
import Future = require('korutin/future');
export const used: [korutin.Engine, typeof Fiber, Future<number>] = [korutin.createEngine(), Fiber, new Future<number>()];
`);
      files.push('consumer.cts');
    }
    write(`${dir}/tsconfig.json`, JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'ES2022', module, moduleResolution: resolution,
        types: ['node'], typeRoots: [path.join(repo, 'node_modules', '@types')], skipLibCheck: false,
      },
      files,
    }));
    node([tsc, '-p', dir]);
  });
}

// --- the CLI ---------------------------------------------------------------
check('npx korutin --version prints the package version', () => {
  assert(korutin(['--version']).stdout.trim() === pkg.version, 'wrong version');
  const j = JSON.parse(korutin(['--version', '--json']).stdout);
  assert(j.version === pkg.version && j.schemaVersion === 1, 'json version');
});
check('npx korutin help exits 0; a usage error exits 2', () => {
  assert(/korutin selfcheck/.test(korutin(['help']).stdout), 'no usage');
  const r = korutin(['frobnicate'], { expectStatus: 2 });
  assert(/unknown command 'frobnicate'/.test(r.stderr), r.stderr);
});
check('npx korutin selfcheck passes, native suite included', () => {
  const r = korutin(['selfcheck']);
  assert(/self-check passed/.test(r.stdout), r.stdout);
  assert(!/korutin-selfcheck is neither built nor prebuilt/.test(r.stdout), 'the native suite did not run');
});
check('npx korutin selfcheck --quick --json prints only JSON', () => {
  const j = JSON.parse(korutin(['selfcheck', '--quick', '--json']).stdout);
  assert(j.schemaVersion === 1 && j.command === 'selfcheck' && j.ok === true, 'report');
});
check('npx korutin bench --quick runs the native table and the JS figures', () => {
  const r = korutin(['bench', '--quick']);
  assert(/rt\/s @16,384/.test(r.stdout), 'no native table: ' + r.stdout.slice(0, 500));
  assert(/generator next\(\)/.test(r.stdout), 'no JS figures');
});
check('npx korutin bench --quick --json prints only JSON', () => {
  const j = JSON.parse(korutin(['bench', '--quick', '--iterations', '2000', '--json']).stdout);
  assert(j.schemaVersion === 1 && Array.isArray(j.rows) && j.rows.length > 0, 'report');
  assert(Array.isArray(j.native.backends), 'the native bench did not run');
});

// --- the README's code blocks, verbatim ----------------------------------------
// A block right after a line `<!-- not run: REASON -->` is skipped with its reason.
const readme = fs.readFileSync(path.join(pkgDir, 'README.md'), 'utf8').split('\n');
let blockNo = 0;
for (let i = 0; i < readme.length; i++) {
  const open = /^```(\w*)\s*$/.exec(readme[i]);
  if (!open) continue;
  const lang = open[1];
  let j = i + 1;
  while (j < readme.length && !/^```\s*$/.test(readme[j])) j++;
  const code = readme.slice(i + 1, j).join('\n') + '\n';
  const skip = /^<!-- not run: (.*) -->$/.exec(readme[i - 1] || '');
  const n = ++blockNo;
  const where = `README block ${n} (line ${i + 1}, ${lang || 'plain'})`;
  i = j;
  if (skip) {
    console.log(`skip  ${where}: ${skip[1]}`);
    if (lang === 'c') {
      check(`${where} is examples/c/hello.c, which the native suite builds and runs`, () => {
        assert(fs.readFileSync(path.join(repo, 'examples', 'c', 'hello.c'), 'utf8') === code, 'the README block and examples/c/hello.c differ');
      });
    }
    continue;
  }
  check(`${where} runs`, () => {
    if (lang === 'ts') {
      const dir = `readme-${n}`;
      write(`${dir}/block.mts`, code);
      write(`${dir}/tsconfig.json`, JSON.stringify({
        compilerOptions: {
          strict: true, target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext',
          types: ['node'], typeRoots: [path.join(repo, 'node_modules', '@types')], outDir: '.',
        },
        files: ['block.mts'],
      }));
      node([tsc, '-p', dir]);
      node([`${dir}/block.mjs`]);
    } else if (lang === 'js') {
      write(`readme-${n}.cjs`, code);
      node([`readme-${n}.cjs`]);
    } else if (lang === 'sh') {
      run('bash', ['-euo', 'pipefail', '-c', code]);
    } else {
      throw new Error(`no way to run a '${lang}' block: mark it <!-- not run: why -->`);
    }
  });
}

// --- what the package holds ------------------------------------------------------
const shipped = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const f = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!(dir === pkgDir && (e.name === 'node_modules' || e.name === 'build'))) walk(f);
    } else shipped.push(path.relative(pkgDir, f));
  }
})(pkgDir);
check('no tests, fixtures or build files ship; LICENSE and README do', () => {
  const bad = shipped.filter((f) => /^(test|bench|examples|docs|\.ci)\//.test(f) || /fixtures|\.test\./.test(f) || /CMakeLists\.txt$/.test(f));
  assert(bad.length === 0, `shipped: ${bad.join(', ')}`);
  for (const f of ['LICENSE', 'README.md', 'package.json', 'matrix.yml']) assert(shipped.includes(f), `${f} missing`);
});
check('every source map points at a shipped source', () => {
  const maps = shipped.filter((f) => f.endsWith('.js.map'));
  assert(maps.length > 0, 'no source maps');
  for (const m of maps) {
    const map = JSON.parse(fs.readFileSync(path.join(pkgDir, m), 'utf8'));
    for (const s of map.sources) {
      const src = path.resolve(pkgDir, path.dirname(m), map.sourceRoot || '', s);
      assert(fs.existsSync(src), `${m} points at ${path.relative(pkgDir, src)}, which does not ship`);
    }
  }
});
check('the shipped JavaScript parses as ES2021 (no #private fields or newer syntax)', () => {
  const acorn = require(require.resolve('acorn', { paths: [repo] }));
  for (const f of shipped.filter((x) => x.endsWith('.js'))) {
    try {
      acorn.parse(fs.readFileSync(path.join(pkgDir, f), 'utf8'), { ecmaVersion: 2021, sourceType: 'script', allowHashBang: true });
    } catch (e) {
      throw new Error(`${f}: ${e.message}`);
    }
  }
});
check('the prebuilt binaries are stripped and cover Node 20, 22, 24, 26 on linux-x64 and linux-arm64', () => {
  if (!prebuilt) {
    console.log('      (none in this tarball: run bash scripts/prebuild.sh before packing to check them)');
    return;
  }
  for (const arch of ['x64', 'arm64']) {
    for (const abi of ['115', '127', '137', '147']) {
      assert(shipped.includes(`prebuilds/linux-${arch}/korutin.abi${abi}.glibc.node`), `no linux-${arch} addon for ABI ${abi}`);
    }
    for (const p of ['korutin-selfcheck', 'korutin-bench']) assert(shipped.includes(`prebuilds/linux-${arch}/${p}`), `no linux-${arch} ${p}`);
  }
  for (const f of shipped.filter((x) => x.startsWith('prebuilds/'))) {
    const sections = run('readelf', ['-S', '-W', path.join(pkgDir, f)]).stdout;
    assert(!/\.symtab/.test(sections), `${f} is not stripped (it has a .symtab)`);
  }
});

if (mode === 'no-compiler') {
  check('a source build without the tools names what is missing and the packages that provide it', () => {
    const env = { ...process.env, PATH: process.env.KORUTIN_RESTRICTED_PATH, KORUTIN_BUILD_FROM_SOURCE: '1' };
    delete env.CC;
    delete env.CXX;
    const r = run('npm', ['rebuild', 'korutin'], { env, expectStatus: 1 });
    const text = r.stdout + r.stderr;
    for (const want of ['a C compiler', 'make', 'python3', 'npm rebuild korutin', 'apt-get install build-essential', 'dnf install', 'apk add', 'xcode-select']) {
      assert(text.includes(want), `the message does not name '${want}':\n${text}`);
    }
    assert(!/gyp (ERR|info)/.test(text), `node-gyp ran:\n${text}`);
    // The failed rebuild left the prebuilt install working.
    node(['cjs.cjs']);
  });
}

const passed = results.filter(Boolean).length;
console.log(`\npackage: ${passed} passed, ${results.length - passed} failed`);
process.exitCode = passed === results.length ? 0 : 1;
