// Capture end to end over big data: a real CLI, a real worker stuck in a function whose locals are a 10 M-element
// Array, a 1 M-entry Map and Set, a 100 MB string and a 50 k-property object (the sizes that lost every local
// before previews were bounded). The dump must be complete, show each collection's kind and size, and the
// worker must be killed on time. One worker, one stuck request: ~0.5 GB for a few seconds.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Dump } from '../src/dump/types';
import { FIXTURES, get, killAll, startSuperv } from './helpers';

after(killAll);

const APP = join(FIXTURES, 'big-locals-app.js');
// Building the data (in chunks, the loop stays free) must never look stuck on a busy machine.
const TIMEOUT_MS = 4000;
// Wide on purpose: the assert is that the capture ends long before it, not that the machine is fast.
const DUMP_TIMEOUT_MS = 10_000;
const SIZES = { array: 10_000_000, map: 1_000_000, set: 1_000_000, string: 100_000_000, props: 50_000 };

describe('a worker stuck over big collections', () => {
  test('the dump shows every big local by kind, size and first entries, and the kill comes on time', async (t) => {
    const { s, port } = await startSuperv(APP, [
      '-w', '1', '--timeout', `${TIMEOUT_MS}ms`, '--dump-timeout', `${DUMP_TIMEOUT_MS}ms`, '--slow', '0',
      '--node-args', '--max-old-space-size=2048',
    ]);
    const q = new URLSearchParams(Object.entries(SIZES).map(([k, v]): [string, string] => [k, String(v)]));
    const built = await get(port, `/build?${q}`, { timeoutMs: 120_000 }).catch((e: Error) => e);
    assert.equal(built instanceof Error ? `${built.message}\n${s.stdout.slice(-3000)}` : built.body, 'built');
    const t0 = Date.now();
    get(port, '/stuck?ms=120000&depth=3', { timeoutMs: 120_000 }).catch(() => undefined);
    const [exit] = await s.waitEvent('worker-exited', 1, 60_000);
    const took = Date.now() - t0;
    assert.equal(exit!.signal, 'SIGKILL');
    assert.equal(exit!.endedBy, 'timeout');
    const [written] = await s.waitEvent('dump-written', 1, 10_000, (l) => l.reason === 'timeout');
    const d = JSON.parse(readFileSync(written!.file as string, 'utf8')) as Dump;
    const c = d.capture!;
    t.diagnostic(`killed ${took} ms after the request; capture ${c.elapsedMs} ms`);
    assert.equal(c.complete, true, c.incomplete);
    // The capture took a small part of its deadline, so the kill came well before timeout + dump-timeout.
    assert.ok(c.elapsedMs < DUMP_TIMEOUT_MS / 2, `capture took ${c.elapsedMs} ms`);
    assert.ok(took < TIMEOUT_MS + DUMP_TIMEOUT_MS, `killed ${took} ms after the request`);

    const frames = c.stack!.filter((f) => f.function === 'spinOverBigData');
    assert.ok(frames.length >= 4, `recursion frames: ${frames.length}`);
    for (const [i, f] of frames.slice(0, 4).entries()) {
      const l = f.locals ?? {};
      assert.equal(f.localsMissing, undefined, `frame ${i}: ${f.localsMissing?.join('; ')}`);
      assert.deepEqual([l['bigArray']?.type, l['bigArray']?.value, l['bigArray']?.size], ['array', 'Array(10000000)', SIZES.array], `frame ${i}`);
      assert.deepEqual([l['bigMap']?.type, l['bigMap']?.value, l['bigMap']?.size], ['map', 'Map(1000000)', SIZES.map]);
      assert.deepEqual([l['bigSet']?.type, l['bigSet']?.value, l['bigSet']?.size], ['set', 'Set(1000000)', SIZES.set]);
      assert.deepEqual([l['bigString']?.type, l['bigString']?.size], ['string', SIZES.string]);
      assert.deepEqual([l['manyProps']?.type, l['manyProps']?.value, l['manyProps']?.size], ['object', 'Object', SIZES.props]);
    }
    const top = frames[0]!.locals!;
    assert.equal(top['bigArray']!.props!['9'], '9');
    assert.equal(top['bigArray']!.props!['…'], 'more not shown');
    assert.equal(top['bigMap']!.props!['"item-0"'], '0');
    assert.equal(top['bigSet']!.props!['0'], '0');
    assert.equal(top['manyProps']!.props!['p0'], '0');
    assert.match(top['bigString']!.value, /^"x{200}"… \(100000000 chars\)$/);
    await s.kill();
  });
});
