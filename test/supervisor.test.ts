// The core supervisor, end to end: the real CLI, real workers, real HTTP on 127.0.0.1.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { join } from 'node:path';
import { FIXTURES, Superv, alive, freePort, get, getWhenUp, killAll, sleep, tempDir } from './helpers';

after(killAll);

const APP = join(FIXTURES, 'app.js');
const fast = (dir: string) => ['--dump-dir', dir, '--heartbeat-interval', '200ms'];

async function pidsServing(port: number, want: number, tries = 60): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < tries && pids.size < want; i++) {
    pids.add((JSON.parse((await get(port, '/')).body) as { pid: number }).pid);
  }
  return pids;
}

describe('start', () => {
  test('serves HTTP from N workers; args, env and node args reach the app', async () => {
    const port = await freePort();
    const s = new Superv(['start', APP, '--workers', '2', '--node-args', '--no-warnings --stack-size=900', ...fast(tempDir()), '--', 'one', '--two'],
      { env: { PORT: String(port), FIXTURE_ENV: 'from-env' } });
    await s.waitEvent('master-ready');
    const pids = await pidsServing(port, 2);
    assert.equal(pids.size, 2, 'two worker processes answer');
    for (const pid of pids) assert.ok(s.workerPids().includes(pid), 'served by the workers superv spawned');
    const body = JSON.parse((await get(port, '/')).body) as { argv: string[]; env: string; execArgv: string[] };
    assert.deepEqual(body.argv, ['one', '--two']);
    assert.equal(body.env, 'from-env');
    assert.ok(body.execArgv.includes('--stack-size=900'), `node args passed: ${body.execArgv.join(' ')}`);
    const names = s.events('worker-spawned').map((l) => l.supervisor);
    assert.ok(names.every((n) => n === 'app'), 'named after the app file');
    await s.kill();
  });

  test('ESM (.mjs) and CommonJS (.cjs, as require.main) apps', async () => {
    for (const [file, key] of [['app.mjs', 'esm'], ['app.cjs', 'cjs']] as const) {
      const port = await freePort();
      const s = new Superv(['start', join(FIXTURES, file), '-w', '1', ...fast(tempDir()), '--', 'x'], { env: { PORT: String(port) } });
      await s.waitEvent('master-ready');
      const body = JSON.parse((await getWhenUp(port)).body) as Record<string, unknown>;
      assert.equal(body[key], true);
      if (key === 'cjs') assert.equal(body.isMain, true, 'require.main === module in the app');
      else assert.deepEqual(body.argv, ['x']);
      await s.kill();
    }
  });

  test('a dead worker is logged and replaced; quick crashes back off exponentially', async () => {
    const port = await freePort();
    const s = new Superv(['start', APP, '-w', '2', ...fast(tempDir())], { env: { PORT: String(port) } });
    await s.waitEvent('master-ready');
    const victim = s.workerPids()[0]!;
    process.kill(victim, 'SIGKILL');
    const [exit] = await s.waitEvent('worker-exited', 1, 15000, (l) => l.pid === victim);
    assert.equal(exit!.signal, 'SIGKILL');
    assert.equal(typeof exit!.uptimeMs, 'number');
    await s.waitEvent('worker-ready', 3);
    assert.equal(s.workerPids().length, 2);
    assert.ok(!s.workerPids().includes(victim));
    await s.kill();

    const p2 = await freePort();
    const crashy = new Superv(['start', join(FIXTURES, 'crash-after.js'), '-w', '1', '--backoff-max', '800ms', ...fast(tempDir())],
      { env: { PORT: String(p2), CRASH_AFTER_MS: '50' } });
    const backoffs = await crashy.waitEvent('backoff', 5, 30000);
    const delays = backoffs.map((l) => l.delayMs as number);
    assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 800], `doubling: ${delays.join(',')}`);
    assert.equal(delays[4], 800, 'capped at --backoff-max');
    const spawns = crashy.events('worker-spawned').length;
    assert.ok(spawns <= 7, `no fork storm: ${spawns} spawns`);
    await crashy.kill();
  });
});

describe('boot failures halt the master', () => {
  for (const [fixture, extra, expect] of [
    ['boot-throw.js', [], /fixture-boot-failure: DATABASE_URL is not set/],
    ['exit-early.js', [], /fixture-exit-early/],
    ['never-listen.js', ['--listen-timeout', '1s'], /did not listen within 1s/],
  ] as const) {
    test(fixture, async () => {
      const s = new Superv(['start', join(FIXTURES, fixture), '-w', '2', ...extra, ...fast(tempDir())], { env: { PORT: String(await freePort()) } });
      const { code } = await s.exited;
      assert.notEqual(code, 0);
      assert.match(s.stderr, expect);
      assert.match(s.stderr, /superv: worker failed to boot/);
      // Pointing to the app's error only when it printed one.
      assert.match(s.stderr, fixture === 'never-listen.js' ? /\(the app printed nothing on stderr\); superv is halting/ : /\(see the app's error above\); superv is halting/);
      await sleep(200);
      for (const pid of s.allWorkerPids()) assert.ok(!alive(pid), `worker ${pid} left behind`);
      assert.ok(s.events('worker-spawned').length <= 2, 'no retries on a boot failure');
    });
  }
});

describe('stopping', () => {
  test('SIGTERM drains: the in-flight request finishes, idle keep-alive closes, exit 0', async () => {
    const port = await freePort();
    const s = new Superv(['start', APP, '-w', '2', ...fast(tempDir())], { env: { PORT: String(port) } });
    await s.waitEvent('master-ready');
    const inflight = get(port, '/wait?ms=1500');
    await s.waitInflight();
    s.signal('SIGTERM');
    const reply = await inflight;
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'waited');
    const { code } = await s.exited;
    assert.equal(code, 0);
    assert.ok(s.events('shutdown').length === 1);
    for (const pid of s.allWorkerPids()) assert.ok(!alive(pid));
  });

  test('a request longer than --graceful-timeout is cut; the master still exits 0', async () => {
    const port = await freePort();
    const s = new Superv(['start', APP, '-w', '1', '--graceful-timeout', '700ms', ...fast(tempDir())], { env: { PORT: String(port) } });
    await s.waitEvent('master-ready');
    const inflight = get(port, '/wait?ms=20000').catch((e: Error) => e);
    await s.waitInflight();
    const t0 = Date.now();
    s.signal('SIGTERM');
    const { code } = await s.exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 10000);
    assert.ok((await inflight) instanceof Error, 'the long request was cut');
    assert.ok(s.events('worker-kill').length >= 1);
  });

  test('SIGQUIT is a quick stop', async () => {
    const port = await freePort();
    const s = new Superv(['start', APP, '-w', '1', ...fast(tempDir())], { env: { PORT: String(port) } });
    await s.waitEvent('master-ready');
    const inflight = get(port, '/wait?ms=20000').catch((e: Error) => e);
    await s.waitInflight();
    s.signal('SIGQUIT');
    const { code } = await s.exited;
    assert.equal(code, 0);
    assert.ok((await inflight) instanceof Error);
  });

  test('a SIGKILLed master leaves no worker behind, even one blocked in a busy loop', async () => {
    const port = await freePort();
    const s = new Superv(['start', APP, '-w', '2', '--timeout', '0', ...fast(tempDir())], { env: { PORT: String(port) } });
    await s.waitEvent('master-ready');
    const pids = s.workerPids();
    get(port, '/spin?ms=30000', { timeoutMs: 40000 }).catch(() => undefined);
    await sleep(500);
    process.kill(s.pid, 'SIGKILL');
    await s.exited;
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && pids.some(alive)) await sleep(50);
    // 2 s is the promise; a little slack for this noisy 2-core machine.
    await sleep(pids.some(alive) ? 1000 : 0);
    for (const pid of pids) assert.ok(!alive(pid), `worker ${pid} outlived its master`);
  });
});

test('log lines are JSON with the lifecycle events', async () => {
  const port = await freePort();
  const s = new Superv(['start', APP, '-w', '1', '--name', 'billing', ...fast(tempDir())], { env: { PORT: String(port) } });
  await s.waitEvent('master-ready');
  s.signal('SIGTERM');
  await s.exited;
  for (const ev of ['master-start', 'worker-spawned', 'worker-ready', 'master-ready', 'shutdown', 'worker-exited', 'master-exit']) {
    assert.ok(s.events(ev).length > 0, `event ${ev}`);
  }
  assert.ok(s.lines.every((l) => l.supervisor === 'billing'));
});

test('pretty logs on request, and worker output is recorded as records naming the worker', async () => {
  const port = await freePort();
  const s = new Superv(['start', join(FIXTURES, 'app.mjs'), '-w', '1', '--log-format', 'pretty', '--dump-dir', tempDir()],
    { env: { PORT: String(port), SUPERV_LOG_FORMAT: 'pretty' } });
  await s.waitFor(() => /all 1 worker\(s\) ready/.test(s.stdout) || undefined, 15000, 'pretty ready line');
  assert.equal(s.lines.length, 0, 'no JSON lines in pretty mode');
  assert.match(s.stdout, /INFO.*worker 1 \(pid \d+, index 0\) listening on port/);
  await s.kill();

  const p2 = await freePort();
  const echo = new Superv(['start', join(FIXTURES, 'echo-output.js'), '-w', '1', '--dump-dir', tempDir()], { env: { PORT: String(p2) } });
  await echo.waitEvent('master-ready');
  await echo.waitFor(() => echo.lines.some((l) => l.event === 'output' && l.source === 'worker 1 stdout' && l.msg === '[worker 1 stdout] fixture stdout line ünïcode') &&
    /"source":"worker 1 stderr","msg":"\[worker 1 stderr\] fixture stderr line"/.test(echo.stderr) || undefined, 10000, 'worker output');
  await echo.kill();
});
