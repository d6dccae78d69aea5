// Issue 18: a route that keeps killing workers is contained. K kills → one error line naming the route and
// its dumps, a status flag and a metric; with quarantine on, workers answer it with 503 + Retry-After at
// once while other routes are served, and after the cool-down a request of it goes through again.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI, FIXTURES, freePort, get, killAll, sleep, startSuperv, supervStatus, type Superv } from './helpers';

after(killAll);

const POOL = join(FIXTURES, 'pool.js');
const run = promisify(execFile);

/** Sends `n` requests that block a worker's loop, one after the other kill, and waits for the n kills. */
async function killWith(s: Superv, port: number, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    void get(port, '/leaderboard?ms=60000', { timeoutMs: 30_000 }).catch(() => undefined);
    await s.waitEvent('dump-written', i, 30_000, (l) => l.reason === 'timeout');
    await s.waitFor(() => s.readyPids().length === 2 || undefined, 30_000, 'two workers ready');
  }
}

describe('poison routes', () => {
  test('K kills: one error line naming the route and its dumps, a status flag, a metric', async () => {
    const mport = await freePort();
    const { s, port, runDir } = await startSuperv(POOL, ['-w', '2', '--timeout', '1s', '--dump-timeout', '1s', '--slow', '0',
      '--poison-kills', '2', '--poison-window', '5m', '--metrics-port', String(mport)], { name: 'pois' });
    await killWith(s, port, 2);
    const [line] = await s.waitEvent('route-poison', 1, 10_000);
    assert.equal(line!.level, 50, 'error level');
    assert.equal(line!.route, '/leaderboard');
    assert.equal((line!.dumps as string[]).length, 2);
    assert.match(String(line!.msg), /poison route \/leaderboard: its requests got 2 workers killed/);
    const st = await supervStatus(runDir, 'pois');
    assert.deepEqual(st.poisonRoutes?.map((r) => [r.route, r.state, r.kills]), [['/leaderboard', 'poison', 2]]);
    const { stdout } = await run(process.execPath, [CLI, 'ls'], { env: { ...process.env, SUPERV_RUN_DIR: runDir } });
    assert.match(stdout, /\/leaderboard \(poison\)/);
    const m = (await get(mport, '/metrics')).body;
    assert.match(m, /^superv_poison_routes\{route="\/leaderboard",state="poison"\} 1$/m);
    assert.match(m, /^superv_poison_route_detections_total\{route="\/leaderboard"\} 1$/m);
    // Quarantine off: the route still runs.
    assert.equal((await get(port, '/leaderboard?ms=1')).status, 200);
    assert.equal(s.events('route-poison').length, 1, 'one line, not one per kill');
    await s.kill();
  });

  test('quarantine on: 503 + Retry-After at once for that route, others served; after the cool-down one goes through', async () => {
    const mport = await freePort();
    const { s, port, runDir, dir } = await startSuperv(POOL, ['-w', '2', '--timeout', '1s', '--dump-timeout', '1s', '--slow', '0',
      '--poison-kills', '2', '--quarantine', '--quarantine-time', '4s', '--metrics-port', String(mport)], { name: 'quar' });
    await killWith(s, port, 2);
    await s.waitEvent('route-quarantined', 1, 10_000);
    // The workers learn of it over IPC: poll until a worker answers 503 (a few ms).
    let r = await get(port, '/leaderboard?ms=60000', { timeoutMs: 5000 });
    for (let i = 0; r.status !== 503 && i < 20; i++) { await sleep(50); r = await get(port, '/leaderboard?ms=60000', { timeoutMs: 5000 }); }
    const t0 = Date.now();
    const again = await get(port, '/leaderboard?user=2&ms=60000', { timeoutMs: 5000 });
    assert.equal(again.status, 503, 'the same route, normalized like the report (another query), is refused');
    assert.ok(Date.now() - t0 < 1000, 'answered at once, without running the handler');
    assert.ok(Number(again.headers['retry-after']) >= 1 && Number(again.headers['retry-after']) <= 4, `Retry-After ${again.headers['retry-after']}`);
    assert.equal((await get(port, '/cheap')).status, 200, 'other routes are served');
    const st = await supervStatus(runDir, 'quar');
    assert.equal(st.poisonRoutes?.[0]?.state, 'quarantined');
    assert.equal(s.events('worker-stuck').length, 2, 'no worker was killed by the refused requests');

    await s.waitEvent('route-trial', 1, 15_000);
    // Half-open: one request per worker goes through; a quick one closes the circuit.
    let through = await get(port, '/leaderboard?ms=5', { timeoutMs: 5000 });
    for (let i = 0; through.status !== 200 && i < 20; i++) { await sleep(50); through = await get(port, '/leaderboard?ms=5', { timeoutMs: 5000 }); }
    assert.equal(through.status, 200);
    await s.waitEvent('route-recovered', 1, 10_000);
    assert.equal((await get(port, '/leaderboard?ms=5')).status, 200);
    const m = (await get(mport, '/metrics')).body;
    assert.match(m, /^superv_quarantined_requests_total\{route="\/leaderboard"\} [1-9]\d*$/m);
    await sleep(11_000); // the route stats file is flushed every 10 s
    const { stdout } = await run(process.execPath, [CLI, 'report', '--dir', dir, 'quar'], { env: { ...process.env, NO_COLOR: '1' } });
    assert.match(stdout, /\/leaderboard was quarantined: [1-9]\d* requests? answered 503/);
    await s.kill();
  });

  test('a bad value gets a clear error and exit 2', async () => {
    const e = await run(process.execPath, [CLI, 'start', POOL, '--quarantine-time', 'soon'], { env: { ...process.env } })
      .then(() => undefined, (err: { code: number; stderr: string }) => err);
    assert.equal(e?.code, 2);
    assert.match(e?.stderr ?? '', /quarantine.time/);
  });
});
