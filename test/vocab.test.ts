// The vocabularies: each lives in one C table (korutin.h, sched/core.h,
// sched_binding.h, backends/asm/arch.txt); ts/vocab.ts is generated from
// them, and what the addon says must agree with it.
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { BACKENDS, KorutinError } from '../ts';
import { native } from '../ts/native';
import { ERRNO_CODE } from '../ts/vocab';

const ROOT = path.join(__dirname, '..', '..');

describe('vocabulary tables and their mirrors', () => {
  it('ts/vocab.ts is what scripts/gen-vocab.js makes of the C tables (not stale)', () => {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'gen-vocab.js'), '--check'], { stdio: 'pipe' });
  });

  it('the addon knows the backends of BACKENDS, in that order', () => {
    assert.deepEqual(native.backends().map((b) => b.name), [...BACKENDS]);
  });

  it("the addon's errors are KorutinErrors, coded by the table (KO_EDONE is ERR_COROUTINE_DONE)", () => {
    assert.equal(ERRNO_CODE.get(-3), 'ERR_COROUTINE_DONE');
    assert.throws(
      () => native.resume(-1),
      (e: unknown) => e instanceof KorutinError && e.code === 'ERR_COROUTINE_DONE' && /^KorutinError: /.test(String(e.stack)),
    );
    assert.throws(() => native.yield(), (e: unknown) => e instanceof KorutinError && e.code === 'ERR_NOT_IN_COROUTINE');
  });

  it('every asm file has a row in backends/asm/arch.txt and every row a file', () => {
    const dir = path.join(ROOT, 'backends', 'asm');
    const rows = fs
      .readFileSync(path.join(dir, 'arch.txt'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.trim().split(/\s+/));
    assert.ok(rows.every((r) => r.length === 6), 'six cells a row');
    const files = fs.readdirSync(dir).filter((f) => /^switch_.*\.S$/.test(f));
    assert.deepEqual([...new Set(rows.map((r) => r[1]))].sort(), files.sort());
  });
});
