// `superv logs` and the daemon's log files end to end: a real daemonised superv whose workers print thousands of
// numbered lines while its log is rotated by size, or renamed by the real logrotate (create mode) and reopened on
// SIGUSR1; every line must be in the files, and in `superv logs -f`'s output, exactly once and in order.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { formatRecord, parseRecord } from '../src/commands/log-records';
import { LogFile } from '../src/master/log-file';
import { CLI, FIXTURES, alive, cli, freePort, get, sleep, tempDir } from './helpers';

const run = promisify(execFile);
const LOAD = join(FIXTURES, 'log-load.js');
const LINES = 6000;

const daemons: number[] = [];
const followers: ChildProcess[] = [];
after(() => {
  for (const f of followers) { try { f.kill('SIGKILL'); } catch { /* gone */ } }
  for (const pid of daemons) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
});

interface Daemon { pid: number; runDir: string; dir: string; log: string; port: number; name: string }

async function startDaemon(name: string, extra: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const dir = tempDir('superv-logs-');
  const runDir = tempDir('superv-run-');
  const port = await freePort();
  const log = join(dir, `${name}.log`);
  await run(process.execPath, [CLI, 'start', LOAD, '-w', '2', '--daemon', '--name', name, '--log-file', log, '--dump-dir', join(dir, 'dumps'), ...extra],
    { env: { ...process.env, PORT: String(port), SUPERV_RUN_DIR: runDir, LINES: String(LINES), ...env } });
  const pid = Number(readFileSync(join(runDir, `${name}.pid`), 'utf8'));
  daemons.push(pid);
  return { pid, runDir, dir, log, port, name };
}

/** `superv logs NAME ARGS` running, its stdout collected. */
function follow(d: Daemon, ...args: string[]): { child: ChildProcess; out: () => string } {
  let out = '';
  const child = spawn(process.execPath, [CLI, 'logs', d.name, ...args], { env: { ...process.env, SUPERV_RUN_DIR: d.runDir }, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  followers.push(child);
  return { child, out: () => out };
}

async function until<T>(f: () => T | undefined | false, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** GET /go until both workers answered: each then prints its LINES lines. */
async function go(d: Daemon): Promise<number[]> {
  const pids = new Set<number>();
  while (pids.size < 2) pids.add(Number((await get(d.port, '/go')).body));
  return [...pids];
}

/** The app's `seq PID N` lines, per pid, in the order they appear in `lines` (log records). */
function seqs(lines: string[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const l of lines) {
    const m = /^seq (\d+) (\d+) x+$/.exec(parseRecord(l).msg);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!out.has(pid)) out.set(pid, []);
    out.get(pid)!.push(Number(m[2]));
  }
  return out;
}

function assertEveryLineOnce(lines: string[], pids: number[], where: string): void {
  const got = seqs(lines);
  for (const pid of pids) {
    const s = got.get(pid) ?? [];
    const firstBad = s.findIndex((v, i) => v !== i);
    assert.equal(firstBad, -1, `${where}: worker ${pid}'s line ${firstBad} is ${s[firstBad]} (lost, repeated or out of order)`);
    assert.equal(s.length, LINES, `${where}: worker ${pid} has ${s.length} of ${LINES} lines`);
  }
}

/** NAME.log.N … NAME.log.1, NAME.log: oldest first. */
function allLogLines(d: Daemon): { lines: string[]; rotated: string[] } {
  const base = `${d.name}.log`;
  const rotated = readdirSync(d.dir).filter((f) => f.startsWith(base + '.')).sort((a, b) => Number(b.slice(base.length + 1)) - Number(a.slice(base.length + 1)));
  const text = [...rotated, base].map((f) => readFileSync(join(d.dir, f), 'utf8')).join('');
  return { lines: text.split('\n').filter((l) => l !== ''), rotated };
}

async function stopDaemon(d: Daemon): Promise<void> {
  assert.equal((await cli(d.runDir, 'stop', d.name)).code, 0);
  await until(() => !alive(d.pid), 'the daemon to stop', 20_000);
}

describe('superv logs and log files', () => {
  test('size rotation under logging load: no line lost or repeated, in the files and through logs -f across a reload', async () => {
    const d = await startDaemon('rot', ['--log-max-size', '1M', '--log-keep', '50']);
    const f = follow(d, '-f', '--json', '--lines', '1');
    await until(() => f.out().length > 0, 'logs -f to print its first line');
    const pids = await go(d);
    await until(() => pids.every((p) => f.out().includes(`stdout] done ${p}`)), 'every line followed');

    // Across worker restarts: the reloaded workers' first lines reach the follower too.
    assert.equal((await cli(d.runDir, 'reload', d.name)).code, 0);
    const fresh = await until(() => {
      const booted = [...f.out().matchAll(/stdout\] booted (\d+)/g)].map((m) => Number(m[1])).filter((p) => !pids.includes(p));
      return booted.length >= 2 ? booted : undefined;
    }, 'the new workers\' lines in logs -f');
    assert.equal(fresh.length, 2);

    const { lines, rotated } = allLogLines(d);
    assert.ok(rotated.length >= 2, `rotated by size (${rotated.join(', ')})`);
    for (const r of rotated) {
      assert.equal(statSync(join(d.dir, r)).mode & 0o777, 0o600, `${r} is 0600`);
      assert.ok(statSync(join(d.dir, r)).size <= 2 ** 20, `${r} is at most log_max_size`);
    }
    assertEveryLineOnce(lines, pids, 'the log files');
    assert.ok(lines.every((l) => l.startsWith('{') && l.endsWith('}')), 'no line split across files');
    assertEveryLineOnce(f.out().split('\n').filter((l) => l !== ''), pids, 'logs -f');

    // --lines reaches into the rotated files; --worker keeps one worker's output and the master's lines about it.
    const many = await run(process.execPath, [CLI, 'logs', d.name, '--json', '--lines', '20000'],
      { env: { ...process.env, SUPERV_RUN_DIR: d.runDir }, maxBuffer: 64 * 2 ** 20 });
    assert.ok(many.stdout.split('\n').length > 12_000, 'more lines than the current file holds');
    const w = await cli(d.runDir, 'logs', d.name, '--worker', '1', '--lines', '50');
    assert.equal(w.code, 0, w.stderr);
    const shown = w.stdout.trimEnd().split('\n');
    assert.equal(shown.length, 50);
    assert.ok(shown.every((l) => / (w1 +|w1! +|master) \| /.test(l)), w.stdout.slice(0, 500));
    assert.ok(shown.some((l) => / w1 +\| seq /.test(l)) || shown.some((l) => / w1 +\| booted /.test(l)), 'worker 1 output, prefixed w1');

    f.child.kill('SIGTERM');
    await stopDaemon(d);
  });

  test('logrotate create mode + SIGUSR1 under logging load: the master reopens, no line lost or repeated', { skip: !hasLogrotate() && 'logrotate is not installed' }, async () => {
    // The load paced (LINES in bursts of 200, 60 ms apart: about 2 s) so that several rotations land while the
    // workers print, whatever the host's speed; back to back it can end before the second rotation.
    const d = await startDaemon('lr', ['--log-max-size', '0'], { PACE_MS: '60' });
    const f = follow(d, '-f', '--json', '--lines', '1');
    await until(() => f.out().length > 0, 'logs -f to print its first line');
    const conf = join(d.dir, 'logrotate.conf');
    writeFileSync(conf, `${d.log} {\n  rotate 50\n  create 0600\n  missingok\n  postrotate\n    kill -USR1 ${d.pid}\n  endscript\n}\n`, { mode: 0o600 });
    const pids = await go(d);
    // Rotate while the workers print: each run renames the file, creates a new one, then signals the master.
    let rotations = 0;
    const deadline = Date.now() + 120_000;
    let duringLoad = 0;
    while (!pids.every((p) => f.out().includes(`stdout] done ${p}`))) {
      const r = spawnSync('logrotate', ['-f', '-s', join(d.dir, 'logrotate.state'), conf], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      rotations++;
      if (!pids.some((p) => f.out().includes(`stdout] done ${p}`))) duringLoad++;
      await sleep(200);
      assert.ok(Date.now() < deadline, `the load ends (${rotations} rotations)`);
    }
    await until(() => (f.out().match(/"event":"log-reopened"/g) ?? []).length >= Math.min(rotations, 2), 'the reopen records');
    const { lines, rotated } = allLogLines(d);
    assert.ok(duringLoad >= 2, `at least two rotations while both workers printed (${duringLoad} of ${rotations})`);
    assert.ok(rotated.length >= 2, `logrotate rotated it (${rotated.join(', ')})`);
    assertEveryLineOnce(lines, pids, 'the log files');
    assertEveryLineOnce(f.out().split('\n').filter((l) => l !== ''), pids, 'logs -f');
    assert.equal(statSync(d.log).mode & 0o777, 0o600);
    f.child.kill('SIGTERM');
    await stopDaemon(d);
  });

  test('a foreground supervisor has no log file: logs says where its log is and exits non-zero', async () => {
    const runDir = tempDir('superv-run-');
    const r = await cli(runDir, 'logs', 'nope');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no supervisor named nope is running/);
    const bad = await cli(runDir, 'logs', '--lines', 'ten');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad value for --lines: "ten"/);
  });
});

function hasLogrotate(): boolean {
  return spawnSync('logrotate', ['--version']).status === 0;
}

test('formatRecord: a source prefix, the level for the master, escape sequences shown not run', () => {
  const out = parseRecord('{"level":30,"time":0,"event":"output","source":"worker 3 stdout","msg":"[worker 3 stdout] hi \\u001b[2J"}');
  assert.equal(out.source, 'w3');
  assert.equal(out.worker, 3);
  assert.match(formatRecord(out, false), / w3 {5}\| hi \\x1b\[2J$/);
  const err = parseRecord('{"level":30,"event":"output","source":"worker 12 stderr","msg":"[worker 12 stderr] boom"}');
  assert.match(formatRecord(err, false), / w12! {3}\| boom$/);
  const m = parseRecord('{"level":50,"event":"worker-stuck","worker":2,"msg":"worker 2 is stuck"}');
  assert.equal(m.worker, 2);
  assert.match(formatRecord(m, false), / master \| ERROR worker 2 is stuck$/);
  const raw = parseRecord('(node:1) Warning: something');
  assert.match(formatRecord(raw, false), / master \| \(node:1\) Warning: something$/);
});

test('LogFile: rotation keeps log_keep files of at most log_max_size, every line whole, once, in order', () => {
  const dir = tempDir('superv-logfile-');
  const path = join(dir, 'a.log');
  const problems: string[] = [];
  const f = new LogFile(path, 1000, 3, (p) => problems.push(p));
  for (let i = 0; i < 100; i++) f.write(`line ${String(i).padStart(3, '0')} ${'y'.repeat(88)}\n`);
  f.close();
  assert.deepEqual(readdirSync(dir).sort(), ['a.log', 'a.log.1', 'a.log.2', 'a.log.3'], 'the oldest beyond log_keep removed');
  const files = ['a.log.3', 'a.log.2', 'a.log.1', 'a.log'].map((n) => join(dir, n));
  for (const file of files) {
    assert.ok(statSync(file).size <= 1000, `${file} within log_max_size`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  }
  const nums = files.flatMap((file) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')).map((l) => {
    assert.match(l, /^line \d{3} y{88}$/, 'whole lines');
    return Number(l.slice(5, 8));
  });
  assert.deepEqual(nums, Array.from({ length: nums.length }, (_, i) => 100 - nums.length + i), 'the newest lines, consecutive');
  assert.deepEqual(problems, []);
});
