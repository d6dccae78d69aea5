// The pure parts of the capture: value previews and their bounds, scope choice, the app flag, source maps.
// The inspector's shapes are written by hand here, as V8 sends them (see test/capture.test.ts for the real thing).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Debugger, Runtime } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { isAppFile } from '../src/worker/app-frames';
import { localsOf, MAX_LOCALS, MAX_PROPS, MAX_VALUE_CHARS, MORE_KEY, previewRaw, previewValue, scopesToRead } from '../src/worker/capture/preview';
import type { RawValue } from '../src/worker/capture/scope-reader';
import { execFileSync } from 'node:child_process';
import { mapFrames, SourceMapCache } from '../src/util/sourcemap';

function obj(preview: Partial<Runtime.ObjectPreview> & { properties: Runtime.PropertyPreview[] }, description = 'Object'): Runtime.RemoteObject {
  return { type: 'object', className: 'Object', description, preview: { type: 'object', overflow: false, ...preview } };
}

describe('previewValue', () => {
  test('primitives: strings quoted, numbers and specials as V8 describes them', () => {
    assert.deepEqual(previewValue({ type: 'string', value: 'a"b' }), { type: 'string', value: '"a\\"b"' });
    assert.deepEqual(previewValue({ type: 'number', value: 42, description: '42' }), { type: 'number', value: '42' });
    assert.deepEqual(previewValue({ type: 'number', unserializableValue: 'NaN', description: 'NaN' }), { type: 'number', value: 'NaN' });
    assert.deepEqual(previewValue({ type: 'bigint', unserializableValue: '12n', description: '12n' }), { type: 'bigint', value: '12n' });
    assert.deepEqual(previewValue({ type: 'undefined' }), { type: 'undefined', value: 'undefined' });
    assert.deepEqual(previewValue({ type: 'object', subtype: 'null', value: null }), { type: 'null', value: 'null' });
  });

  test('a long string is cut at MAX_VALUE_CHARS, says how long it was, and stays quoted', () => {
    const v = previewValue({ type: 'string', value: 'x'.repeat(10_000) });
    assert.ok(v.value.startsWith(`"${'x'.repeat(MAX_VALUE_CHARS)}"`), v.value);
    assert.ok(v.value.endsWith('… (10000 chars)'));
    assert.ok(v.value.length < MAX_VALUE_CHARS + 30);
  });

  test('a function shows its first line only', () => {
    const v = previewValue({ type: 'function', className: 'Function', description: 'function f(a) {\n  return secret(a);\n}' });
    assert.deepEqual(v, { type: 'function', value: 'function f(a) { …' });
  });

  test('objects: at most MAX_PROPS properties, each cut, "more" marked, own keys kept as data', () => {
    const properties: Runtime.PropertyPreview[] = Array.from({ length: 15 }, (_, i) => ({ name: `k${i}`, type: 'string', value: 'y'.repeat(500) }));
    properties.unshift({ name: '__proto__', type: 'number', value: '1' }, { name: 'fn', type: 'function', value: '' });
    const v = previewValue(obj({ properties }));
    assert.equal(v.type, 'object');
    assert.equal(v.value, 'Object');
    const props = v.props!;
    assert.equal(Object.keys(props).length, MAX_PROPS + 1);
    assert.equal(props[MORE_KEY], 'more not shown');
    assert.ok(Object.prototype.hasOwnProperty.call(props, '__proto__'), 'an own key, not a prototype change');
    assert.equal(props['fn'], 'function');
    assert.ok(props['k0']!.length < 150, props['k0']);
    assert.ok(JSON.stringify(v).length < 2500);
  });

  test('what the reader read: kind, size, first entries, "more" marked, heads of long strings with their length', () => {
    const arr = previewRaw({ t: 'array', d: 'Array(3000000)', n: 3_000_000, more: true, p: [['0', { t: 'number', d: '0' }], ['1', { t: 'string', d: 'y'.repeat(MAX_PROPS * 10), n: 5000 }]] });
    assert.deepEqual(arr, { type: 'array', value: 'Array(3000000)', size: 3_000_000, props: { '0': '0', '1': `"${'y'.repeat(100)}"… (5000 chars)`, [MORE_KEY]: 'more not shown' } });
    const str = previewRaw({ t: 'string', d: 'x'.repeat(MAX_VALUE_CHARS), n: 100_000_000 });
    assert.equal(str.value, `"${'x'.repeat(MAX_VALUE_CHARS)}"… (100000000 chars)`);
    assert.equal(str.size, 100_000_000);
    assert.deepEqual(previewRaw({ t: 'string', d: 'short', n: 5 }), { type: 'string', value: '"short"' }, 'no size when nothing is cut');
    const map = previewRaw({ t: 'map', d: 'Map(1000000)', n: 1_000_000, more: true, p: [['"k0"', { t: 'number', d: '0' }]] });
    assert.deepEqual(map.props, { '"k0"': '0', [MORE_KEY]: 'more not shown' });
    const exotic = previewRaw({ t: 'object', d: 'Object', err: 'boom' });
    assert.deepEqual(exotic.props, { [MORE_KEY]: 'entries not read: boom' });
    // More entries than the dump shows (a reader asked for more): cut here too.
    const many = previewRaw({ t: 'set', d: 'Set(50)', n: 50, p: Array.from({ length: 50 }, (_, i): [string, RawValue] => [String(i), { t: 'number', d: String(i) }]) });
    assert.equal(Object.keys(many.props!).length, MAX_PROPS + 1);
  });

  test('maps show their entries as key → value', () => {
    const v = previewValue(obj({
      subtype: 'map',
      properties: [],
      entries: [{ key: { type: 'string', description: 'a', overflow: false, properties: [] }, value: { type: 'number', description: '1', overflow: false, properties: [] } }],
    }, 'Map(1)'));
    assert.deepEqual(v.props, { '"a"': '1' });
  });
});

describe('scopesToRead and localsOf', () => {
  const scope = (type: string): Debugger.Scope => ({ type, object: { type: 'object', objectId: type } });

  test('innermost scopes up to the first closure; never module, script or global', () => {
    const chosen = scopesToRead(['block', 'local', 'closure', 'closure', 'module', 'global'].map(scope)).map((s) => s.type);
    assert.deepEqual(chosen, ['block', 'local', 'closure']);
    assert.deepEqual(scopesToRead(['local', 'script', 'global'].map(scope)).map((s) => s.type), ['local']);
  });

  test('inner names shadow outer ones; at most MAX_LOCALS; what was not read is said per scope', () => {
    const num = (n: number): [string, RawValue] => [`v${n}`, { t: 'number', d: String(n) }];
    const { locals, missing } = localsOf([
      { type: 'local', read: { vars: [['x', { t: 'string', d: 'inner', n: 5 }]], more: false, unread: ['rows', 'index'] } },
      { type: 'block', missing: 'not read by the deadline' },
      { type: 'closure', read: { vars: [['x', { t: 'string', d: 'outer', n: 5 }], ['cache', { t: 'map', d: 'Map(3)', n: 3 }]], more: false, unread: [] } },
    ]);
    assert.deepEqual(Object.keys(locals), ['x', 'cache']);
    assert.equal(locals['x']!.value, '"inner"');
    assert.deepEqual(locals['cache'], { type: 'map', value: 'Map(3)', size: 3 });
    assert.deepEqual(missing, ['local scope: 2 variable(s) not read by the deadline: rows, index', 'block scope: not read by the deadline']);

    const many = localsOf([{ type: 'local', read: { vars: Array.from({ length: 40 }, (_, i) => num(i)), more: false, unread: [] } }]).locals;
    assert.equal(Object.keys(many).length, MAX_LOCALS + 1);
    assert.equal(many[MORE_KEY]!.type, 'note');
  });
});

describe('isAppFile', () => {
  test('node internals, node_modules, superv\'s own files and nameless code are not the app', () => {
    assert.equal(isAppFile('/srv/app/routes/users.js', '/opt/superv/dist/src/'), true);
    assert.equal(isAppFile('node:internal/modules/cjs/loader'), false);
    assert.equal(isAppFile('/srv/app/node_modules/express/lib/router.js'), false);
    assert.equal(isAppFile('/opt/superv/dist/src/worker/bootstrap.js', '/opt/superv/dist/src/'), false);
    assert.equal(isAppFile('/opt/superv/dist/srcx/app.js', '/opt/superv/dist/src/'), true);
    assert.equal(isAppFile(''), false);
  });
});

describe('SourceMapCache', () => {
  // "AAAA;AACA" maps generated line 0 → source line 0 and generated line 1 → source line 1.
  const payload = { version: 3, file: 'out.js', sourceRoot: 'src', sources: ['a.ts'], names: [], mappings: 'AAAA;AACA' };

  test('a map file next to the script, with sourceRoot applied; an inline data: map', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'superv-sm-'));
    try {
      writeFileSync(join(dir, 'out.js.map'), JSON.stringify(payload));
      const script = pathToFileURL(join(dir, 'out.js')).href;
      const cache = new SourceMapCache();
      assert.deepEqual(await cache.lookup(script, 'out.js.map', 1, 0), { file: join(dir, 'src', 'a.ts'), line: 2, column: 1 });
      const inline = `data:application/json;base64,${Buffer.from(JSON.stringify({ ...payload, sourceRoot: '' })).toString('base64')}`;
      assert.deepEqual(await cache.lookup(script, inline, 0, 0), { file: join(dir, 'a.ts'), line: 1, column: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('missing, broken or remote maps give undefined, never an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'superv-sm-'));
    try {
      writeFileSync(join(dir, 'bad.js.map'), '{ not json');
      const script = pathToFileURL(join(dir, 'out.js')).href;
      const cache = new SourceMapCache();
      assert.equal(await cache.lookup(script, 'missing.js.map', 0, 0), undefined);
      assert.equal(await cache.lookup(script, 'bad.js.map', 0, 0), undefined);
      assert.equal(await cache.lookup(script, 'https://example.invalid/x.map', 0, 0), undefined);
      assert.equal(await cache.lookup('', 'x.map', 0, 0), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('mapFrames (a crash stack, read from text)', () => {
  test('a frame naming a FIFO or a missing file is left as it is, at once; a non-app frame is not read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'superv-map-'));
    try {
      const fifo = join(dir, 'pipe.js');
      execFileSync('mkfifo', [fifo]);
      const frames = [
        { file: fifo, line: 1, column: 1, app: true },
        { file: join(dir, 'gone.js'), line: 3, column: 2, app: true },
        { file: 'node:internal/timers', line: 5, column: 1, app: false },
      ];
      const t0 = Date.now();
      await mapFrames(frames, new SourceMapCache(), Date.now() + 5000);
      assert.ok(Date.now() - t0 < 4000, 'it did not wait on the FIFO until the deadline');
      assert.deepEqual(frames.map((f) => (f as { original?: unknown }).original), [undefined, undefined, undefined]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
