// CPU per route end to end: a real supervisor runs test/fixtures/cpu-routes.js, whose routes burn a known
// amount of CPU per request (10 ms and 4 ms synchronously in the handler, 5 ms after an await, none on a
// route that only awaits a timer), all hit concurrently. The sampled CPU per request must be within 25 % of
// the truth, the await-only route ≈ 0; `superv report` (live, --json, --dir after the stop, --html), the
// Prometheus counter and the stats file (0600) must all carry it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { cpuStatsFile } from '../src/master/cpu-stats';
import { contextFromStart } from '../src/worker/context';
import { CLI, FIXTURES, freePort, get, killAll, startSuperv, tempDir, type Superv } from './helpers';

const run = promisify(execFile);
const NAME = 'cpue2e';
const CHROMIUM = '/usr/bin/chromium';
/**
 * How many requests of each route: enough samples (2 ms apart) that the 4 ms route's sampling error is a few %.
 * Why 4 ms and not 2: on a host with 15 runnable threads per core, the time a woken main thread waits for a core
 * lands on the route it then runs, about +0.5 ms per request (docs/cpu.md): +28 % on a 2 ms route, measured.
 */
const PER_ROUTE = 300;
const ROUTES = [{ path: '/burn?ms=10', route: '/burn', ms: 10 }, { path: '/burn4?ms=4', route: '/burn4', ms: 4 },
  { path: '/after?ms=5', route: '/after', ms: 5 }, { path: '/io', route: '/io', ms: 0 }];

interface CpuJson { routes: Array<{ route: string; cpuMs: number; share: number; requests: number; cpuMsPerRequest: number | null }>;
  functions: Array<{ name: string; file: string; line: number; selfMs: number; totalMs: number }> }

/** Every route PER_ROUTE times, over 4 keep-alive connections, the routes interleaved. */
async function load(port: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let i = 0;
  const one = (path: string) => new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => { res.resume(); res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${path}: ${res.statusCode}`)))); })
      .on('error', reject);
  });
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (i < PER_ROUTE * ROUTES.length) await one(ROUTES[i++ % ROUTES.length]!.path);
  }));
  agent.destroy();
}

async function report(args: string[], runDir: string): Promise<{ cpu: CpuJson | null }> {
  const { stdout } = await run(process.execPath, [CLI, 'report', ...args, '--json'], { env: { ...process.env, SUPERV_RUN_DIR: runDir }, maxBuffer: 64 * 2 ** 20 });
  return JSON.parse(stdout) as { cpu: CpuJson | null };
}

describe('CPU per route', () => {
  let s: Superv;
  let dir = '';
  let runDir = '';
  let port = 0;
  let metricsPort = 0;

  before(async () => {
    metricsPort = await freePort();
    ({ s, dir, runDir, port } = await startSuperv(join(FIXTURES, 'cpu-routes.js'), ['-w', '1', '--cpu-sample-interval', '2ms',
      '--metrics-port', String(metricsPort)], { name: NAME }));
    await s.waitEvent('worker-ready');
    await load(port);
    // A heartbeat and a window of samples (1 s) reach the master.
    await new Promise((r) => setTimeout(r, 1500));
  });
  after(killAll);

  test('each route\'s CPU per request is within 25 % of what it burns; an await-only route is ≈ 0', async () => {
    const live = (await report([NAME], runDir)).cpu!;
    assert.ok(live, 'the live report has a cpu section');
    const by = new Map(live.routes.map((r) => [r.route, r]));
    const per = (route: string) => by.get(route)?.cpuMsPerRequest ?? 0;
    const msg = `measured: ${JSON.stringify(live.routes)}`;
    for (const r of ROUTES) assert.equal(by.get(r.route)?.requests, PER_ROUTE, `${r.route} counted ${PER_ROUTE} requests; ${msg}`);
    for (const r of ROUTES.filter((x) => x.route === '/burn' || x.route === '/burn4')) {
      const m = per(r.route);
      assert.ok(Math.abs(m - r.ms) <= 0.25 * r.ms, `${r.route}: ${m.toFixed(2)} ms of CPU per request, burns ${r.ms} ms; ${msg}`);
    }
    assert.ok(per('/io') < 0.5, `/io only awaits a timer: ${per('/io').toFixed(3)} ms per request; ${msg}`);
    if (contextFromStart()) {
      // Node 24: the request context follows the await, so the continuation's CPU is the route's.
      assert.ok(Math.abs(per('/after') - 5) <= 1.25, `/after burns 5 ms after an await: ${per('/after').toFixed(2)} ms; ${msg}`);
    } else {
      // Node 20 without a database driver: no request context across awaits (it would cost every request), so
      // the continuation is work outside any request, never smeared over another route.
      assert.ok(per('/after') < 1.25, `/after's continuation is not the route's on Node 20: ${per('/after').toFixed(2)} ms; ${msg}`);
      assert.ok((by.get('(no request)')?.cpuMs ?? 0) >= 0.75 * 5 * PER_ROUTE, `(no request) holds /after's continuations; ${msg}`);
    }
    assert.ok(live.functions.some((f) => f.name === 'burnFor' && f.file.endsWith('cpu-routes.js') && f.line > 0 && f.selfMs > 0),
      `burnFor is among the hottest functions: ${JSON.stringify(live.functions.slice(0, 5))}`);
    const shares = live.routes.reduce((a, r) => a + r.share, 0);
    assert.ok(Math.abs(shares - 1) < 0.02, `shares add up to 1: ${shares}`);
  });

  test('the text report has the CPU tables beside the time columns', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'report', NAME], { env: { ...process.env, SUPERV_RUN_DIR: runDir, NO_COLOR: '1' } });
    assert.match(stdout, /routes by CPU/);
    assert.match(stdout, /CPU\/REQ/);
    assert.match(stdout, /hottest functions/);
    assert.match(stdout, /burnFor\s+\S*cpu-routes\.js:\d+/);
    assert.match(stdout, /\/burn4/);
  });

  test('Prometheus: superv_route_cpu_seconds_total by route', async () => {
    const text = (await get(metricsPort, '/metrics')).body;
    const m = /^superv_route_cpu_seconds_total\{route="\/burn"\} ([\d.e+-]+)$/m.exec(text);
    assert.ok(m, `the counter for /burn is exported:\n${text.split('\n').filter((l) => l.includes('cpu')).join('\n')}`);
    assert.ok(Number(m[1]) > 0.75 * PER_ROUTE * 10 / 1000, `/burn: ${m[1]} s`);
  });

  test('after a stop the stats file (0600) gives the same tables with --dir, and the HTML page draws them', async () => {
    await run(process.execPath, [CLI, 'stop', NAME], { env: { ...process.env, SUPERV_RUN_DIR: runDir } });
    await s.exited;
    const file = cpuStatsFile(dir, NAME);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const html = join(tempDir('superv-html-'), 'report.html');
    const off = (await report(['--dir', dir, '--html', html], runDir)).cpu!;
    const burn = off.routes.find((r) => r.route === '/burn');
    assert.ok(burn && burn.requests === PER_ROUTE && Math.abs((burn.cpuMsPerRequest ?? 0) - 10) <= 2.5, JSON.stringify(off.routes));
    const page = readFileSync(html, 'utf8');
    assert.match(page, /<section id="cpu">/);
    assert.match(page, /<svg class="icicle"/);
    assert.match(page, /data-route="\/burn4"/);
    assert.match(page, /burnFor/);
  });

  test('the flame graph renders in headless Chromium, one per route, each box named', async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`${CHROMIUM} is not installed (apt-get install -y chromium): the flame graph was not rendered`);
      return;
    }
    const out = tempDir('superv-flame-');
    const html = join(out, 'report.html');
    await report(['--dir', dir, '--html', html], runDir);
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${join(out, 'profile')}`];
    const { stdout: dom } = await run(CHROMIUM, [...flags, '--dump-dom', `file://${html}`], { timeout: 25000, maxBuffer: 64 * 2 ** 20 });
    // The whole-fleet icicle is open; each route has its own, filtered to its samples.
    const all = /<details class="flame" id="flame-all" open="">([\s\S]*?)<\/details>/.exec(dom)?.[1] ?? '';
    assert.match(all, /<svg class="icicle"[\s\S]*?<rect /, 'the icicle of all routes is drawn');
    assert.match(all, /<title>burnFor \S*cpu-routes\.js:\d+ — /, 'a box names its function, file and line');
    const burn4 = /<details class="flame" id="flame-\d+" data-route="\/burn4">([\s\S]*?)<\/details>/.exec(dom)?.[1] ?? '';
    assert.match(burn4, /<title>burnFor /, '/burn4 has an icicle of its own');
    assert.ok(!/afterAwait/.test(burn4), 'filtered to the route: no other route\'s functions');
    const png = join(out, 'flame.png');
    await run(CHROMIUM, [...flags, `--screenshot=${png}`, '--window-size=1280,1400', `file://${html}#cpu`], { timeout: 25000 });
    assert.ok(statSync(png).size > 10_000, 'the screenshot is not blank');
  });
});

describe('a timeout dump of a CPU-bound stall', () => {
  after(killAll);

  test('names the hottest functions of the seconds before it (default sampling interval)', async () => {
    const { s, port, dir, runDir } = await startSuperv(join(FIXTURES, 'cpu-routes.js'), ['-w', '1', '--timeout', '3s', '--dump-timeout', '3s'], { name: 'cpustall' });
    await s.waitEvent('worker-ready');
    void get(port, '/burn?ms=60000', { timeoutMs: 60000 }).catch(() => undefined);
    const [written] = await s.waitEvent('dump-written', 1, 30000, (l) => l.reason === 'timeout');
    const dump = JSON.parse(readFileSync(String(written!.file), 'utf8')) as { cpu?: { cpuMs: number; windowMs: number; functions: Array<{ name: string; file: string; line: number; selfMs: number }> } };
    assert.ok(dump.cpu, 'the dump has a cpu section');
    const top = dump.cpu.functions[0]!;
    assert.equal(top.name, 'burnFor', JSON.stringify(dump.cpu.functions.slice(0, 3)));
    assert.ok(top.file.endsWith('cpu-routes.js') && top.line > 0);
    // CPU, not wall time: on a loaded host the stuck thread gets only part of a core, so no fixed amount.
    assert.ok(dump.cpu.cpuMs > 0 && top.selfMs >= 0.5 * dump.cpu.cpuMs, `burnFor has most of the ${dump.cpu.cpuMs} ms sampled`);
    const { stdout } = await run(process.execPath, [CLI, 'dumps', 'show', String(written!.file), '--dir', dir], { env: { ...process.env, SUPERV_RUN_DIR: runDir, NO_COLOR: '1' } });
    assert.match(stdout, /Hottest functions \(.+ of CPU sampled over the last 10(\.0)? ?s\)/);
    assert.match(stdout, /burnFor\s+\S*cpu-routes\.js:\d+\s+self/);
  });
});
