import { strict as assert } from 'assert';
import { createEngine, KorutinError, MIN_STACK, parseConfig, parseSize } from '../ts';

describe('config', () => {
  it('parses sizes', () => {
    assert.equal(parseSize(4096), 4096);
    assert.equal(parseSize('256k'), 256 * 1024);
    assert.equal(parseSize('1m'), 1024 * 1024);
    assert.equal(parseSize('1.5 MiB'), 1.5 * 1024 * 1024);
    assert.ok(Number.isNaN(parseSize('lots')));
  });

  it('fills defaults', () => {
    const c = parseConfig({});
    assert.equal(c.backend, 'auto');
    assert.equal(c.stackSize, 256 * 1024);
    assert.equal(c.guardPages, 1);
    assert.equal(c.guardSize, 4096);
    assert.equal(c.poolSize, 64);
    assert.equal(c.unhandled, 'throw');
  });

  it('rounds stacks up to whole pages', () => {
    assert.equal(parseConfig({ stackSize: MIN_STACK + 1 }).stackSize, MIN_STACK + 4096);
  });

  it('ERR_INVALID_CONFIG lists every problem at once', () => {
    try {
      createEngine({ backend: 'fast' as 'asm', stackSize: '1k', guardPages: 0, poolSize: -1, extra: true } as never);
      assert.fail('no error');
    } catch (e) {
      assert.ok(e instanceof KorutinError);
      assert.equal(e.code, 'ERR_INVALID_CONFIG');
      for (const key of ['backend', 'stackSize', 'guardPages', 'poolSize', 'extra']) {
        assert.match(e.message, new RegExp(key), `mentions ${key}`);
      }
    }
  });

  it('rejects sizes beyond the maximum and malformed ones', () => {
    assert.throws(() => parseConfig({ stackSize: '2g' }), /at most/);
    assert.throws(() => parseConfig({ stackSize: 'big' }), /byte count or a size/);
  });

  it('accepts an unhandled-error policy, and says what it takes when wrong', () => {
    assert.equal(parseConfig({ unhandled: 'warn' }).unhandled, 'warn');
    const fn = () => undefined;
    assert.equal(parseConfig({ unhandled: fn }).unhandled, fn);
    assert.throws(() => parseConfig({ unhandled: 'loud' as never }), /'throw', 'warn', 'ignore' or a function/);
  });

  it('an unknown or unavailable backend is ERR_BACKEND_UNAVAILABLE or ERR_INVALID_CONFIG, with what to do', () => {
    assert.throws(() => createEngine({ backend: 'nope' as never }), (e: KorutinError) => e.code === 'ERR_INVALID_CONFIG');
  });
});
