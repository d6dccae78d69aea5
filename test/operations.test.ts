// Operations end to end: the control socket and CLI, signals, zero-downtime reload under real load,
// recycling by requests and memory, metrics, hooks.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { masterView } from '../src/master/enrich';
import type { Dump } from '../src/dump/types';
import { COMMANDS } from '../src/commands/table';
import { CLI, FIXTURES, Superv, alive, freePort, get, killAll, sleep, startSuperv, supervStatus, tempDir, cli } from './helpers';

after(killAll);

const APP = join(FIXTURES, 'app.js');
const run = promisify(execFile);

const startApp = (extra: string[], opts: { runDir?: string; name?: string; dir?: string } = {}) =>
  startSuperv(APP, extra, { dumpDir: opts.dir, runDir: opts.runDir, name: opts.name });


describe('control socket and CLI', () => {
  test('ls, status, scale, dump of a blocked worker, stop', async () => {
    const { s, port, runDir } = await startApp(['-w', '2', '--timeout', '0', '--slow', '0'], { name: 'shop' });
    const sock = join(runDir, 'shop.sock');
    assert.equal(statSync(sock).mode & 0o777, 0o600, 'socket 0600');
    assert.equal(statSync(runDir).mode & 0o777, 0o700, 'run dir 0700');
    const ls = await cli(runDir, 'ls');
    assert.match(ls.stdout, /^shop\s+\d+\s+running\s+2\/2/m);
    const st = await supervStatus(runDir, 'shop');
    assert.equal(st.workers.length, 2);
    assert.ok(st.workers.every((w) => w.state === 'ready' && w.pid > 0 && typeof w.rss === 'number'));
    const human = await cli(runDir, 'status');
    assert.match(human.stdout, /ID\s+INDEX\s+PID\s+STATE/, 'a table when no --json');

    assert.equal((await cli(runDir, 'scale', 'shop', '+1')).code, 0);
    await s.waitEvent('worker-ready', 3);
    await cli(runDir, 'scale', 'shop', '1');
    await s.waitFor(() => s.workerPids().length === 1 || undefined, 15000, 'scaled down to 1');

    get(port, '/spin?ms=20000', { timeoutMs: 30000 }).catch(() => undefined);
    await sleep(700);
    const [id] = (await supervStatus(runDir, 'shop')).workers.map((w) => w.id);
    const dump = await cli(runDir, 'dump', 'shop', String(id));
    assert.equal(dump.code, 0, dump.stderr);
    const d = JSON.parse(readFileSync(dump.stdout.trim(), 'utf8')) as Dump;
    assert.equal(d.reason, 'manual');
    assert.equal(d.capture?.stack?.find((f) => f.app)?.function, 'spinBusyLoop', 'a manual dump reaches a blocked worker');

    const stop = await cli(runDir, 'stop', 'shop');
    assert.equal(stop.code, 0);
    assert.equal((await s.exited).code, 0);
    assert.ok(!existsSync(sock), 'socket removed at exit');
  });

  test('a second master with the same name is refused; a stale socket is not', async () => {
    const runDir = tempDir('superv-run-');
    const { s } = await startApp(['-w', '1'], { runDir });
    const second = new Superv(['start', APP, '-w', '1'], { env: { PORT: String(await freePort()), SUPERV_RUN_DIR: runDir } });
    const { code } = await second.exited;
    assert.equal(code, 2);
    assert.match(second.stderr, /a supervisor named app is already running \(pid \d+\)/);
    assert.equal(second.events('worker-spawned').length, 0, 'nothing forked');
    // A crashed master leaves its socket and pid file behind; the next start must not trip on them.
    process.kill(s.pid, 'SIGKILL');
    await s.exited;
    assert.ok(existsSync(join(runDir, 'app.sock')));
    const third = await startApp(['-w', '1'], { runDir });
    assert.ok(alive(third.s.pid));
    await third.s.kill();
  });

  test('control commands: clear errors for bad input', async () => {
    const runDir = tempDir('superv-run-');
    const none = await cli(runDir, 'status', 'ghost');
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no supervisor named ghost is running/);
    const bad = await cli(runDir, 'scale', 'x', 'lots');
    assert.match(bad.stderr, /superv scale NAME N\|\+N\|-N/);
  });
});

describe('signals', () => {
  test('HUP reloads, TTIN/TTOU scale, USR2 dumps every worker', async () => {
    const dir = tempDir();
    const { s, port } = await startApp(['-w', '2'], { dir });
    const before = s.workerPids();
    s.signal('SIGHUP');
    await s.waitEvent('reload-done', 1, 30000);
    // The last old worker may still be exiting when the reload is done (its drain ends with its exit).
    const afterPids = await s.waitFor(() => (s.workerPids().length === 2 ? s.workerPids() : undefined), 15000, 'the old workers gone');
    assert.ok(afterPids.every((p) => !before.includes(p)), 'every worker replaced');
    assert.equal((await get(port, '/')).status, 200);
    s.signal('SIGTTIN');
    await s.waitFor(() => s.workerPids().length === 3 || undefined, 15000, '3 workers');
    s.signal('SIGTTOU');
    await s.waitFor(() => s.workerPids().length === 2 || undefined, 15000, '2 workers');
    s.signal('SIGUSR2');
    await s.waitEvent('dump-written', 2, 15000);
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('-manual.json')).length, 2);
    await s.kill();
  });
});

describe('zero-downtime reload', () => {
  test('a reload under load loses no request', async () => {
    const { s, port, runDir } = await startApp(['-w', '2']);
    const load = autocannon({ url: `http://127.0.0.1:${port}/`, connections: 20, duration: 8, timeout: 5 });
    await sleep(1500);
    const r1 = await cli(runDir, 'reload');
    assert.equal(r1.code, 0, r1.stderr);
    await sleep(1000);
    s.signal('SIGHUP');
    await s.waitEvent('reload-done', 2, 30000);
    const result = await load;
    assert.ok(result.requests.total > 500, `load ran: ${result.requests.total}`);
    assert.equal(result.errors, 0, 'errors');
    assert.equal(result.timeouts, 0, 'timeouts');
    assert.equal(result.non2xx, 0, 'non-2xx');
    assert.ok(s.events('worker-drain').length >= 4);
    await s.kill();
  });

  test('a new worker that fails to boot aborts the reload; the old ones keep serving', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'superv.yaml');
    writeFileSync(cfg, `app: ${APP}\nworkers: 2\n`);
    const port = await freePort();
    const runDir = tempDir('superv-run-');
    const s = new Superv(['start', '--config', cfg, '--dump-dir', dir], { env: { PORT: String(port), SUPERV_RUN_DIR: runDir } });
    await s.waitEvent('master-ready');
    const pids = s.workerPids();
    writeFileSync(cfg, `app: ${join(FIXTURES, 'boot-throw.js')}\nworkers: 2\n`);
    const r = await cli(runDir, 'reload');
    assert.notEqual(r.code, 0);
    // The caller gets the new worker's own error, not only that it failed.
    assert.match(r.stderr, /reload aborted: the new worker \d+ exited before it was ready; the old workers keep serving\. Its stderr:\n.*fixture-boot-failure: DATABASE_URL is not set/);
    assert.deepEqual(s.workerPids().sort(), pids.sort(), 'old workers untouched');
    assert.equal((await get(port, '/')).status, 200);
    assert.ok(alive(s.pid));
    await s.kill();
  });
});

describe('reload re-reads the settings like start does', () => {
  test('a bad value aborts the reload before any worker is replaced; a start-only setting is reported, not applied', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'superv.yaml');
    writeFileSync(cfg, `app: ${APP}\nworkers: 1\nheartbeat_interval: 500ms\nlog_level: info\n`);
    const port = await freePort();
    const runDir = tempDir('superv-run-');
    const s = new Superv(['start', '--config', cfg, '--dump-dir', dir], { env: { PORT: String(port), SUPERV_RUN_DIR: runDir } });
    await s.waitEvent('master-ready');
    const pids = s.workerPids();
    // The same cross-setting check as start: timeout must be at least twice heartbeat_interval.
    writeFileSync(cfg, `app: ${APP}\nworkers: 1\nheartbeat_interval: 500ms\ntimeout: 600ms\nlog_level: info\n`);
    const bad = await cli(runDir, 'reload');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /timeout.*at least twice heartbeat_interval/);
    assert.deepEqual(s.workerPids(), pids, 'no worker replaced');
    writeFileSync(cfg, `app: ${APP}\nworkers: 1\nheartbeat_interval: 500ms\nlog_level: debug\n`);
    const ok = await cli(runDir, 'reload');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /not applied \(read only at start: stop, then start\): log_level/);
    assert.ok(s.events('reload-not-applied').length === 1);
    await s.kill();
  });
});

describe('every command has --help', () => {
  test('superv CMD --help prints that command\'s usage and exits 0, whatever else is on the line', async () => {
    const runDir = tempDir('superv-run-');
    for (const name of Object.keys(COMMANDS)) {
      const r = await cli(runDir, name, '--help');
      assert.equal(r.code, 0, `${name} --help: ${r.stderr}`);
      // start's options are the settings table: its help is the whole `superv --help`.
      assert.match(r.stdout, name === 'start' ? /superv start APP \[options\]/ : new RegExp(`^Usage: superv ${name}\\b`), name);
      const bogus = await cli(runDir, name, '--no-such-flag', '-h');
      assert.equal(bogus.code, 0, `${name} --no-such-flag -h: ${bogus.stderr}`);
    }
    const unknown = await cli(runDir, 'frobnicate', '--help');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });
});

describe('recycling', () => {
  test('--max-requests recycles a worker gracefully, replacement first', async () => {
    const { s, port } = await startApp(['-w', '1', '--max-requests', '30', '--max-requests-jitter', '5']);
    const [first] = s.workerPids();
    let failed = 0;
    for (let i = 0; i < 60; i++) if ((await get(port, '/').catch(() => undefined))?.status !== 200) failed++;
    const [drain] = await s.waitEvent('worker-drain', 1, 15000);
    assert.equal(drain!.pid, first);
    assert.match(String(drain!.why), /max_requests/);
    assert.equal(failed, 0);
    await s.waitFor(() => s.workerPids().length === 1 && s.workerPids()[0] !== first || undefined, 15000, 'replaced');
    await s.kill();
  });

  test('--max-memory: a dump with reason memory, then a graceful recycle', async () => {
    const dir = tempDir();
    const { s, port } = await startApp(['-w', '1', '--max-memory', '200M'], { dir });
    const [first] = s.workerPids();
    assert.equal((await get(port, '/leak?mb=250')).status, 200);
    const [written] = await s.waitEvent('dump-written', 1, 15000, (l) => l.reason === 'memory');
    const d = JSON.parse(readFileSync(written!.file as string, 'utf8')) as Dump;
    assert.equal(d.action, 'recycled');
    assert.ok(d.capture?.heap && d.capture.memory, 'heap stats in the memory dump');
    const [drain] = await s.waitEvent('worker-drain', 1, 15000);
    assert.equal(drain!.pid, first);
    await s.waitFor(() => s.workerPids().length === 1 && s.workerPids()[0] !== first || undefined, 15000, 'replaced');
    await s.kill();
  });
});

describe('metrics, health and hooks', () => {
  test('/metrics and /healthz on 127.0.0.1 only when asked', async () => {
    const mport = await freePort();
    const { s, port } = await startApp(['-w', '2', '--metrics-port', String(mport)]);
    for (let i = 0; i < 10; i++) await get(port, `/users/${i}`);
    await sleep(600);
    const health = await get(mport, '/healthz');
    assert.equal(health.status, 200);
    const m = (await get(mport, '/metrics')).body;
    assert.match(m, /superv_workers\{state="ready"\} 2/);
    assert.match(m, /superv_request_duration_seconds_count\{route="\/users\/:id"\} 10/);
    assert.match(m, /# TYPE superv_request_duration_seconds histogram/);
    // A generous deadline: on a host shared with other test runs the default 500 ms returned a partial view.
    const view = await masterView(s.pid, { timeoutMs: 5000 });
    const listening = (view.proc.tcp ?? []).filter((t) => t.state === 'LISTEN').map((t) => Number(t.local.split(':').pop()));
    assert.deepEqual(listening.sort(), [port, mport].sort(), `the master listens on the app port and the metrics port only: ${listening}`);
    await s.kill();

    const plain = await startApp(['-w', '1']);
    const v2 = await masterView(plain.s.pid, { timeoutMs: 5000 });
    const l2 = (v2.proc.tcp ?? []).filter((t) => t.state === 'LISTEN').map((t) => Number(t.local.split(':').pop()));
    assert.deepEqual(l2, [plain.port], 'no metrics port unless configured');
    await plain.s.kill();
  });

  test('on_dump runs with the dump path; a failing hook changes nothing else', async () => {
    const out = tempDir();
    const { s } = await startApp(['-w', '1', '--on-dump', `cp "$1" ${out}/ && test -n "$SUPERV_DUMP_FILE"`]);
    const [pid] = s.workerPids();
    process.kill(pid!, 'SIGUSR2');
    await s.waitEvent('hook-done', 1, 15000);
    assert.equal(readdirSync(out).filter((f) => f.endsWith('.json')).length, 1);
    await s.kill();

    const failing = await startApp(['-w', '1', '--on-dump', 'exit 3']);
    const [pid2] = failing.s.workerPids();
    process.kill(pid2!, 'SIGUSR2');
    const [f] = await failing.s.waitEvent('hook-failed', 1, 15000);
    assert.equal(f!.code, 3);
    assert.ok(alive(pid2!));
    assert.equal((await get(failing.port, '/')).status, 200);
    await failing.s.kill();
  });
});

describe('pm2 users', () => {
  test('superv start ecosystem.config.js maps the pm2 fields and warns about the rest', async () => {
    const port = await freePort();
    const runDir = tempDir('superv-run-');
    const s = new Superv(['start', join(FIXTURES, 'ecosystem.config.js'), '--dump-dir', tempDir()], { env: { PORT: String(port), SUPERV_RUN_DIR: runDir } });
    await s.waitEvent('master-ready');
    assert.match(s.stderr, /warning: pm2 field exec_mode is ignored/);
    assert.match(s.stderr, /warning: pm2 field watch is ignored/);
    const body = JSON.parse((await get(port, '/')).body) as { argv: string[]; env: string; execArgv: string[] };
    assert.deepEqual(body.argv, ['--from-eco']);
    assert.equal(body.env, 'eco-env');
    assert.ok(body.execArgv.includes('--no-warnings'));
    const st = await supervStatus(runDir, 'eco-api');
    assert.equal(st.workers.length, 2);
    await s.kill();
  });

  test('--daemon detaches with a pid file and a log file', async () => {
    const dir = tempDir();
    const runDir = tempDir('superv-run-');
    const port = await freePort();
    const log = join(dir, 'd.log');
    const r = await run(process.execPath, [CLI, 'start', APP, '-w', '1', '--daemon', '--name', 'bg', '--log-file', log, '--dump-dir', dir],
      { env: { ...process.env, PORT: String(port), SUPERV_RUN_DIR: runDir } });
    assert.match(r.stdout, /bg started in the background \(pid \d+\)/);
    const pid = Number(readFileSync(join(runDir, 'bg.pid'), 'utf8'));
    try {
      assert.ok(alive(pid));
      assert.equal((await get(port, '/')).status, 200);
      assert.match(readFileSync(log, 'utf8'), /"event":"master-ready"/);
      assert.equal((await cli(runDir, 'stop', 'bg')).code, 0);
      const deadline = Date.now() + 10000;
      while (alive(pid) && Date.now() < deadline) await sleep(100);
      assert.ok(!alive(pid), 'stopped');
    } finally {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* stopped */ }
    }
  });
});
