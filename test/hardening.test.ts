// Hardening end to end (issue 24), as a hostile or unlucky operator would try it. Runs as root in CI, so the
// root-only cases (a symlink to a root-owned dir, a dir owned by `nobody`) are real; every path is a temp dir.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync,
  symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { FIXTURES, Superv, alive, freePort, get, getWhenUp, killAll, sleep, startSuperv, tempDir, cli } from './helpers';

after(killAll);

const APP = join(FIXTURES, 'app.js');
const NOBODY = 65534;
const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;


/** Starts superv expecting it to refuse; returns its stderr. */
async function refused(args: string[], env: Record<string, string> = {}): Promise<string> {
  const s = new Superv(['start', APP, '-w', '1', ...args], { env: { PORT: String(await freePort()), ...env } });
  const { code } = await s.exited;
  assert.equal(code, 2, `exit 2 expected\n${s.stderr}\n${s.stdout.slice(-2000)}`);
  assert.equal(s.events('worker-spawned').length, 0, 'nothing forked');
  return s.stderr;
}

/** A root-owned directory standing for /etc: a file inside, mode 0755. */
function fakeEtc(): { dir: string; file: string; snapshot: () => string } {
  const dir = join(tempDir('i24-etc-'), 'etc');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const file = join(dir, 'passwd');
  writeFileSync(file, 'root:x:0:0::/root:/bin/sh\n', { mode: 0o644 });
  const snapshot = () => JSON.stringify({ mode: statSync(dir).mode, files: readdirSync(dir).sort(), text: readFileSync(file, 'utf8'), fmode: statSync(file).mode });
  return { dir, file, snapshot };
}

describe('files: no symlink followed, no foreign or loose dir used', { skip: !isRoot && 'needs root' }, () => {
  test('--dump-dir a symlink to a root-owned dir: exit 2, the target untouched', async () => {
    const etc = fakeEtc();
    const before = etc.snapshot();
    const link = join(tempDir(), 'dumps');
    symlinkSync(etc.dir, link);
    assert.match(await refused(['--dump-dir', link]), /SUPERV_ERR_UNSAFE_PATH|refusing an unsafe path: dump_dir: .*is a symlink/);
    assert.equal(etc.snapshot(), before, 'no chmod, no file written');
  });

  test('a symlink planted by nobody in a world-writable sticky dir, as the dump dir or above it: exit 2', async () => {
    const etc = fakeEtc();
    const before = etc.snapshot();
    const shared = join(tempDir(), 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const planted = join(shared, 'superv-dumps');
    symlinkSync(etc.dir, planted);
    lchownSync(planted, NOBODY, NOBODY);
    assert.match(await refused(['--dump-dir', planted]), /is a symlink/);
    assert.match(await refused(['--dump-dir', join(planted, 'sub')]), /symlink owned by uid 65534: refusing to follow it/);
    assert.equal(etc.snapshot(), before);
  });

  test('a dump dir owned by nobody, or writable by others without the sticky bit: exit 2, never chmodded', async () => {
    const foreign = join(tempDir(), 'foreign');
    mkdirSync(foreign, { mode: 0o700 });
    chownSync(foreign, NOBODY, NOBODY);
    assert.match(await refused(['--dump-dir', foreign]), /belongs to uid 65534/);
    const loose = join(tempDir(), 'loose');
    mkdirSync(loose);
    chmodSync(loose, 0o777);
    assert.match(await refused(['--dump-dir', loose]), /writable by group or others \(mode 777\)/);
    assert.equal(statSync(loose).mode & 0o7777, 0o777, 'not chmodded');
    const looseParent = join(tempDir(), 'loose-parent');
    mkdirSync(looseParent);
    chmodSync(looseParent, 0o777);
    assert.match(await refused(['--dump-dir', join(looseParent, 'dumps')]), /writable by others and not sticky/);
  });

  test('--run-dir a symlink, or owned by nobody: exit 2', async () => {
    const etc = fakeEtc();
    const link = join(tempDir(), 'run');
    symlinkSync(etc.dir, link);
    assert.match(await refused(['--dump-dir', tempDir()], { SUPERV_RUN_DIR: link }), /run_dir: .*is a symlink/);
    const foreign = join(tempDir(), 'run-foreign');
    mkdirSync(foreign, { mode: 0o700 });
    chownSync(foreign, NOBODY, NOBODY);
    assert.match(await refused(['--dump-dir', tempDir()], { SUPERV_RUN_DIR: foreign }), /belongs to uid 65534/);
  });

  test('--pid-file and --log-file through a symlink or a hard link never write the target', async () => {
    const etc = fakeEtc();
    const before = etc.snapshot();
    const dir = tempDir();
    const pidLink = join(dir, 'app.pid');
    symlinkSync(etc.file, pidLink);
    const { s } = await startSuperv(APP, ['-w', '1', '--pid-file', pidLink]);
    assert.equal(etc.snapshot(), before, 'the pid file replaced the symlink, not the target');
    assert.ok(lstatSync(pidLink).isFile() && readFileSync(pidLink, 'utf8') === `${s.pid}\n`);
    await s.kill();

    const logLink = join(dir, 'd.log');
    symlinkSync(etc.file, logLink);
    const daemon = await cli(tempDir('superv-run-'), 'start', APP, '-w', '1', '--daemon', '--log-file', logLink, '--dump-dir', tempDir());
    assert.equal(daemon.code, 2, daemon.stderr);
    assert.match(daemon.stderr, /log_file: .*is a symlink/);
    const hard = join(dir, 'hard.log');
    linkSync(etc.file, hard);
    const daemon2 = await cli(tempDir('superv-run-'), 'start', APP, '-w', '1', '--daemon', '--log-file', hard, '--dump-dir', tempDir());
    assert.equal(daemon2.code, 2, daemon2.stderr);
    assert.match(daemon2.stderr, /has 2 hard links/);
    assert.equal(etc.snapshot(), before);
  });

  test('an unwritable dump dir is announced at start; an existing open dir of ours is used as is', async () => {
    const notADir = join(tempDir(), 'file');
    writeFileSync(notADir, 'x');
    const a = await startSuperv(APP, ['-w', '1'], { dumpDir: join(notADir, 'dumps') });
    const [warn] = a.s.events('dump-dir-unwritable');
    assert.ok(warn, 'warned at start');
    assert.ok(a.s.lines.indexOf(warn!) < a.s.lines.findIndex((l) => l.event === 'worker-spawned'), 'before any worker');
    await a.s.kill();
    const open = tempDir();
    chmodSync(open, 0o755);
    const b = await startSuperv(APP, ['-w', '1'], { dumpDir: open });
    assert.equal(b.s.events('dump-dir-open').length, 1);
    process.kill(b.s.workerPids()[0]!, 'SIGUSR2');
    await b.s.waitEvent('dump-written');
    assert.equal(statSync(open).mode & 0o7777, 0o755, 'not chmodded');
    await b.s.kill();
  });
});

describe('one master per name', () => {
  test('masters started in the same instant: exactly one runs, the others exit 2 naming its pid', async () => {
    for (let round = 0; round < 2; round++) {
      const runDir = tempDir('superv-run-');
      const port = await freePort();
      const all = Array.from({ length: 4 }, () => new Superv(['start', APP, '-w', '1', '--name', 'race', '--dump-dir', tempDir()],
        { env: { PORT: String(port), SUPERV_RUN_DIR: runDir } }));
      await Promise.all(all.map((s) => Promise.race([s.exited, s.waitEvent('master-ready', 1, 30000)])));
      const up = all.filter((s) => s.events('master-ready').length > 0);
      assert.equal(up.length, 1, `round ${round}: ${up.length} masters up`);
      for (const s of all.filter((x) => x !== up[0])) {
        assert.equal((await s.exited).code, 2);
        assert.match(s.stderr, new RegExp(`a supervisor named race is already running \\(pid ${up[0]!.pid}\\)`));
      }
      await up[0]!.kill();
    }
  });

  test('a deleted control socket is bound again, a deleted lock taken again (logged at error); a second master is still refused', async () => {
    const { s, runDir } = await startSuperv(APP, ['-w', '1'], { name: 'lost' });
    const sock = join(runDir, 'lost.sock');
    rmSync(sock);
    const [lost] = await s.waitEvent('control-socket-lost', 1, 10000);
    assert.equal(lost!.level, 50);
    await s.waitFor(() => existsSync(sock) || undefined, 10000, 'socket back');
    rmSync(join(runDir, 'lost.lock'));
    await s.waitEvent('lock-lost', 1, 10000);
    await s.waitFor(() => existsSync(join(runDir, 'lost.lock')) || undefined, 10000, 'lock back');
    const st = await cli(runDir, 'status', 'lost', '--json');
    assert.equal(st.code, 0, st.stderr);
    const second = new Superv(['start', APP, '-w', '1', '--name', 'lost', '--dump-dir', tempDir()], { env: { PORT: String(await freePort()), SUPERV_RUN_DIR: runDir } });
    assert.equal((await second.exited).code, 2);
    assert.match(second.stderr, new RegExp(`already running \\(pid ${s.pid}\\)`));
    await s.kill();
  });

  test('a master that does not answer: "not answering (pid N)", not "not running"; ls says so', async () => {
    const { s, runDir } = await startSuperv(APP, ['-w', '1'], { name: 'frozen' });
    process.kill(s.pid, 'SIGSTOP');
    try {
      const st = await cli(runDir, 'status', 'frozen', '--timeout', '1s');
      assert.notEqual(st.code, 0);
      assert.match(st.stderr, new RegExp(`the supervisor named frozen \\(pid ${s.pid}\\) is running but not answering: no reply within 1000 ms`));
      const ls = await cli(runDir, 'ls');
      assert.match(ls.stdout, new RegExp(`^frozen\\s+${s.pid}\\s+not answering`, 'm'));
    } finally {
      process.kill(s.pid, 'SIGCONT');
    }
    rmSync(join(runDir, 'frozen.sock'));
    process.kill(s.pid, 'SIGSTOP');
    try {
      const st = await cli(runDir, 'status', 'frozen', '--timeout', '1s');
      assert.match(st.stderr, /not answering: its control socket is missing/);
    } finally {
      process.kill(s.pid, 'SIGCONT');
    }
    await s.kill();
    const gone = await cli(runDir, 'status', 'frozen', '--timeout', '1s');
    assert.match(gone.stderr, /no supervisor named frozen is running/);
  });
});

describe("superv's code in the worker never throws into the app", () => {
  test('a worker at a tiny fd limit (the app handling EMFILE) and under heap pressure keeps serving', async () => {
    const { s, port, runDir } = await startSuperv(join(FIXTURES, 'fd-exhaust.js'),
      ['-w', '1', '--timeout', '3s', '--node-args', '--max-old-space-size=96']);
    const [pid] = s.readyPids();
    await run('prlimit', ['--pid', String(pid), '--nofile=64:64']);
    assert.equal((await get(port, '/ballast?mb=48')).status, 200);
    await get(port, '/exhaust?ms=3000');
    // Meanwhile every heartbeat reads memory usage, which opens /proc/self/stat: EMFILE for 3 s.
    await s.waitFor(() => /"source":"worker 1 stderr".*reading memory usage failed .*EMFILE/.test(s.stderr) || undefined, 10000, 'the error reported');
    await sleep(3500);
    const body = JSON.parse((await getWhenUp(port, '/')).body) as { pid: number; reachedEmfile: boolean; ballastMb: number };
    assert.equal(body.reachedEmfile, true, 'the app did reach its fd limit');
    assert.equal(body.pid, pid, 'the same worker serves');
    assert.equal(s.events('worker-exited').length, 0, s.stdout.slice(-3000));
    assert.equal(s.events('worker-stuck').length, 0, 'heartbeats kept coming');
    const st = await cli(runDir, 'status', 'fd-exhaust', '--json');
    assert.ok(((JSON.parse(st.stdout) as { workers: Array<{ supervErrors?: number }> }).workers[0]!.supervErrors ?? 0) > 0, 'counted');
    await s.kill();
  });
});

describe("the app's shutdown code runs", () => {
  test('stop, reload, scale-down and recycle: SIGTERM reaches the app\'s handler, the worker ends by itself', async () => {
    const termLog = join(tempDir(), 'term.log');
    writeFileSync(termLog, '');
    const { s, port } = await startSuperv(join(FIXTURES, 'term-handler.js'), ['-w', '2', '--graceful-timeout', '60s', '--max-requests', '40'],
      { env: { TERM_LOG: termLog } });
    const terminated = () => readFileSync(termLog, 'utf8').split('\n').filter(Boolean).map(Number);
    const cleanExits = () => s.events('worker-exited').filter((l) => l.code === 0 && l.signal === null).map((l) => l.pid as number);

    s.signal('SIGTTOU'); // scale down to 1
    await s.waitFor(() => cleanExits().length === 1 || undefined, 20000, 'scale-down exit');
    s.signal('SIGHUP'); // reload the last one
    await s.waitEvent('reload-done', 1, 30000);
    await s.waitFor(() => cleanExits().length === 2 || undefined, 20000, 'reload exit');
    for (let i = 0; i < 45; i++) await get(port, '/'); // recycle by max_requests
    await s.waitFor(() => cleanExits().length === 3 || undefined, 30000, 'recycle exit');
    s.signal('SIGTERM');
    assert.equal((await s.exited).code, 0);
    const exits = s.events('worker-exited');
    assert.equal(exits.length, 4);
    for (const e of exits) assert.deepEqual([e.code, e.signal], [0, null], `worker ${e.pid} ended by itself, not killed: ${JSON.stringify(e)}`);
    assert.deepEqual(terminated().sort(), exits.map((e) => e.pid as number).sort(), 'every worker ran the app\'s SIGTERM handler once');
  });
});

describe('bounded start and settings', () => {
  test('64 workers: SIGTERM during the start stops promptly', async () => {
    const s = new Superv(['start', APP, '-w', '64', '--dump-dir', tempDir()], { env: { PORT: String(await freePort()) } });
    await s.waitEvent('worker-ready', 1, 60000);
    const t0 = Date.now();
    s.signal('SIGTERM');
    const { code } = await s.exited;
    const ms = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(ms < 20000, `stopped in ${ms} ms`);
    assert.ok(s.events('worker-spawned').length < 64, 'forks are paced: the stop came before all were forked');
  });

  test('durations past Node\'s timer range, a tiny max_memory and an oversized env are configuration errors', async () => {
    assert.match(await refused(['--hook-timeout', '600h']), /hook_timeout .*must be at most 2147483647ms/);
    assert.match(await refused(['--graceful-timeout', '9999999s']), /graceful_timeout .*must be at most/);
    assert.match(await refused(['--max-memory', '1']), /max_memory .*must be at least 64M \(or 0 = off\)/);
    const cfg = join(tempDir(), 'big.yaml');
    writeFileSync(cfg, `env:\n  HUGE: "${'x'.repeat(200_000)}"\n`);
    assert.match(await refused(['--config', cfg]), /bad value for env: the variable HUGE is \d+ bytes/);
    const many = join(tempDir(), 'many.yaml');
    writeFileSync(many, 'env:\n' + Array.from({ length: 12 }, (_, i) => `  V${i}: "${'y'.repeat(100_000)}"\n`).join(''));
    assert.match(await refused(['--config', many]), /bad value for env: the workers' environment and arguments take \d+ bytes/);
  });
});

describe('output that cannot forge', () => {
  test('worker output becomes records naming their source; long lines are cut with a marker', async () => {
    const { s } = await startSuperv(join(FIXTURES, 'forge-output.js'), ['-w', '1']);
    await s.waitFor(() => s.lines.some((l) => l.msg === '[worker 1 stdout] after the long line') || undefined, 10000, 'output records');
    assert.equal(s.events('worker-stuck').length, 0, 'no forged record');
    const forged = s.lines.find((l) => typeof l.msg === 'string' && l.msg.includes('forged by the app'))!;
    assert.equal(forged.event, 'output');
    assert.equal(forged.source, 'worker 1 stdout');
    assert.equal(forged.level, 30);
    const long = s.lines.find((l) => typeof l.truncated === 'number')!;
    assert.ok(long.truncated as number > 80_000);
    assert.match(long.msg!, /…\[superv: line truncated, \d+ more characters dropped\]$/);
    assert.ok(long.msg!.length < 17_000);
    for (const line of s.stdout.split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), line.slice(0, 200));
    assert.match(s.stderr, /"source":"worker 1 stderr","msg":"\[worker 1 stderr\] \{\\"level\\":50/);
    await s.kill();
  });

  test('hooks: output recorded as `hook`, one at a time with hook_concurrency 1, their groups ended at exit and at stop', async () => {
    const dir = tempDir();
    const trace = join(dir, 'trace');
    const bg = join(dir, 'bg');
    const hook = `echo '{"level":50,"event":"worker-stuck"}'; echo start >> ${trace}; sleep 0.3; echo end >> ${trace}; ` +
      `sleep 300 & echo $! >> ${bg}; [ -e ${dir}/hang ] && sleep 300; true`;
    const { s, runDir } = await startSuperv(APP, ['-w', '1', '--on-dump', hook, '--hook-concurrency', '1', '--hook-timeout', '60s']);
    const [pid] = s.readyPids();
    for (let i = 0; i < 3; i++) { process.kill(pid!, 'SIGUSR2'); await s.waitEvent('dump-written', i + 1); }
    await s.waitEvent('hook-done', 3, 20000);
    assert.deepEqual(readFileSync(trace, 'utf8').trim().split('\n'), ['start', 'end', 'start', 'end', 'start', 'end'], 'never two at once');
    const hookOut = s.lines.filter((l) => l.source === 'hook on_dump stdout');
    assert.equal(hookOut.length, 3);
    assert.equal(s.events('worker-stuck').length, 0);
    const bgPids = () => readFileSync(bg, 'utf8').trim().split('\n').map(Number);
    await s.waitFor(() => bgPids().every((p) => !alive(p)) || undefined, 5000, 'backgrounded children ended with their hook');

    writeFileSync(join(dir, 'hang'), '');
    process.kill(pid!, 'SIGUSR2');
    await s.waitFor(() => bgPids().length === 4 || undefined, 10000, 'the hanging hook started');
    await sleep(200);
    const hanging = bgPids()[3]!;
    assert.ok(alive(hanging));
    assert.equal((await cli(runDir, 'stop', 'app')).code, 0);
    assert.equal((await s.exited).code, 0);
    assert.equal(s.events('hook-killed').length, 1);
    await s.waitFor(() => !alive(hanging) || undefined, 5000, 'the hook\'s group ended at stop');
  });
});
