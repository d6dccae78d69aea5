// Thousands of requests in flight per worker, end to end through the real CLI (issue 21): long-polls whose
// clients leave, server-sent event streams, a stream that stalls, upgraded connections, and a dump taken
// with thousands held. The fd limit here is 20,000 per process; these tests hold at most ~2,600 sockets.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Dump } from '../src/dump/types';
import { CLI, FIXTURES, get, killAll, sleep, startSuperv, supervStatus } from './helpers';

const APP = join(FIXTURES, 'longpoll-app.js');
const run = promisify(execFile);

after(killAll);

/** Opens `n` connections, each sending one `path` request and holding it; batches keep the accept queue short. */
async function hold(port: number, n: number, path: (i: number) => string): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    s.write(`GET ${path(i)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    out.push(s);
    if (i % 200 === 199) await sleep(50);
  }
  return out;
}

async function totalInflight(runDir: string, name: string): Promise<{ inflight: number; upgraded: number; oldest: number }> {
  const st = await supervStatus(runDir, name);
  return {
    inflight: st.workers.reduce((n, w) => n + w.inflight, 0),
    upgraded: st.workers.reduce((n, w) => n + (w.upgraded ?? 0), 0),
    oldest: st.workers.filter((w) => w.oldest).length,
  };
}

async function waitStatus(runDir: string, name: string, ok: (t: { inflight: number; upgraded: number; oldest: number }) => boolean,
  timeoutMs: number, what: string): Promise<{ inflight: number; upgraded: number; oldest: number }> {
  const deadline = Date.now() + timeoutMs;
  let last = await totalInflight(runDir, name);
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(last)}`);
    await sleep(200);
    last = await totalInflight(runDir, name);
  }
  return last;
}

function readDump(file: string): Dump {
  return JSON.parse(readFileSync(file, 'utf8')) as Dump;
}

describe('thousands in flight', { concurrency: false }, () => {
  test('2,500 long-polls whose clients leave: status returns to 0 in flight, and a graceful stop ends with the last real request, no SIGKILL', async () => {
    const name = 'i21poll';
    const { s, port, runDir } = await startSuperv(APP, ['--workers', '2', '--slow', '0', '--graceful-timeout', '60s'], { name });
    const N = 2500;
    const socks = await hold(port, N, (i) => `/poll?ms=120000&i=${i}`);
    const held = await waitStatus(runDir, name, (t) => t.inflight >= N, 60_000, `${N} requests in flight`);
    assert.equal(held.inflight, N, 'every request counted, none twice');
    assert.equal(held.oldest, 2, 'each worker shows its oldest request');
    for (const sock of socks) sock.destroy();
    const gone = await waitStatus(runDir, name, (t) => t.inflight === 0, 30_000, '0 in flight after the clients left');
    assert.equal(gone.oldest, 0, 'no oldest request is left behind');

    // One real request in flight, then a graceful stop: it must wait for that one, and only for it.
    // 8 s: long enough to be seen in `status` on a loaded machine (one status call took 2 s here).
    const real = get(port, '/poll?ms=8000', { timeoutMs: 30_000 });
    await waitStatus(runDir, name, (t) => t.inflight === 1, 8_000, 'the real request in flight');
    const stopAt = Date.now();
    s.signal('SIGTERM');
    const reply = await real;
    assert.equal(reply.status, 200, 'the real request was answered during the drain');
    const exit = await s.exited;
    const tookMs = Date.now() - stopAt;
    assert.equal(exit.code, 0);
    assert.equal(s.events('worker-kill').length, 0, 'no worker was SIGKILLed at the graceful timeout');
    assert.ok(tookMs < 30_000, `the stop took ${tookMs} ms: it waited for phantom requests (graceful_timeout is 60 s)`);
  });

  test('SSE streams that keep writing are not slow; a stalled stream and a long request are; exempt routes never; upgrades are counted apart', async () => {
    const name = 'i21sse';
    const { s, port, runDir, dir } = await startSuperv(APP, ['--workers', '1', '--slow', '1s', '--slow-exempt', '/slowpoll /exempt/**'], { name });
    const streams = await hold(port, 3, () => '/events?every=100');
    const exempt = await hold(port, 2, (i) => (i === 0 ? '/slowpoll?ms=60000' : '/exempt/a/b?ms=60000'));
    const ws = connect(port, '127.0.0.1');
    ws.on('error', () => undefined);
    ws.write('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    const t = await waitStatus(runDir, name, (x) => x.inflight === 5 && x.upgraded === 1, 15_000, '5 requests and 1 upgraded connection');
    assert.equal(t.upgraded, 1);
    // Several times `slow`, while the streams write and the exempt requests wait.
    await sleep(4000);
    assert.deepEqual(s.events('slow-request').map((l) => l.url), [], 'no stream or exempt route was dumped as slow');

    const stalled = await hold(port, 1, () => '/stall');
    const [stallEvent] = await s.waitEvent('slow-request', 1, 15_000);
    assert.match(String(stallEvent!.url), /^\/stall/);
    assert.match(String(stallEvent!.msg), /streaming for .* has written nothing for/);
    const plain = await hold(port, 1, () => '/poll?ms=60000');
    await s.waitEvent('slow-request', 2, 15_000);
    const slow = s.events('slow-request').map((l) => String(l.url));
    assert.match(slow[1]!, /^\/poll/);
    await s.waitEvent('dump-written', 2, 15_000);
    const dumps = s.events('dump-written').map((l) => readDump(String(l.file)));
    const stallDump = dumps.find((d) => d.request?.url.startsWith('/stall'));
    assert.ok(stallDump?.request?.lastWriteMs !== undefined && stallDump.request.lastWriteMs >= 1000, 'the stalled stream is dumped with its silence');
    await sleep(1500);
    assert.equal(s.events('slow-request').length, 2, 'one dump per request; streams and exempt routes still not dumped');
    const metricsLess = await totalInflight(runDir, name);
    assert.equal(metricsLess.inflight, 7, 'upgraded connections are not requests');
    ws.destroy();
    await waitStatus(runDir, name, (x) => x.upgraded === 0, 10_000, 'the upgraded connection to close');
    for (const x of [...streams, ...exempt, ...stalled, ...plain]) x.destroy();
    void dir;
  });

  test('a bad slow_exempt pattern stops the start with exit 2 and names it', async () => {
    const r = await run(process.execPath, [CLI, 'start', APP, '--slow-exempt', '/ok events'], { env: { ...process.env, PORT: '1' } })
      .then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /slow_exempt from flag --slow-exempt/);
    assert.match(r.stderr, /"events": a route pattern starts with \/ \(e\.g\. \/events\)/);
  });

  test('a dump with 1,500 in flight lists the oldest 100 and counts the rest per route; also with the loop blocked in native code', async () => {
    const name = 'i21dump';
    const { port, runDir, dir } = await startSuperv(APP, ['--workers', '1', '--slow', '0', '--dump-timeout', '5s'], { name });
    const polls = await hold(port, 1480, (i) => `/poll?ms=120000&user=${i}`);
    await waitStatus(runDir, name, (t) => t.inflight === 1480, 60_000, '1,480 polls in flight');
    const others = await hold(port, 20, (i) => `/slowpoll/${i}?ms=120000`);
    await waitStatus(runDir, name, (t) => t.inflight === 1500, 30_000, '1,500 in flight');
    const env = { ...process.env, SUPERV_RUN_DIR: runDir };
    const { stdout } = await run(process.execPath, [CLI, 'dump', name], { env });
    const d = readDump(stdout.trim());
    assert.equal(d.capture?.inflight.length, 100, 'the oldest 100 listed');
    assert.match(d.capture!.inflight[0]!.url, /^\/poll\?ms=120000&user=\d+$/);
    assert.deepEqual(d.capture?.inflightMore, { count: 1400, byRoute: [{ route: '/poll', count: 1380 }, { route: '/slowpoll/:id', count: 20 }] });
    const text = await run(process.execPath, [CLI, 'dumps', 'show', stdout.trim()], { env });
    assert.match(text.stdout, /In flight \(1,500, the oldest 100 listed\)/);
    assert.match(text.stdout, /1,400 more: \/poll 1,380, \/slowpoll\/:id 20/);

    // The main thread in a native call: the probe cannot run, the watchdog reads shared memory.
    const blocked = hold(port, 1, () => '/block-native?ms=8000');
    // Blocked once its `sleep` child runs (a fixed delay is too short on a loaded machine), and past the
    // watchdog's 250 ms threshold.
    const [worker] = (await supervStatus(runDir, name)).workers.map((w) => w.pid);
    const children = () => { try { return readFileSync(`/proc/${worker}/task/${worker}/children`, 'utf8').trim(); } catch { return ''; } };
    const until = Date.now() + 20_000;
    while (children() === '' && Date.now() < until) await sleep(50);
    await sleep(500);
    const b = readDump((await run(process.execPath, [CLI, 'dump', name], { env })).stdout.trim());
    assert.equal(b.capture?.loop.blocked, true, 'the dump was taken with the loop blocked');
    assert.equal(b.capture?.inflight.length, 100);
    assert.equal(b.capture?.inflightMore?.count, 1401, 'the blocking request counts too');
    assert.deepEqual(b.capture?.inflightMore?.byRoute.map((r) => r.route), ['/poll', '/slowpoll/:id', '/block-native']);
    for (const x of [...polls, ...others, ...(await blocked)]) x.destroy();
    void dir;
  });
});
