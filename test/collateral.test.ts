// Issue 18: the requests that die with a killed worker are named. One worker serves two slow requests and
// one that blocks its loop; the kill's dump lists the two as collateral, the report and /metrics count them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import type { Dump } from '../src/dump/types';
import { CLI, FIXTURES, freePort, get, killAll, sleep, startSuperv } from './helpers';

after(killAll);

const run = promisify(execFile);

test('a kill lists the other in-flight requests as collateral; report and metrics count them per route', async () => {
  const mport = await freePort();
  const { s, port, dir } = await startSuperv(join(FIXTURES, 'pool.js'),
    ['-w', '1', '--timeout', '1s', '--dump-timeout', '2s', '--slow', '0', '--metrics-port', String(mport)], { name: 'board' });
  const slow = [1, 2].map((n) => get(port, `/slow?ms=30000&n=${n}`, { timeoutMs: 20_000 }).catch((e: Error) => e));
  // Both in flight (the heartbeat says so) before the request that blocks the loop.
  for (let i = 0; i < 50; i++) {
    const m = (await get(mport, '/metrics')).body;
    if (/^superv_inflight_requests 2$/m.test(m)) break;
    await sleep(100);
  }
  const stuck = get(port, '/leaderboard?ms=60000', { timeoutMs: 20_000 }).catch((e: Error) => e);
  await s.waitEvent('dump-written', 1, 30_000, (l) => l.reason === 'timeout');
  await Promise.all([...slow, stuck]);

  const file = readdirSync(dir).find((f) => f.endsWith('-timeout.json'))!;
  const dump = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Dump;
  assert.equal(dump.action, 'killed');
  assert.match(dump.request?.url ?? '', /^\/leaderboard/);
  assert.deepEqual((dump.collateral ?? []).map((r) => r.url.replace(/\?.*/, '')).sort(), ['/slow', '/slow'], JSON.stringify(dump.collateral));

  const m = (await get(mport, '/metrics')).body;
  assert.match(m, /^superv_collateral_requests_total\{route="\/slow"\} 2$/m);

  const { stdout } = await run(process.execPath, [CLI, 'report', '--dir', dir, 'board'], { env: { ...process.env, NO_COLOR: '1' } });
  assert.match(stdout, /\/leaderboard killed 1 worker, taking 2 other requests with them: \/slow ×2/);
  const json = JSON.parse((await run(process.execPath, [CLI, 'report', '--dir', dir, '--json'])).stdout) as { routes: Array<{ route: string; collateral: number }> };
  assert.equal(json.routes.find((r) => r.route === '/slow')?.collateral, 2);
  await s.kill();
});
