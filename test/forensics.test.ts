// Forensics end to end: a stuck worker is dumped from the inside, then killed and replaced; a slow
// request is dumped and its worker kept. Real CLI, real workers, real HTTP.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Dump, Frame } from '../src/dump/types';
import { FIXTURES, alive, get, killAll, sleep, startSuperv, tempDir } from './helpers';

after(killAll);

const APP = join(FIXTURES, 'app.js');

function readDump(file: string): Dump {
  return JSON.parse(readFileSync(file, 'utf8')) as Dump;
}

function topAppFrame(d: Dump): Frame | undefined {
  return d.capture?.stack?.find((f) => f.app);
}

const startApp = (extra: string[], dir?: string, env?: Record<string, string>) => startSuperv(APP, extra, { dumpDir: dir, env });

describe('a worker stuck in JS is dumped, then killed and replaced', () => {
  test('busy loop in a named function: the dump names the function, the route and a local', async () => {
    const { s, port, dir } = await startApp(['-w', '2', '--timeout', '2s', '--dump-timeout', '3s', '--slow', '0']);
    const [victim] = s.workerPids();
    const stuck = get(port, '/spin?ms=60000&user=ann', { timeoutMs: 60000 }).catch((e: Error) => e);
    // The other worker keeps serving while one is blocked (Node's round robin can hand the blocked
    // worker one more connection, so not every request is required to succeed).
    let served = 0;
    for (let i = 0; i < 6; i++) {
      const r = await get(port, '/', { timeoutMs: 1500 }).catch(() => undefined);
      if (r?.status === 200) served++;
    }
    assert.ok(served >= 3, `other worker served ${served}/6 while one was stuck`);
    const [written] = await s.waitEvent('dump-written', 1, 30000, (l) => l.reason === 'timeout');
    const d = readDump(written!.file as string);
    assert.equal(d.reason, 'timeout');
    assert.equal(d.action, 'killed');
    assert.ok(d.capture, `capture present; error: ${d.captureError}`);
    const top = topAppFrame(d)!;
    assert.equal(top.function, 'spinBusyLoop', JSON.stringify(d.capture!.stack?.slice(0, 4)));
    assert.match(top.file, /fixtures\/app\.js$/);
    assert.ok(top.line > 0);
    assert.ok(top.locals && 'spinCounter' in top.locals, `locals: ${Object.keys(top.locals ?? {}).join(',')}`);
    assert.equal(top.locals!.userPassword?.value, '[redacted]', 'a secret-looking local is redacted');
    assert.match(d.request!.url, /^\/spin\?ms=60000/);
    assert.equal(d.capture!.running?.url.startsWith('/spin'), true, 'the running request is known');
    assert.ok(d.capture!.loop.blocked);
    // Not killed early: heartbeat silence overstates a block, the watchdog's own clock decides.
    assert.ok(d.capture!.loop.blockedForMs >= 1900, `killed after ${d.capture!.loop.blockedForMs} ms of blocking (timeout 2 s)`);
    assert.ok(d.capture!.heap && d.capture!.heap.used_heap_size! > 0);
    assert.ok(d.master.proc.state, 'master /proc view');
    assert.equal(d.worker.pid, victim === d.worker.pid ? victim : d.worker.pid);
    const [exit] = await s.waitEvent('worker-exited', 1, 15000, (l) => l.pid === d.worker.pid);
    assert.equal(exit!.signal, 'SIGKILL');
    assert.equal(exit!.endedBy, 'timeout');
    await s.waitEvent('worker-ready', 3);
    assert.ok(!alive(d.worker.pid));
    assert.ok((await stuck) instanceof Error);
    assert.equal((await get(port, '/')).status, 200);
    await s.kill();
    const mode = statSync(written!.file as string).mode & 0o777;
    assert.equal(mode, 0o600, `dump file mode ${mode.toString(8)}`);
    assert.equal(statSync(dir).mode & 0o777, 0o700, 'dump dir mode');
  });

  test('catastrophic regex: the dump names the function that runs it', async () => {
    const { s, port } = await startApp(['-w', '1', '--timeout', '2s', '--dump-timeout', '3s', '--slow', '0']);
    get(port, '/regex?n=40', { timeoutMs: 60000 }).catch(() => undefined);
    const [written] = await s.waitEvent('dump-written', 1, 30000);
    const d = readDump(written!.file as string);
    assert.equal(topAppFrame(d)?.function, 'matchCatastrophic', JSON.stringify(d.capture?.stack?.slice(0, 4)));
    assert.equal(d.request?.url, '/regex?n=40');
    await s.kill();
  });

  test('a native sync block is killed within timeout + dump-timeout + 1 s, with the master /proc view', async () => {
    const timeout = 2000;
    const dumpTimeout = 1000;
    const { s, port } = await startApp(['-w', '1', '--timeout', `${timeout}ms`, '--dump-timeout', `${dumpTimeout}ms`, '--slow', '0']);
    const t0 = Date.now();
    get(port, '/native?s=30', { timeoutMs: 60000 }).catch(() => undefined);
    const [exit] = await s.waitEvent('worker-exited', 1, 30000);
    const took = Date.now() - t0;
    // The promise is timeout + dump-timeout + 1 s after the block began; the heartbeat interval and
    // a noisy machine add a little.
    assert.ok(took < timeout + dumpTimeout + 1000 + 1500, `killed after ${took} ms`);
    assert.equal(exit!.signal, 'SIGKILL');
    const [written] = await s.waitEvent('dump-written', 1, 10000);
    const d = readDump(written!.file as string);
    assert.equal(d.request?.url, '/native?s=30', 'the dump names the request');
    assert.ok(d.capture === undefined || d.capture.complete === false, 'the main thread could not be paused');
    const proc = d.master.proc;
    assert.ok(proc.wchan !== undefined || proc.syscall !== undefined, JSON.stringify(proc));
    assert.ok(proc.children?.some((c) => /sleep 30/.test(c.cmdline)), `children: ${JSON.stringify(proc.children)}`);
    await s.kill();
  });
});

test('a slow async request gets a slow dump and its worker lives', async () => {
  const { s, port } = await startApp(['-w', '1', '--slow', '1s', '--timeout', '10s']);
  const [pid] = s.workerPids();
  const reply = await get(port, '/wait?ms=2500&api_key=sk-live-123');
  assert.equal(reply.status, 200);
  const [written] = await s.waitEvent('dump-written', 1, 10000, (l) => l.reason === 'slow');
  const d = readDump(written!.file as string);
  assert.equal(d.action, 'none');
  assert.match(d.request!.url, /^\/wait\?ms=2500&api_key=/);
  assert.ok(!d.request!.url.includes('sk-live-123'));
  assert.equal(d.capture!.loop.blocked, false);
  assert.ok(alive(pid!));
  assert.equal(s.events('worker-exited').length, 0);
  await s.kill();
});

test('secrets never reach a dump: headers, cookies, query params, locals', async () => {
  const { s, port } = await startApp(['-w', '1', '--timeout', '2s', '--slow', '0']);
  const secrets = ['Bearer abc.def.ghi', 'sessionid=S3CR3T', 'key-XYZ-987', 'tok-4242', 'pw-hunter'];
  get(port, '/spin?ms=60000&token=tok-4242&password=pw-hunter&page=2', {
    timeoutMs: 60000,
    headers: { Authorization: secrets[0]!, Cookie: secrets[1]!, 'X-Api-Key': secrets[2]! },
  }).catch(() => undefined);
  const [written] = await s.waitEvent('dump-written', 1, 30000);
  const text = readFileSync(written!.file as string, 'utf8');
  for (const secret of [...secrets, 'hunter2-secret', 'S3CR3T', 'XYZ-987']) assert.ok(!text.includes(secret), `${secret} leaked`);
  const d = readDump(written!.file as string);
  assert.equal(d.capture!.running!.headers!.authorization, '[redacted]');
  assert.ok(d.request!.url.includes('page=2'), 'harmless params are kept');
  assert.ok(!s.stdout.includes('tok-4242') && !s.stdout.includes('pw-hunter'), 'logs are clean too');
  await s.kill();
});

test('SIGUSR2 to a live worker writes a manual dump; the worker lives', async () => {
  const { s } = await startApp(['-w', '1']);
  const [pid] = s.workerPids();
  process.kill(pid!, 'SIGUSR2');
  const [written] = await s.waitEvent('dump-written', 1, 10000);
  const d = readDump(written!.file as string);
  assert.equal(d.reason, 'manual');
  assert.equal(d.action, 'none');
  assert.ok(alive(pid!));
  await s.kill();
});

test('an unwritable dump dir: the kill still happens and the master survives', async () => {
  const base = tempDir();
  const notADir = join(base, 'file');
  writeFileSync(notADir, 'x');
  const { s, port } = await startApp(['-w', '1', '--timeout', '2s', '--dump-timeout', '1s', '--slow', '0'], join(notADir, 'dumps'));
  get(port, '/spin?ms=60000', { timeoutMs: 60000 }).catch(() => undefined);
  const [failed] = await s.waitEvent('dump-failed', 1, 30000);
  assert.match(String(failed!.err), /ENOTDIR|not a directory/i);
  await s.waitEvent('worker-exited', 1, 10000, (l) => l.endedBy === 'timeout');
  await s.waitEvent('worker-ready', 2, 15000);
  assert.ok(alive(s.pid));
  assert.equal((await get(port, '/')).status, 200);
  await s.kill();
});

test('--dump-keep caps the files kept', async () => {
  const dir = tempDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { s } = await startApp(['-w', '1', '--dump-keep', '2'], dir);
  const [pid] = s.workerPids();
  for (let i = 1; i <= 4; i++) {
    process.kill(pid!, 'SIGUSR2');
    await s.waitEvent('dump-written', i, 10000);
    await sleep(20);
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.equal(files.length, 2, files.join(','));
  const newest = s.events('dump-written').slice(-2).map((l) => (l.file as string).split('/').pop());
  assert.deepEqual(files.sort(), newest.sort(), 'the newest are kept');
  await s.kill();
});
