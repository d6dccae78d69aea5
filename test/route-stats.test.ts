// The master's per-route latency store: merging heartbeats, surviving restarts, staying bounded, aging
// out, writing privately and atomically, and never taking the master down when the disk says no.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { LATENCY_BUCKETS_MS } from '../src/dump/stats';
import type { RouteStats } from '../src/protocol';
import { parseStatsFile, readRouteStats, routeStatsFile, RouteStatsStore } from '../src/master/route-stats';
import { rmrf, tempDir } from './helpers';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmrf(d); });
function dir(): string {
  const d = tempDir('superv-stats-');
  dirs.push(d);
  return d;
}

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-28T10:15:00.000Z');

/** A heartbeat entry of `count` requests of `ms` each. */
function hb(route: string, count: number, ms: number): RouteStats {
  const hist = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  const i = LATENCY_BUCKETS_MS.findIndex((b) => ms <= b);
  hist[i < 0 ? LATENCY_BUCKETS_MS.length : i] = count;
  return { route, count, sumMs: count * ms, maxMs: ms, hist };
}

function clock(start = T0) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('RouteStatsStore', () => {
  test('adds heartbeats per route: counts, time, max and histogram', async () => {
    const d = dir();
    const c = clock();
    const s = new RouteStatsStore(routeStatsFile(d, 'shop'), { name: 'shop', now: c.now });
    s.add([hb('/a', 10, 20), hb('/b', 1, 3000)]);
    s.add([hb('/a', 5, 200)]);
    const snap = s.snapshot();
    const a = snap.routes.find((r) => r.route === '/a')!;
    assert.equal(a.count, 15);
    assert.equal(a.sumMs, 10 * 20 + 5 * 200);
    assert.equal(a.maxMs, 200);
    assert.equal(a.hist[LATENCY_BUCKETS_MS.indexOf(25)], 10);
    assert.equal(a.hist[LATENCY_BUCKETS_MS.indexOf(250)], 5);
    assert.equal(snap.hours.length, 1);
    assert.equal(snap.hours[0]!.count, 16);
    assert.equal(snap.hours[0]!.hour, Date.parse('2026-11-28T10:00:00.000Z'));
  });

  test('flush writes a private file atomically; a new master merges it (history survives restarts)', async () => {
    const d = dir();
    const file = routeStatsFile(d, 'shop');
    const c = clock();
    const s1 = new RouteStatsStore(file, { name: 'shop', now: c.now });
    s1.add([hb('/a', 3, 20)]);
    await s1.flush();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(d), ['.superv-routes-shop.json'], 'no temp file left');
    c.t += 60_000;
    const s2 = new RouteStatsStore(file, { name: 'shop', now: c.now });
    s2.add([hb('/a', 2, 20), hb('/c', 1, 5)]);
    await s2.flush();
    const back = await readRouteStats(d);
    assert.equal(back.routes.find((r) => r.route === '/a')!.count, 5);
    assert.equal(back.routes.find((r) => r.route === '/c')!.count, 1);
    assert.deepEqual(back.files, [file]);
    assert.equal(back.from, Date.parse('2026-11-28T10:00:00.000Z'));
    assert.equal(back.to, c.t, 'the window ends when the file was written');
  });

  test('slow and killed requests are counted per route from the dumps written', () => {
    const s = new RouteStatsStore(join(dir(), '.superv-routes-x.json'), { now: clock().now });
    const req = { id: 1, method: 'GET', url: '/users/42?x=1', startedAt: 0, ageMs: 1 };
    s.noteDump({ reason: 'timeout', action: 'killed', request: req, time: new Date(T0).toISOString() });
    s.noteDump({ reason: 'slow', action: 'none', request: req, time: new Date(T0).toISOString() });
    s.noteDump({ reason: 'manual', action: 'none', request: req, time: new Date(T0).toISOString() });
    const r = s.snapshot().routes.find((x) => x.route === '/users/:id')!;
    assert.equal(r.killed, 1);
    assert.equal(r.slow, 1);
    assert.equal(r.count, 0, 'a dump is not a finished request');
  });

  test('bounded: past maxRoutes the least time-consuming routes fold into (other), totals kept', () => {
    const s = new RouteStatsStore(join(dir(), '.superv-routes-x.json'), { maxRoutes: 5, now: clock().now });
    s.add([hb('/heavy', 10, 1000), hb('/medium', 10, 100)]);
    for (let i = 0; i < 50; i++) s.add([hb(`/crawl/${'x'.repeat(i + 1)}`, 1, 1)]);
    const snap = s.snapshot();
    assert.ok(snap.routes.length <= 5, `${snap.routes.length} routes`);
    const names = snap.routes.map((r) => r.route);
    assert.ok(names.includes('/heavy') && names.includes('/medium'), names.join(','));
    assert.ok(names.includes('(other)'));
    assert.equal(snap.routes.reduce((a, r) => a + r.count, 0), 70, 'no request lost');
  });

  test('days older than keepDays age out; hours too', () => {
    const c = clock();
    const s = new RouteStatsStore(join(dir(), '.superv-routes-x.json'), { keepDays: 2, now: c.now });
    s.add([hb('/old', 1, 10)]);
    c.t += DAY;
    s.add([hb('/new', 1, 10)]);
    assert.deepEqual(s.snapshot().routes.map((r) => r.route).sort(), ['/new', '/old']);
    c.t += DAY;
    const snap = s.snapshot();
    assert.deepEqual(snap.routes.map((r) => r.route), ['/new']);
    assert.ok(snap.hours.every((h) => h.hour >= c.t - 2 * DAY));
  });

  test('garbage from a worker is ignored, not stored', () => {
    const s = new RouteStatsStore(join(dir(), '.superv-routes-x.json'), { now: clock().now });
    s.add([{ route: '/a', count: Number.NaN, sumMs: 1, maxMs: 1, hist: [] }, { route: '/b', count: 2, sumMs: -5, maxMs: Infinity, hist: [1, 'x' as unknown as number] }]);
    s.add(undefined as unknown as RouteStats[]);
    const snap = s.snapshot();
    assert.deepEqual(snap.routes.map((r) => r.route), ['/b']);
    const b = snap.routes[0]!;
    assert.deepEqual([b.count, b.sumMs, b.maxMs, b.hist[0], b.hist[1]], [2, 0, 0, 1, 0]);
  });

  test('flush writes only when something changed; concurrent flushes serialize', async () => {
    const d = dir();
    const file = routeStatsFile(d, 'shop');
    const s = new RouteStatsStore(file, { now: clock().now });
    await s.flush();
    assert.ok(!existsSync(file), 'nothing to write yet');
    s.add([hb('/a', 1, 1)]);
    await Promise.all([s.flush(), s.flush(), s.flush()]);
    assert.equal(parseStatsFile(readFileSync(file, 'utf8')).routes.length, 1);
    const mtime = statSync(file).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    await s.flush();
    assert.equal(statSync(file).mtimeMs, mtime, 'not rewritten');
  });

  test('an unwritable dir: flush resolves, the error is reported once, data kept for the next try', async () => {
    const d = dir();
    writeFileSync(join(d, 'file'), 'x');
    const errors: string[] = [];
    const s = new RouteStatsStore(join(d, 'file', '.superv-routes-x.json'), { onError: (e) => errors.push(e.message), now: clock().now });
    s.add([hb('/a', 1, 1)]);
    await s.flush();
    s.add([hb('/a', 1, 1)]);
    await s.flush();
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /^cannot write route stats .*\/file\/\.superv-routes-x\.json: /);
    assert.equal(s.snapshot().routes[0]!.count, 2);
  });

  test('a corrupt or foreign file is reported and replaced, never merged', async () => {
    const d = dir();
    const file = routeStatsFile(d, 'x');
    writeFileSync(file, '{"version":1,"bucketsMs":[1,2,3],"routes":[]}');
    const errors: string[] = [];
    const s = new RouteStatsStore(file, { onError: (e) => errors.push(e.message), now: clock().now });
    assert.match(errors[0]!, /other latency buckets/);
    s.add([hb('/a', 1, 1)]);
    await s.flush();
    assert.equal(parseStatsFile(readFileSync(file, 'utf8')).routes[0]!.route, '/a');
    writeFileSync(file, 'not json');
    new RouteStatsStore(file, { onError: (e) => errors.push(e.message) });
    assert.equal(errors.length, 2);
  });
});

describe('readRouteStats', () => {
  test('merges the files of all supervisors in a dir, or only NAME\'s; reports unreadable ones', async () => {
    const d = dir();
    const c = clock();
    for (const [name, n] of [['shop', 3], ['admin', 4]] as const) {
      const s = new RouteStatsStore(routeStatsFile(d, name), { name, now: c.now });
      s.add([hb('/a', n, 10)]);
      await s.flush();
    }
    writeFileSync(join(d, '.superv-routes-broken.json'), '[]');
    const all = await readRouteStats(d);
    assert.equal(all.routes.find((r) => r.route === '/a')!.count, 7);
    assert.equal(all.problems.length, 1);
    const shop = await readRouteStats(d, 'shop');
    assert.equal(shop.routes[0]!.count, 3);
    assert.deepEqual((await readRouteStats(join(d, 'missing'))).routes, []);
  });

  test('the file name is safe whatever the supervisor name', () => {
    assert.equal(routeStatsFile('/d', '../../etc/x y'), '/d/.superv-routes-.._.._etc_x_y.json');
  });
});
