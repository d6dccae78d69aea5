// Issue 22's pure parts: crash signatures, the on-disk rate limit, classification of a death, the stderr tail.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { crashSignature, messageTemplate, parseStack } from '../src/dump/crash';
import { CrashLimiter } from '../src/master/crash-limit';
import { classify } from '../src/master/crash';
import { OutputTail } from '../src/master/output-tail';
import { groupDeaths } from '../src/reader/deaths';
import type { LoadedDump } from '../src/reader/load';
import type { CrashInfo, Dump } from '../src/dump/types';

describe('crash signatures', () => {
  test('the message template folds ids and values, keeps the shape', () => {
    assert.equal(messageTemplate('no customer 4711 in region "eu-west"'), 'no customer … in region "…"');
    assert.equal(messageTemplate("Cannot read properties of undefined (reading 'id')"), "Cannot read properties of undefined (reading 'id')");
    assert.equal(messageTemplate('order 5b0e8c9e-1d2f-4c3a-9b8e-7f6a5d4c3b2a at 0x7fff'), 'order … at …');
  });

  test('parseStack reads V8 frames and marks app ones', () => {
    const stack = 'TypeError: x\n    at Timeout.crashLoop [as _onTimeout] (/srv/app.js:47:9)\n    at async refund (/srv/pay.js:3:1)\n' +
      '    at listOnTimeout (node:internal/timers:581:17)\n    at /srv/node_modules/x/i.js:1:2';
    const frames = parseStack(stack, (f) => f.startsWith('/srv/') && !f.includes('node_modules'));
    assert.deepEqual(frames.map((f) => [f.function, f.file, f.line, f.app]), [
      ['Timeout.crashLoop', '/srv/app.js', 47, true], ['refund', '/srv/pay.js', 3, true],
      ['listOnTimeout', 'node:internal/timers', 581, false], ['(anonymous)', '/srv/node_modules/x/i.js', 1, false],
    ]);
  });

  test('error type + template + top app frame; deaths without an error by what is known', () => {
    const frame = { function: 'chargeCustomer', file: '/srv/app.js', line: 6, column: 3, app: true };
    assert.equal(crashSignature({ kind: 'uncaught-exception', signal: null, exitCode: 1,
      error: { type: 'TypeError', message: 'customer 42 has no card', stack: [{ ...frame, app: false, function: 'emit', file: 'node:events' }, frame] } }),
    'TypeError: customer … has no card at chargeCustomer app.js:6');
    assert.equal(crashSignature({ kind: 'signal', signal: 'SIGKILL', exitCode: null }), 'signal SIGKILL');
    assert.equal(crashSignature({ kind: 'exit-called', signal: null, exitCode: 3, exitCall: { fn: 'exit', code: 3, stack: [frame] } }),
      'exit 3 (process.exit()) at chargeCustomer app.js:6');
  });
});

describe('crash limiter', () => {
  test('100 identical crashes: the first 3, the 10th and the 100th are written, carrying every skipped one', () => {
    const l = new CrashLimiter(3, 60_000);
    const written: Array<{ n: number; suppressed: number }> = [];
    for (let n = 1; n <= 100; n++) {
      const d = l.decide('sig', 1000 + n);
      if (d.write) written.push({ n, suppressed: d.suppressed });
      assert.equal(d.occurrences, n);
    }
    assert.deepEqual(written.map((w) => w.n), [1, 2, 3, 10, 100]);
    assert.equal(written.reduce((a, w) => a + 1 + w.suppressed, 0), 100, 'the written dumps account for every death');
    assert.equal(l.decide('other', 2000).write, true, 'another signature has its own budget');
  });

  test('a new window writes again, with the count of the skipped ones', () => {
    const l = new CrashLimiter(1, 1000);
    assert.equal(l.decide('s', 0).write, true);
    assert.equal(l.decide('s', 10).write, false);
    assert.equal(l.decide('s', 20).write, false);
    assert.deepEqual(l.decide('s', 1500), { write: true, suppressed: 2, occurrences: 4 });
  });
});

describe('classify', () => {
  const base = { code: null, signal: null, stderrTail: '' };
  test('an error recorded by the worker decides the kind, whatever the exit code', () => {
    const error = { type: 'TypeError', message: 'x', origin: 'uncaughtException' as const };
    assert.equal(classify({ ...base, code: 7, record: { pid: 1, time: 0, inflight: [], error } }).kind, 'uncaught-exception');
    assert.equal(classify({ ...base, code: 1, record: { pid: 1, time: 0, inflight: [], error: { ...error, origin: 'unhandledRejection' } } }).kind, 'unhandled-rejection');
  });
  test('SIGABRT with Node\'s heap-limit message is out of memory; without, a native abort', () => {
    assert.equal(classify({ ...base, signal: 'SIGABRT', stderrTail: 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory' }).kind, 'out-of-memory');
    assert.equal(classify({ ...base, signal: 'SIGABRT', report: { event: 'Allocation failed - JavaScript heap out of memory', trigger: 'OOMError' } }).kind, 'out-of-memory');
    const abort = classify({ ...base, signal: 'SIGABRT' });
    assert.equal(abort.kind, 'signal');
    assert.match(abort.cause, /native abort/);
  });
  test('SIGKILL: the kernel OOM killer when the cgroup count moved, else from outside', () => {
    assert.match(classify({ ...base, signal: 'SIGKILL', oomKills: { before: 2, after: 3 } }).cause, /OOM killer .*2 to 3/);
    assert.match(classify({ ...base, signal: 'SIGKILL', oomKills: { before: 2, after: 2 } }).cause, /from outside superv/);
  });
  test('an exit code without an error or an exit call', () => {
    const c = classify({ ...base, code: 0 });
    assert.equal(c.kind, 'exit-called');
    assert.match(c.cause, /ran out of work/);
  });
});

describe('deaths by signature', () => {
  const dump = (fingerprint: string, suppressed: number, url: string): LoadedDump => {
    const crash: CrashInfo = { kind: 'uncaught-exception', exitCode: 1, signal: null, cause: '', fingerprint, collateral: 0, suppressed };
    const d = { reason: 'crash', time: '2026-12-01T10:00:00Z', crash, request: { id: 1, method: 'POST', url, startedAt: 0, ageMs: 0 } } as unknown as Dump;
    return { name: 'x', path: `/d/${fingerprint}-${suppressed}`, dump: d };
  };
  test('groups count the dumps and the deaths they stand for', () => {
    const g = groupDeaths([dump('A', 0, '/charge/1'), dump('A', 6, '/charge/2'), dump('B', 0, '/x'), dump('A', 89, '/charge/3')]);
    assert.equal(g.length, 2);
    assert.deepEqual([g[0]!.fingerprint, g[0]!.deaths, g[0]!.files.length, g[0]!.routes], ['A', 98, 3, ['POST /charge/:id']]);
  });
});

describe('stderr tail', () => {
  test('keeps the last bytes, cut at a line', () => {
    const t = new OutputTail(32);
    for (let i = 0; i < 20; i++) t.push(Buffer.from(`line ${i}\n`));
    assert.equal(t.text(), 'line 16\nline 17\nline 18\nline 19\n');
  });
});
