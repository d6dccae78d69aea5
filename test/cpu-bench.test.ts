// The CPU-sampling bench's harness, checked with the real parts, so its figures measure what they say:
// - the Express fixture (bench/fixtures/express.js) answers its whole request mix (bench/lib/apps.ts) with 2xx
//   under superv, and superv's sampling credits its CPU to the normalised routes;
// - the @datadog/pprof preload (bench/fixtures/pprof-preload.js) really profiles and labels each sample with the
//   request's route, across an await too (AsyncContextFrame on Node 24, an async hook on Node 20): a preload
//   that failed, or labelled the wrong request, would make the pprof figure look free or wrong;
// - the attribution figure's bounds (pure).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { APPS } from '../bench/lib/apps';
import { ATTRIB_APP, KNOWN_ROUTES, driveInterleaved, pprofRouteCpu, routeError, withinBounds } from '../bench/lib/attribution';
import { FIXTURES as BENCH_FIXTURES } from '../bench/lib/paths';
import { CLI, freePort, getWhenUp, killAll, sleep, startSuperv, tempDir } from './helpers';

after(killAll);

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

function send(port: number, r: NonNullable<typeof APPS.express.requests>[number]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: r.path, method: r.method ?? 'GET', headers: r.headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`${r.method} ${r.path}: no answer`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

describe('attribution bounds', () => {
  test('burn routes within 25 %, the await-only route under 0.5 ms; an unchecked route does not count', () => {
    const burn = KNOWN_ROUTES.find((r) => r.route === '/burn')!;
    assert.ok(Math.abs(routeError(burn, 12) - 0.2) < 1e-9, '12 ms for 10 is +20 %');
    assert.equal(routeError(KNOWN_ROUTES.find((r) => r.route === '/io')!, 0.3), 0.3);
    const good = new Map([['/burn', 11], ['/burn4', 3.2], ['/io', 0.2], ['/after', 0]]);
    assert.equal(withinBounds(good), true);
    assert.equal(withinBounds(new Map([...good, ['/burn', 12.6]])), false, '+26 % is out');
    assert.equal(withinBounds(new Map([...good, ['/io', 0.6]])), false);
    assert.equal(withinBounds(new Map([...good].filter(([r]) => r !== '/io'))), true, 'no sample in /io is 0 ms');
    assert.equal(withinBounds(new Map([...good].filter(([r]) => r !== '/burn4'))), false, 'a burn route with no samples is a miss');
  });
});

describe('the Express fixture under superv', () => {
  test('serves its whole request mix with 2xx, and superv credits the CPU to its normalised routes', async () => {
    const { s, port, dir } = await startSuperv(APPS.express.file, ['-w', '1', '--cpu-sample-interval', '2ms'], { name: 'benchexpress' });
    await s.waitEvent('worker-ready');
    const mix = APPS.express.requests!;
    for (let i = 0; i < 40; i++) {
      for (const r of mix) {
        const status = await send(port, r);
        assert.ok(status >= 200 && status < 300, `${r.method} ${r.path}: ${status}`);
      }
    }
    // A window of samples (1 s) reaches the master; stopping it writes both statistics files now.
    await sleep(1500);
    s.signal('SIGTERM');
    await s.exited;
    // Express strips a router's mount path from req.url while it routes (and leaves it stripped once the route
    // answered): the routes are the URLs the client sent, /api/items, never the router's /items.
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'report', 'benchexpress', '--dir', dir, '--json']);
    const report = JSON.parse(stdout) as { routes: Array<{ route: string; requests: number }>; cpu?: { routes?: Array<{ route: string; cpuMs: number }> } };
    const latency = report.routes;
    const lmsg = JSON.stringify(latency.map((r) => [r.route, r.requests]));
    for (const route of ['/api/items', '/api/users/:id', '/api/users', '/health']) {
      assert.ok(latency.some((r) => r.route === route && r.requests > 0), `${route} has requests: ${lmsg}`);
    }
    assert.ok(!latency.some((r) => r.route === '/items' || r.route === '/users/:id'), `no router-relative route: ${lmsg}`);
    const cpu = new Map((report.cpu?.routes ?? []).map((r) => [r.route, r.cpuMs]));
    const msg = JSON.stringify([...cpu]);
    assert.ok((cpu.get('/api/users/:id') ?? 0) > 0, `the param route is one route with CPU: ${msg}`);
    assert.ok((cpu.get('/api/items') ?? 0) > 0, `the JSON POST route has CPU: ${msg}`);
    assert.ok(![...cpu.keys()].some((r) => r === '/api/users/42' || r === '/items' || r === '/users/:id'), `ids and router-relative paths are not routes: ${msg}`);
  });
});

describe('the @datadog/pprof preload', () => {
  // Run in a plain node process, not under superv: inside superv's workers @datadog/pprof often returns a profile
  // with no busy sample (11 of 39 instances in the bench runs), because the watchdog holds an inspector session to
  // the main thread (reproduced without superv; docs/benchmarks.md); the pprof figure detects and reports it. What
  // this test pins down is the preload's own job: the profiler runs and each sample's label is its request's route.
  test('profiles, and labels each sample with its request\'s route, across an await too', async (t) => {
    const dir = tempDir('superv-pprof-');
    const port = await freePort();
    const child = spawn(process.execPath, ['--require', join(BENCH_FIXTURES, 'pprof-preload.js'), ATTRIB_APP],
      { env: { ...process.env, PORT: String(port), PPROF_DIR: dir, PPROF_INTERVAL_MS: '5' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const pid = child.pid!;
    t.after(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
    await getWhenUp(port, '/');
    const perRoute = 60;
    await driveInterleaved(port, ['/burn?ms=10', '/io', '/after?ms=5'], perRoute, 2);
    const totals = await pprofRouteCpu(dir, [pid], 1);
    const msg = `${JSON.stringify([...totals.routes])}; stderr: ${stderr}`;
    assert.equal(totals.useCPED, NODE_MAJOR >= 24, 'the label rides AsyncContextFrame on Node 24, an async hook before');
    const perReq = (route: string) => (totals.routes.get(route)?.cpuNs ?? 0) / 1e6 / perRoute;
    assert.ok((totals.routes.get('/burn')?.samples ?? 0) > 0, `samples labelled /burn: ${msg}`);
    // Loose bounds: the figure measures the error; this checks the label lands on the route that burns.
    assert.ok(perReq('/burn') > 3 && perReq('/burn') < 30, `/burn burns 10 ms a request: ${perReq('/burn').toFixed(2)} ms; ${msg}`);
    assert.ok(perReq('/io') < perReq('/burn') / 4, `/io only awaits: ${perReq('/io').toFixed(2)} ms; ${msg}`);
    assert.ok(perReq('/after') > 1, `/after burns 5 ms after an await, still labelled: ${perReq('/after').toFixed(2)} ms; ${msg}`);
  });
});
