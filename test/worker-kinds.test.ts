// Workers as pm2 users run them: background workers that never listen (supervised, stalls dumped with what
// they were doing), boots that block their loop, readiness the app declares itself (process.send('ready')
// with two servers), listen_timeout 0, and the stable instance index across a crash, a reload and a scale.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Dump } from '../src/dump/types';
import { loadConfig } from '../src/config/load';
import { FIXTURES, Superv, cli, freePort, get, killAll, rmrf, sleep, startSuperv, supervStatus, tempDir } from './helpers';

after(killAll);

const BACKGROUND = join(FIXTURES, 'background.js');
const TWO_SERVERS = join(FIXTURES, 'two-servers.js');
const INSTANCE_APP = join(FIXTURES, 'instance-app.js');

function readDump(file: string): Dump {
  return JSON.parse(readFileSync(file, 'utf8')) as Dump;
}

const indexesOf = async (runDir: string, name: string) =>
  (await supervStatus(runDir, name)).workers.filter((w) => w.state !== 'draining').map((w) => w.index).sort();

describe('background workers', () => {
  test('ready at boot; a stalled job is dumped with what it was doing (no request), killed, replaced at its index; reload works', async () => {
    const jobs = tempDir('superv-jobs-');
    const { s, runDir, dir } = await startSuperv(BACKGROUND, ['-w', '2', '--worker-kind', 'background', '--timeout', '5s'],
      { name: 'consumer', env: { JOB_DIR: jobs } });
    const st = await supervStatus(runDir, 'consumer');
    assert.deepEqual(st.workers.map((w) => [w.state, w.kind]), [['ready', 'background'], ['ready', 'background']]);
    assert.deepEqual(st.workers.map((w) => w.index).sort(), [0, 1]);
    for (const w of st.workers) {
      const seen = JSON.parse(readFileSync(join(jobs, `index-${w.pid}`), 'utf8')) as Record<string, string>;
      assert.deepEqual(seen, { NODE_APP_INSTANCE: String(w.index), SUPERV_WORKER_INDEX: String(w.index) }, 'the app sees its index');
    }
    const stuck = st.workers.find((w) => w.index === 0)!;

    writeFileSync(join(jobs, 'stall-0'), '');
    const [written] = await s.waitEvent('dump-written', 1, 20000, (l) => l.reason === 'timeout');
    const d = readDump(String(written!.file));
    assert.equal(d.worker.pid, stuck.pid);
    assert.equal(d.worker.kind, 'background');
    assert.equal(d.worker.index, 0);
    assert.equal(d.request, undefined, 'no request section: it serves none');
    assert.ok(d.capture?.stack?.some((f) => f.function === 'processJob'), 'the dump shows the job it was running');
    const job = d.capture?.stack?.find((f) => f.function === 'processJob');
    assert.match(JSON.stringify(job?.locals ?? {}), /emails/, 'with the job in its locals');
    const shown = await cli(runDir, 'dumps', 'show', String(written!.file));
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /worker \d+ \(index 0, background\), pid \d+, up [^,\n]+\n/, 'no served count for a background worker');
    assert.doesNotMatch(shown.stdout, /\nRequest\b/);

    await s.waitEvent('worker-ready', 3);
    assert.deepEqual(await indexesOf(runDir, 'consumer'), [0, 1], 'the replacement took index 0');

    const reload = await cli(runDir, 'reload', 'consumer');
    assert.equal(reload.code, 0, reload.stderr);
    assert.match(reload.stdout, /2 worker\(s\) replaced/);
    await s.waitFor(() => s.workerPids().length === 2 || undefined, 15000, 'the old workers gone');
    assert.deepEqual(await indexesOf(runDir, 'consumer'), [0, 1]);
    s.signal('SIGTERM');
    assert.equal((await s.exited).code, 0);
    rmrf(jobs);
    rmrf(dir);
  });

  for (const kind of ['background', 'http']) {
    test(`a ${kind} worker whose boot blocks its loop is dumped before listen_timeout, then superv halts naming it`, async () => {
      const dir = tempDir();
      const s = new Superv(['start', BACKGROUND, '-w', '1', '--worker-kind', kind, '--timeout', '5s', '--listen-timeout', '60s',
        '--heartbeat-interval', '200ms', '--dump-dir', dir], { env: { STALL_AT_BOOT: '60000' } });
      const [written] = await s.waitEvent('dump-written', 1, 40000, (l) => l.reason === 'timeout');
      const d = readDump(String(written!.file));
      assert.equal(d.worker.booting, true);
      assert.ok(d.capture?.stack?.some((f) => f.function === 'warmCacheAtBoot'), 'the dump names the boot code that blocks');
      const { code } = await s.exited;
      assert.equal(code, 1);
      assert.match(s.stderr, /worker \d+ blocked its event loop for [\d.]+ s while booting \(a boot may block 10s\); its dump says where: .*-timeout\.json; superv is halting/);
      assert.equal(s.events('listen-timeout').length, 0, 'the stall was caught first');
      rmrf(dir);
    });
  }
});

describe('readiness', () => {
  test("wait_ready: with two servers, ready only when the app sends 'ready' (the main port is up at once)", async () => {
    const admin = await freePort();
    const { s, port } = await startSuperv(TWO_SERVERS, ['-w', '1', '--wait-ready'], { env: { ADMIN_PORT: String(admin), WARM_MS: '1500' } });
    const r = await get(port, '/');
    assert.equal(r.body, 'main 0', 'the main server answers as soon as superv calls the worker ready');
    assert.equal(s.events('worker-ready')[0]!.port, undefined);
    await s.kill();
  });

  test('without wait_ready the first listen (the admin server) is the ready signal, before the main port', async () => {
    const admin = await freePort();
    const { s } = await startSuperv(TWO_SERVERS, ['-w', '1'], { env: { ADMIN_PORT: String(admin), WARM_MS: '3000' } });
    assert.equal(s.events('worker-ready')[0]!.port, admin);
    await s.kill();
  });

  test("wait_ready without a 'ready': killed at listen_timeout; the halt says what was missing and that the app said nothing", async () => {
    const s = new Superv(['start', TWO_SERVERS, '-w', '1', '--wait-ready', '--listen-timeout', '2s', '--dump-dir', tempDir()],
      { env: { ADMIN_PORT: String(await freePort()), PORT: String(await freePort()), WARM_MS: '10', NEVER_READY: '1' } });
    assert.equal((await s.exited).code, 1);
    assert.match(s.stderr, /did not send process\.send\('ready'\) \(wait_ready\) within 2s \(--listen-timeout\) \(the app printed nothing on stderr\); superv is halting/);
    assert.doesNotMatch(s.stderr, /see the app's error above/);
  });

  test('a worker that never listens: the halt hints at --worker-kind background; listen_timeout 0 waits forever', async () => {
    const never = join(FIXTURES, 'never-listen.js');
    const s = new Superv(['start', never, '-w', '1', '--listen-timeout', '1s', '--dump-dir', tempDir()]);
    assert.equal((await s.exited).code, 1);
    assert.match(s.stderr, /did not listen within 1s \(--listen-timeout; a worker that serves no HTTP needs --worker-kind background\) \(the app printed nothing on stderr\)/);

    const forever = new Superv(['start', never, '-w', '1', '--listen-timeout', '0', '--dump-dir', tempDir()]);
    await forever.waitEvent('worker-spawned');
    await sleep(2500);
    assert.equal(forever.child.exitCode, null, 'still running');
    assert.equal(forever.events('listen-timeout').length, 0);
    const st = await supervStatus(forever.runDir, 'never-listen');
    assert.equal(st.workers[0]!.state, 'booting');
    await forever.kill();
  });

  test("ecosystem files: pm2's wait_ready and instance_var are read", () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'app.js'), '');
    writeFileSync(join(dir, 'ecosystem.config.js'), "module.exports = { apps: [{ name: 'eco', script: 'app.js', wait_ready: true, instance_var: 'INSTANCE_ID' }] };");
    const warnings: string[] = [];
    const c = loadConfig(['ecosystem.config.js'], {}, dir, (m) => warnings.push(m));
    assert.equal(c.waitReady, true);
    assert.equal(c.instanceVar, 'INSTANCE_ID');
    assert.deepEqual(warnings, []);
    assert.throws(() => loadConfig(['app.js', '--instance-var', 'A-B'], {}, dir), /instance_var: "A-B": expected an environment variable name/);
    rmrf(dir);
  });
});

describe('stable instance index', () => {
  test('0..N-1 across a crash, a reload and a scale; the app sees it under NODE_APP_INSTANCE or its instance_var', async () => {
    const { s, port, runDir } = await startSuperv(INSTANCE_APP, ['-w', '2'], { name: 'idx' });
    const byPid = async () => new Map((await supervStatus(runDir, 'idx')).workers.map((w) => [w.pid, w.index]));
    const seen = async () => {
      const pids = await byPid();
      for (let i = 0; i < 6; i++) {
        const r = JSON.parse((await get(port, '/')).body) as { pid: number; NODE_APP_INSTANCE: string; SUPERV_WORKER_INDEX: string };
        assert.equal(r.NODE_APP_INSTANCE, String(pids.get(r.pid)), 'the app sees the index status shows');
        assert.equal(r.SUPERV_WORKER_INDEX, String(pids.get(r.pid)));
      }
    };
    assert.deepEqual(await indexesOf(runDir, 'idx'), [0, 1]);
    await seen();
    const before = await byPid();
    const crashed = JSON.parse((await get(port, '/crash')).body) as { pid: number };
    await s.waitEvent('worker-ready', 3);
    const after1 = await byPid();
    assert.ok(!after1.has(crashed.pid));
    assert.deepEqual([...after1.values()].sort(), [0, 1], 'the replacement took the crashed worker\'s index');
    assert.equal([...after1.entries()].find(([p]) => !before.has(p))![1], before.get(crashed.pid));
    await seen();

    assert.equal((await cli(runDir, 'reload', 'idx')).code, 0);
    await s.waitFor(() => s.workerPids().length === 2 || undefined, 15000, 'reloaded');
    assert.deepEqual(await indexesOf(runDir, 'idx'), [0, 1]);
    await seen();
    assert.match((await cli(runDir, 'status', 'idx')).stdout, /ID\s+INDEX\s+PID/);

    assert.equal((await cli(runDir, 'scale', 'idx', '3')).code, 0);
    await s.waitFor(() => s.readyPids().length === 3 || undefined, 15000, '3 workers');
    assert.deepEqual(await indexesOf(runDir, 'idx'), [0, 1, 2]);
    assert.equal((await cli(runDir, 'scale', 'idx', '1')).code, 0);
    await s.waitFor(() => s.workerPids().length === 1 || undefined, 15000, 'scaled down to 1');
    assert.deepEqual(await indexesOf(runDir, 'idx'), [0], 'a scale-down ends the highest indexes');
    await s.kill();

    const custom = await startSuperv(INSTANCE_APP, ['-w', '1', '--instance-var', 'INSTANCE_ID'], { name: 'idx2' });
    const r = JSON.parse((await get(custom.port, '/')).body) as Record<string, string>;
    assert.equal(r.INSTANCE_ID, '0');
    assert.equal(r.SUPERV_WORKER_INDEX, '0');
    assert.equal(r.NODE_APP_INSTANCE, undefined, 'instance_var renames it, as in pm2');
    await custom.s.kill();
  });
});
