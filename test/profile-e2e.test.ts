// `superv profile` and `superv heap-snapshot` end to end: a real supervisor serving traffic, the files the
// workers' watchdogs write (V8's formats, parsed; pprof decoded), 0600, no listening socket opened by any of
// superv's processes during the run, the workers serving throughout, and a clear error and non-zero exit for
// each kind of bad input, a worker that dies meanwhile included.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { Profile } from 'pprof-format';
import { CLI, FIXTURES, get, killAll, sleep, startSuperv, tempDir, type Superv } from './helpers';

const pexec = promisify(execFile);
const NAME = 'prof';

/** Inodes of the listening TCP sockets (IPv4 and IPv6) held by these processes. */
function listeningInodes(pids: number[]): Set<string> {
  const listening = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A') listening.add(cols[9]!);
    }
  }
  const out = new Set<string>();
  for (const pid of pids) {
    let fds: string[] = [];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let link = '';
      try { link = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && listening.has(m[1]!)) out.add(`${pid}:${m[1]}`);
    }
  }
  return out;
}

async function cli(runDir: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return pexec(process.execPath, [CLI, ...args], { env: { ...process.env, SUPERV_RUN_DIR: runDir }, maxBuffer: 256 * 2 ** 20 })
    .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
}

describe('profile and heap-snapshot on demand', () => {
  let s: Superv;
  let port = 0;
  let runDir = '';
  const out = tempDir('superv-prof-');
  let traffic: Promise<void> | undefined;
  let stopTraffic = false;
  let served = 0;

  before(async () => {
    ({ s, port, runDir } = await startSuperv(join(FIXTURES, 'cpu-routes.js'), ['-w', '2', '--timeout', '5s'], { name: NAME }));
    await s.waitEvent('worker-ready', 2);
    // Traffic throughout: the workers must keep serving while profiled.
    traffic = (async () => {
      while (!stopTraffic) {
        const r = await get(port, '/burn?ms=2').catch(() => undefined);
        if (r?.status === 200) served++;
      }
    })();
  });
  after(async () => {
    stopTraffic = true;
    await traffic;
    await killAll();
  });

  test('profile of one worker: a V8 .cpuprofile, 0600, no listening socket opened meanwhile', async () => {
    const pids = [s.pid, ...s.workerPids()];
    const before = listeningInodes(pids);
    const file = join(out, 'one.cpuprofile');
    const running = cli(runDir, 'profile', NAME, '1', '--duration', '2s', '--out', file);
    await sleep(1000);
    const during = listeningInodes([s.pid, ...s.workerPids()]);
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...during].sort(), [...before].sort(), 'no listening socket was opened');
    assert.match(r.stdout, /one\.cpuprofile: CPU profile .* of worker 1/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Array<{ callFrame: { functionName: string; url: string } }>; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
    assert.ok(p.nodes.length > 0 && p.samples.length > 100 && p.timeDeltas.length === p.samples.length, `${p.samples.length} samples`);
    assert.ok(p.endTime - p.startTime >= 1.5e6, 'it covers the duration (µs)');
    assert.ok(p.nodes.some((n) => n.callFrame.functionName === 'burnFor' && n.callFrame.url.endsWith('cpu-routes.js')), 'the app\'s hot function is in it');
    assert.equal((await get(port, '/')).status, 200);
  });

  test('profile of every worker, and --format pprof', async () => {
    const r = await cli(runDir, 'profile', NAME, '--duration', '1s', '--out', join(out, 'all.cpuprofile'));
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(out).filter((f) => /^all-w\d+\.cpuprofile$/.test(f));
    assert.equal(files.length, 2, `one file per worker: ${readdirSync(out).join(', ')}`);
    const pb = join(out, 'w1.pb.gz');
    const q = await cli(runDir, 'profile', NAME, '1', '--duration', '1s', '--format', 'pprof', '--out', pb);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(statSync(pb).mode & 0o777, 0o600);
    const prof = Profile.decode(gunzipSync(readFileSync(pb)));
    assert.ok(prof.sample.length > 0 && prof.location.length > 0, `${prof.sample.length} samples`);
    const names = prof.function.map((f) => prof.stringTable.strings[Number(f.name)]);
    assert.ok(names.includes('burnFor'), `burnFor among ${names.length} functions`);
    assert.ok(!readdirSync(out).some((f) => f.endsWith('.tmp')), 'no temporary file left');
  });

  test('heap snapshot: a V8 .heapsnapshot, 0600, the pause is not a stall, the worker keeps serving', async () => {
    const file = join(out, 'w2.heapsnapshot');
    const r = await cli(runDir, 'heap-snapshot', NAME, '2', '--out', file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /pauses while its heap is written/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const snap = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[] }; node_count: number }; nodes: number[]; strings: string[] };
    assert.ok(snap.snapshot.meta.node_fields.includes('self_size') && snap.nodes.length === snap.snapshot.node_count * snap.snapshot.meta.node_fields.length);
    assert.equal(s.events('worker-stuck').length, 0, 'no worker was taken for stuck');
    const servedBefore = served;
    await sleep(500);
    assert.ok(served > servedBefore, 'traffic is still served');
  });

  test('bad input: a clear error and a non-zero exit', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['profile', 'ghost', '--duration', '1s', '--out', join(out, 'g.cpuprofile')], /no supervisor named ghost is running/],
      [['profile', NAME, '9', '--duration', '1s', '--out', join(out, 'x.cpuprofile')], /no live worker 9/],
      [['profile', NAME, '1', '--duration', 'soon', '--out', join(out, 'x.cpuprofile')], /--duration.*"soon"/],
      [['profile', NAME, 'one'], /WORKER.*"one"/],
      [['profile', NAME, '1', '--format', 'svg'], /--format.*"svg"/],
      [['profile', NAME, '1', '--duration', '1s', '--out', '/nonexistent-dir/x.cpuprofile'], /cannot write \/nonexistent-dir\/x\.cpuprofile/],
      [['profile', NAME, '1', '--out', out], /exists and is not a regular file/],
      [['heap-snapshot', NAME], /superv heap-snapshot NAME WORKER/],
      [['heap-snapshot', NAME, '7', '--out', join(out, 'x.heapsnapshot')], /no live worker 7/],
      [['profile', NAME, '--bogus'], /unknown option --bogus/],
    ];
    for (const [args, want] of cases) {
      const r = await cli(runDir, ...args);
      assert.notEqual(r.code, 0, `${args.join(' ')} exits non-zero`);
      assert.match(r.stderr, want, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  test('a worker that dies during its profile: a clear error, and the others keep serving', async () => {
    const pid = s.workerPids()[0]!;
    const ids = s.events('worker-spawned').filter((l) => l.pid === pid).map((l) => l.worker);
    const file = join(out, 'dies.cpuprofile');
    const running = cli(runDir, 'profile', NAME, String(ids[0]), '--duration', '30s', '--out', file);
    // The watchdog creates the file when the profile starts: kill the worker then.
    for (let i = 0; i < 300 && !existsSync(file); i++) await sleep(50);
    assert.ok(existsSync(file), 'the profile started');
    process.kill(pid, 'SIGKILL');
    const r = await running;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /worker \d+ \(pid \d+\): the profile failed: the worker exited/,
      s.lines.filter((l) => /exited|stuck|crash|kill|dump/.test(String(l.event))).map((l) => l.msg).join('\n'));
    assert.equal((await get(port, '/')).status, 200);
  });
});
