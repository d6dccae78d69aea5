// `superv report` on synthetic inputs: percentiles from histograms, ranking by time consumed, counting
// kills and slow requests from both sources, and an HTML page that is self-contained and XSS-safe.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runReport } from '../src/commands/report';
import type { CommandIO } from '../src/commands/dumps';
import { buildReport, histogramQuantile, renderReportText, reportJson, type RouteStatsData, type RouteTotals } from '../src/reader/report';
import { CSP, renderReportHtml } from '../src/reader/report-html';
import type { Dump } from '../src/dump/types';
import { style } from '../src/reader/format';
import type { LoadedDump } from '../src/reader/load';
import { dumpFileName } from '../src/dump/files';
import { routeStatsFile, RouteStatsStore } from '../src/master/route-stats';
import { LATENCY_BUCKETS_MS } from '../src/dump/stats';
import { rmrf, tempDir } from './helpers';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmrf(d); });

const NB = LATENCY_BUCKETS_MS.length + 1;
const at = (ms: number) => LATENCY_BUCKETS_MS.indexOf(ms as (typeof LATENCY_BUCKETS_MS)[number]);

function hist(entries: Array<[number | 'over', number]>): number[] {
  const h = new Array<number>(NB).fill(0);
  for (const [b, c] of entries) h[b === 'over' ? NB - 1 : at(b)] = c;
  return h;
}

function totals(route: string, h: number[], sumMs: number, maxMs: number, extra: Partial<RouteTotals> = {}): RouteTotals {
  return { route, count: h.reduce((a, b) => a + b, 0), sumMs, maxMs, hist: h, slow: 0, killed: 0, ...extra };
}

function stats(routes: RouteTotals[]): RouteStatsData {
  return { files: ['/d/.superv-routes-shop.json'], routes, hours: [], from: Date.parse('2026-11-28T09:00:00Z'), to: Date.parse('2026-11-28T11:00:00Z'), problems: [] };
}

function dump(over: Partial<Dump> & { url?: string; where?: string; ageMs?: number } = {}): LoadedDump {
  const { url = '/users/42', where = 'rankUsers', ageMs = 30_000, ...rest } = over;
  const d: Dump = {
    version: 1, reason: 'timeout', time: '2026-11-28T10:00:00.000Z', summary: 'blocked; the worker was killed and replaced',
    supervisor: { name: 'shop', pid: 1, app: '/srv/shop/app.js', host: 'h' },
    worker: { id: 1, pid: 100, uptimeMs: 1, served: 1 },
    request: { id: 1, method: 'GET', url, startedAt: 0, ageMs },
    capture: { complete: true, elapsedMs: 1, loop: { blocked: true, blockedForMs: ageMs }, inflight: [],
      stack: [{ function: where, file: '/srv/shop/src/rank.js', line: 42, column: 3, app: true, locals: { n: { type: 'number', value: '1' } } }] },
    master: { proc: { state: 'R' } },
    action: 'killed',
    ...rest,
  };
  return { name: dumpFileName(d), path: `/d/${dumpFileName(d)}`, dump: d };
}

describe('histogramQuantile', () => {
  test('interpolates linearly inside the bucket holding the rank', () => {
    // 100 requests, all in (10, 25]: p50 is halfway through it.
    const h = hist([[25, 100]]);
    assert.equal(histogramQuantile(h, 0.5), 17.5);
    assert.equal(histogramQuantile(h, 0.1), 11.5);
    // 90 fast, 10 in (250, 500]: p95 is halfway through the slow bucket.
    const h2 = hist([[5, 90], [500, 10]]);
    assert.equal(histogramQuantile(h2, 0.5), 5 * (50 / 90));
    assert.equal(histogramQuantile(h2, 0.95), 375);
  });

  test('the known max caps the estimate and closes the open last bucket', () => {
    const h = hist([[25, 100]]);
    const p99 = histogramQuantile(h, 0.99, 12)!;
    assert.ok(p99 > 11.9 && p99 <= 12, `p99 ${p99}: the bucket ends at the max`);
    assert.equal(histogramQuantile(h, 0.5, 8), 8, 'never above the max, even when counts and max disagree');
    assert.equal(histogramQuantile(h, 0.5, 20), 15, 'the bucket ends at the max when the max is inside it');
    const over = hist([['over', 10]]);
    assert.equal(histogramQuantile(over, 0.5, 100_000), 60_000 + 20_000);
    assert.equal(histogramQuantile(over, 0.5), 60_000, 'no max: the lower bound, not a guess');
  });

  test('nothing to estimate from: undefined', () => {
    assert.equal(histogramQuantile(new Array<number>(NB).fill(0), 0.5), undefined);
    assert.equal(histogramQuantile(hist([[5, 1]]), 0), undefined);
  });
});

describe('buildReport', () => {
  test('routes ranked by time consumed, killed requests\' age counted, counts from both sources', () => {
    const r = buildReport({
      dir: '/d',
      stats: stats([
        totals('/', hist([[5, 10_000]]), 20_000, 5),
        totals('/search', hist([[1000, 50], [2500, 50]]), 120_000, 2400, { slow: 4 }),
        totals('/users/:id', hist([[50, 10]]), 400, 50),
      ]),
      dumps: [
        dump({ time: '2026-11-28T10:00:00.000Z' }),
        dump({ time: '2026-11-28T10:10:00.000Z' }),
        dump({ time: '2026-11-28T10:20:00.000Z', where: 'loadAvatar' }),
        dump({ time: '2026-11-28T10:30:00.000Z', url: '/search?q=a', reason: 'slow', action: 'none', where: 'search', ageMs: 11_000 }),
        dump({ time: '2026-11-28T10:40:00.000Z', request: undefined, reason: 'manual', action: 'none' }),
      ],
    });
    assert.deepEqual(r.rows.map((x) => x.route), ['/search', '/users/:id', '/']);
    const users = r.rows[1]!;
    assert.equal(users.timeMs, 400 + 3 * 30_000, 'three kills of 30 s each never finished');
    assert.equal(users.killed, 3);
    assert.deepEqual(users.topFrames, [{ where: 'rankUsers src/rank.js:42', count: 2 }, { where: 'loadAvatar src/rank.js:42', count: 1 }]);
    const search = r.rows[0]!;
    assert.equal(search.slow, 4, 'the master\'s counter exceeds the one dump left on disk');
    assert.equal(search.requests, 100);
    assert.ok(search.p50! > 900 && search.p50! <= 1000, String(search.p50));
    assert.ok(search.p99! <= 2400);
    assert.ok(Math.abs(r.rows.reduce((a, x) => a + x.share, 0) - 1) < 1e-9);
    assert.equal(r.incidents.length, 5, 'every dump is on the timeline, even one without a request');
    assert.deepEqual(users.incidents, [0, 1, 2]);
    assert.equal(r.totalRequests, 10_110);
  });

  test('without a stats file the report says so and still ranks what the dumps show', () => {
    const r = buildReport({ dir: '/d', dumps: [dump(), dump({ url: '/cart', ageMs: 60_000 })] });
    assert.deepEqual(r.rows.map((x) => [x.route, x.requests, x.killed]), [['/cart', 0, 1], ['/users/:id', 0, 1]]);
    assert.equal(r.rows[0]!.p50, undefined);
    assert.ok(r.notes.some((n) => /no route stats file in \/d/.test(n)));
  });

  test('text: one row per route in rank order, percentiles marked as estimates, the note says how', () => {
    const r = buildReport({ dir: '/d', stats: stats([totals('/a', hist([[100, 10]]), 700, 90), totals('/b', hist([[5, 10]]), 20, 5)]), dumps: [dump({ url: '/a' })] });
    const text = renderReportText(r, style(false));
    const lines = text.split('\n');
    const header = lines.findIndex((l) => /^#\s+ROUTE\s+REQUESTS\s+TIME\s+SHARE\s+p50\s+p95\s+p99\s+MAX\s+SLOW\s+KILLED\s+WHERE/.test(l));
    assert.ok(header >= 0, text);
    assert.match(lines[header + 1]!, /^1\s+\/a\s+10\s+30\.7 s\s+100%\s+≈\d+ ms\s+≈\d+ ms\s+≈\d+ ms\s+90 ms\s+0\s+1\s+rankUsers src\/rank\.js:42 ×1$/);
    assert.match(lines[header + 2]!, /^2\s+\/b\s+10\s+20 ms\s+<1%/);
    assert.match(text, /estimated from latency histograms .* linear interpolation/);
    const json = reportJson(r) as { routes: Array<{ route: string; dumps: string[]; p50Ms: number }> };
    assert.equal(json.routes[0]!.route, '/a');
    assert.equal(json.routes[0]!.dumps.length, 1);
    assert.ok(json.routes[0]!.p50Ms > 50 && json.routes[0]!.p50Ms < 100);
  });
});

describe('the HTML page', () => {
  const XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>';
  function evilReport() {
    const d = dump({ url: `/p/${encodeURIComponent('x')}?q=${XSS}` });
    d.dump.request!.headers = { 'x-evil': XSS };
    d.dump.capture!.stack![0]!.locals = { [`k${XSS}`]: { type: 'string', value: XSS, props: { [XSS]: XSS } } };
    d.dump.capture!.stack![0]!.function = `f${XSS}`;
    d.dump.capture!.state = { db: [{ sql: `SELECT '${XSS}'`, ageMs: 5 }] };
    d.dump.summary = XSS;
    d.dump.supervisor.name = XSS;
    return buildReport({ dir: `/d${XSS}`, name: XSS, stats: stats([totals(`/r${XSS}`, hist([[5, 3]]), 9, 4)]), dumps: [d] });
  }

  test('everything from a dump is escaped: no markup of its own reaches the page', () => {
    const html = renderReportHtml(evilReport(), { read: () => undefined });
    assert.ok(!html.includes('<script>alert'), 'no script from the data');
    assert.ok(!html.includes('<img'), 'no element from the data');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'shown as text instead');
    assert.equal((html.match(/<script>/g) ?? []).length, 1, 'only the page\'s own script');
  });

  test('self-contained: nothing loaded from anywhere; the CSP admits exactly its own style and script', () => {
    const html = renderReportHtml(evilReport(), { read: () => undefined });
    assert.ok(!/\b(src|href)\s*=\s*["']?(https?:|\/\/)/i.test(html), 'no remote resource');
    assert.ok(!/<link\b/i.test(html) && !/<[a-z][^>]*\ssrc=/i.test(html), 'no external stylesheet, script or image');
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const sha = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    assert.ok(CSP.includes(`style-src ${sha(style)}`), 'the style hash matches');
    assert.ok(CSP.includes(`script-src ${sha(script)}`), 'the script hash matches');
    assert.ok(CSP.startsWith("default-src 'none'"));
    assert.ok(html.includes('http-equiv="Content-Security-Policy"'));
  });

  test('table rows, a latency chart per route with requests, timeline markers linking to inline dumps', () => {
    const r = buildReport({
      dir: '/d',
      stats: stats([totals('/users/:id', hist([[50, 8], [100, 2]]), 500, 90), totals('/cart', hist([[5, 1]]), 2, 2)]),
      dumps: [dump(), dump({ time: '2026-11-28T10:30:00.000Z', url: '/search', reason: 'slow', action: 'none' })],
    });
    const html = renderReportHtml(r, { read: () => undefined });
    assert.equal((html.match(/<tr class="route-row"/g) ?? []).length, 3);
    assert.equal((html.match(/<svg class="latency"/g) ?? []).length, 2, 'charts for the routes with finished requests');
    assert.match(html, /<rect class="bar" [^>]*><title>25ms – 50ms: 8 request\(s\)<\/title>/);
    assert.match(html, /<svg class="timeline"/);
    for (const i of [0, 1]) {
      assert.match(html, new RegExp(`<a href="#dump-${i}"><circle class="(killed|slow)"`));
      assert.match(html, new RegExp(`<details class="dump (killed|slow)" id="dump-${i}">`));
    }
    assert.match(html, /p50 ≈/);
  });
});

describe('superv report (command)', () => {
  test('reads the dumps and the stats files of a dir, prints the table, writes a private HTML page', async () => {
    const d = tempDir('superv-report-');
    dirs.push(d);
    mkdirSync(join(d, 'out'));
    const s = new RouteStatsStore(routeStatsFile(d, 'shop'), { name: 'shop' });
    s.add([{ route: '/users/:id', count: 4, sumMs: 400, maxMs: 150, hist: hist([[100, 3], [250, 1]]) }]);
    await s.flush();
    const dd = dump({ time: new Date().toISOString() }).dump;
    writeFileSync(join(d, dumpFileName(dd)), JSON.stringify(dd));
    let out = '';
    let err = '';
    const io: CommandIO = { out: { write: (x: string) => (out += x) }, err: { write: (x: string) => (err += x) }, env: {}, cwd: d };
    assert.equal(await runReport(['--dir', '.', '--html', 'out/report.html'], io), 0);
    assert.match(out, /^1\s+\/users\/:id\s+4\s+30\.4 s\s+100%/m);
    assert.match(err, /wrote .*out\/report\.html/);
    const file = join(d, 'out/report.html');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /<svg class="latency"/);
    out = '';
    await runReport(['--dir', d, '--json'], io);
    assert.equal((JSON.parse(out) as { routes: unknown[] }).routes.length, 1);
    await assert.rejects(runReport(['--dir', d, '--html'], io), /--html: it needs a value/);
  });
});
