// Pure parts of trace ids and multi-host reading: the traceparent parser (the W3C rules), the trace_url
// template, how a loaded dump's ids are checked, and the --dir glob.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseTraceparent } from '../src/dump/trace';
import { coerceDump } from '../src/reader/load';
import { expandDirGlob } from '../src/util/dir-glob';
import { traceLink, traceUrlProblem } from '../src/util/trace-url';
import { rmrf, tempDir } from './helpers';

const TID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SID = '00f067aa0ba902b7';

describe('traceparent', () => {
  test('a well-formed header gives its trace and parent ids', () => {
    assert.deepEqual(parseTraceparent(`00-${TID}-${SID}-01`), { traceId: TID, spanId: SID, from: 'traceparent' });
    assert.deepEqual(parseTraceparent(`00-${TID}-${SID}-00`)?.traceId, TID, 'not sampled is still a trace');
    // A later version may append fields after a dash; its first four are read the same way.
    assert.equal(parseTraceparent(`cc-${TID}-${SID}-01-what-the-future-holds`)?.traceId, TID);
  });

  test('anything malformed is ignored, not an error', () => {
    const bad = [
      undefined, 42, '', 'garbage', `00-${TID}-${SID}`, `00-${TID}-${SID}-01-`, `00-${TID}-${SID}-01 `, `00-${TID.toUpperCase()}-${SID}-01`,
      `00-${'0'.repeat(32)}-${SID}-01`, `00-${TID}-${'0'.repeat(16)}-01`, `ff-${TID}-${SID}-01`, `0x-${TID}-${SID}-01`, `00_${TID}-${SID}-01`,
      `00-${TID}-${SID}-0g`, `cc-${TID}-${SID}-01x`, `00-${TID}-${SID}-01, 00-${TID}-${SID}-01`, '00-<script>alert(1)</script>"><img src=x onerror=alert(2)>-01',
      `00-${TID}-${SID}-01${'x'.repeat(600)}`,
    ];
    for (const v of bad) assert.equal(parseTraceparent(v), undefined, JSON.stringify(v));
  });
});

describe('trace_url', () => {
  test('the ids fill the template, URL-encoded', () => {
    assert.equal(traceLink('https://t.example/trace/{trace_id}', TID), `https://t.example/trace/${TID}`);
    assert.equal(traceLink('https://t.example/{trace_id}?span={span_id}&again={trace_id}', TID, SID), `https://t.example/${TID}?span=${SID}&again=${TID}`);
    assert.equal(traceLink(undefined, TID), undefined);
    assert.equal(traceLink('javascript:alert(1)//{trace_id}', TID), undefined, 'a template that fails the check links nothing');
  });

  test('a template must be an http(s) URL naming {trace_id}', () => {
    assert.equal(traceUrlProblem('https://t.example/trace/{trace_id}'), undefined);
    assert.match(traceUrlProblem('https://t.example/search')!, /\{trace_id\}/);
    assert.match(traceUrlProblem('javascript:alert(1)//{trace_id}')!, /http/);
    assert.match(traceUrlProblem('https://t.example/ {trace_id}')!, /spaces/);
  });

  test('a dump read back keeps only hex ids: a hand-edited one cannot smuggle markup into a link', () => {
    const base = { version: 1, reason: 'slow', time: '2026-12-01T00:00:00.000Z', request: { id: 1, method: 'GET', url: '/' } };
    const ok = coerceDump({ ...base, request: { ...base.request, trace: { traceId: TID, spanId: SID, from: 'otel' } } });
    assert.deepEqual(ok.request?.trace, { traceId: TID, spanId: SID, from: 'otel' });
    const evil = coerceDump({ ...base, request: { ...base.request, trace: { traceId: '"><script>', spanId: SID } } });
    assert.equal(evil.request?.trace, undefined);
  });
});

describe('--dir globs', () => {
  const root = tempDir('superv-glob-');
  after(() => rmrf(root));
  for (const d of ['web-1/superv-dumps', 'web-2/superv-dumps', 'db-1/superv-dumps', '.hidden/superv-dumps', 'web-3']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'web-3', 'superv-dumps'), 'a file, not a dir');

  test('* and [..] match within a segment; only directories; sorted; dot entries only when asked', async () => {
    assert.deepEqual(await expandDirGlob(join(root, '*', 'superv-dumps'), '/'), ['db-1', 'web-1', 'web-2'].map((h) => join(root, h, 'superv-dumps')));
    assert.deepEqual(await expandDirGlob('web-[2-9]/superv-dumps', root), [join(root, 'web-2', 'superv-dumps')]);
    assert.deepEqual(await expandDirGlob(join(root, 'web-?'), '/'), ['web-1', 'web-2', 'web-3'].map((h) => join(root, h)));
    assert.deepEqual(await expandDirGlob(join(root, '.*', 'superv-dumps'), '/'), [join(root, '.hidden', 'superv-dumps')]);
    assert.deepEqual(await expandDirGlob(join(root, 'nothing-*'), '/'), []);
  });
});
