// Pure logic: the per-route latency sample and its weights (src/worker/latency.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RouteCache } from '../src/dump/route';
import { collectRoutes, sampleMaskFor, type FinishedRequests } from '../src/worker/latency';
import { DONE_RING, SAMPLE_TARGET } from '../src/worker/tracker';

function ring(): FinishedRequests {
  return {
    doneUrls: new Array<string | undefined>(DONE_RING).fill(undefined),
    doneMs: new Float64Array(DONE_RING),
    doneLong: new Uint8Array(DONE_RING),
    doneCount: 0, doneTotal: 0, quickRecorded: 0, sampleMask: 0,
  };
}

function record(t: FinishedRequests, url: string, ms: number, long: boolean): void {
  const i = t.doneCount++;
  t.doneUrls[i] = url;
  t.doneMs[i] = ms;
  t.doneLong[i] = long ? 1 : 0;
  if (!long) t.quickRecorded++;
}

test('sampleMaskFor records everything up to the target, then 1 in 2^k', () => {
  assert.equal(sampleMaskFor(0), 0);
  assert.equal(sampleMaskFor(SAMPLE_TARGET), 0);
  assert.equal(sampleMaskFor(SAMPLE_TARGET + 1), 1);
  assert.equal(sampleMaskFor(SAMPLE_TARGET * 4), 3);
  assert.equal(sampleMaskFor(SAMPLE_TARGET * 4 + 1), 7);
  assert.equal(sampleMaskFor(1e12), (1 << 20) - 1);
});

test('collectRoutes counts exactly when every request was recorded', () => {
  const t = ring();
  for (let i = 0; i < 10; i++) record(t, `/users/${i}`, 3, false);
  record(t, '/slow', 400, true);
  t.doneTotal = 11;
  const routes = collectRoutes(t, new RouteCache());
  const users = routes.find((r) => r.route === '/users/:id')!;
  assert.equal(users.count, 10);
  assert.equal(users.sumMs, 30);
  assert.equal(routes.find((r) => r.route === '/slow')!.count, 1);
  assert.equal(t.doneCount, 0);
  assert.equal(t.doneUrls[0], undefined, 'the ring lets go of the URLs');
});

test('collectRoutes scales the quick sample up, counts long requests once, and sets the next mask', () => {
  const t = ring();
  // 8000 quick requests of which 1 in 4 was recorded, plus 5 long ones recorded individually.
  for (let i = 0; i < 2000; i++) record(t, i % 2 === 0 ? '/a' : '/b', 2, false);
  for (let i = 0; i < 5; i++) record(t, '/report', 900, true);
  t.doneTotal = 8005;
  const routes = collectRoutes(t, new RouteCache());
  const by = new Map(routes.map((r) => [r.route, r]));
  assert.equal(by.get('/a')!.count, 4000);
  assert.equal(by.get('/b')!.count, 4000);
  assert.equal(by.get('/report')!.count, 5);
  assert.equal(by.get('/report')!.maxMs, 900);
  const total = routes.reduce((n, r) => n + r.count, 0);
  assert.equal(total, 8005, 'the estimate adds up to every finished request');
  for (const r of routes) assert.equal(r.hist.reduce((a, b) => a + b, 0), r.count, `${r.route}: histogram sums to its count`);
  assert.equal(t.sampleMask, sampleMaskFor(8005));
});
