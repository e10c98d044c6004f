import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const CLI = path.join(__dirname, '..', 'ts', 'cli.js');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('korutin CLI', function () {
  this.timeout(600_000);

  it('selfcheck runs the native suite and the JS-bridge suite per backend, with the platform key', () => {
    const r = cli('selfcheck', '--backend', 'asm', '--json');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.match(report.platform.key, /^linux-x64-glibc-node\d+$/);
    assert.equal(report.backends.length, 1);
    const asm = report.backends[0];
    assert.equal(asm.verdict, 'pass');
    const names: string[] = asm.checks.map((c: { name: string }) => c.name);
    assert.ok(names.some((n) => n === 'native: stack-overflow'), 'native suite ran');
    assert.ok(names.includes('AsyncLocalStorage and async scopes across suspension'), 'JS suite ran');
    assert.equal(report.ok, true);
  });

  it('selfcheck prints a table with a verdict per backend', () => {
    const r = cli('selfcheck', '--quick');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^platform\s+linux-x64/m);
    for (const b of ['asm', 'boost', 'ucontext', 'threads']) assert.match(r.stdout, new RegExp(`^${b}\\s+(pass|unavailable)`, 'm'));
    assert.match(r.stdout, /self-check passed/);
  });

  it('bench prints round trips beside a generator and async/await, and writes JSON', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'korutin-')), 'bench.json');
    const r = cli('bench', '--quick', '--iterations', '2000', '--json', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /coroutine\/asm/);
    assert.match(r.stdout, /generator next\(\)/);
    assert.match(r.stdout, /async\/await/);
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.ok(json.rows.every((row: { ns: number }) => row.ns > 0));
    assert.ok(Array.isArray(json.native.backends), 'the native table ran');
    assert.match(r.stdout, /rt\/s @16,384/);
    // the floor (a switch keeping no FP state) is measured where it is built: x86-64 System V
    const floor = json.native.references_ns_per_switch.switch_no_fp_state;
    if (process.arch === 'x64' && process.platform === 'linux') assert.ok(floor > 0, `the floor: ${floor}`);
    else assert.equal(floor, null);
    assert.ok(json.channel.rows.length > 0, 'the channel figures ran');
  });

  it('--json prints only one JSON document on stdout, with a schemaVersion', () => {
    const b = cli('bench', '--quick', '--iterations', '2000', '--json');
    assert.equal(b.status, 0, b.stderr);
    const bench = JSON.parse(b.stdout);
    assert.equal(bench.schemaVersion, 1);
    assert.equal(bench.command, 'bench');
    assert.ok(bench.rows.length > 0);
    const s = cli('selfcheck', '--quick', '--backend', 'asm', '--json');
    assert.equal(JSON.parse(s.stdout).schemaVersion, 1);
    const u = cli('selfcheck', '--json', '--frob');
    assert.equal(u.status, 2);
    assert.deepEqual(JSON.parse(u.stdout).error.code, 'ERR_USAGE');
  });

  it('--version prints package.json\'s version; help prints the usage and exit codes', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
    const v = cli('--version');
    assert.equal(v.status, 0);
    assert.equal(v.stdout.trim(), pkg.version);
    const h = cli('help');
    assert.equal(h.status, 0);
    assert.match(h.stdout, /korutin selfcheck/);
    assert.match(h.stdout, /exit codes: 0 passed, 1 a check failed/);
  });

  it('usage errors exit 2 and say what is accepted', () => {
    assert.equal(cli('bench', '--iterations', 'lots').status, 2);
    assert.match(cli('selfcheck', '--turbo').stderr, /unknown option '--turbo' for selfcheck/);
    assert.equal(cli().status, 2);
    const r = cli('selfcheck', '--backend', 'turbo');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown backend 'turbo'/);
    assert.match(r.stderr, /usage:/);
    assert.equal(cli('frobnicate').status, 2);
  });
});
