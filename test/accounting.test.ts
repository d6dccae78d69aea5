// The request tracker's count, in-process over real HTTP on 127.0.0.1: thousands of requests of every
// ending (answered, aborted by the client mid-wait, handler errors that destroy the response or the
// socket, streams cut mid-body), over keep-alive connections and pipelined raw sockets, in a random mix.
// Every request must be counted out exactly once: the count returns to exactly 0, and answered + aborted
// equals the requests the server saw. (The end-to-end version, through superv, is in inflight-e2e.test.ts.)

import assert from 'node:assert/strict';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { H_INFLIGHT, H_OLDEST, RequestTable } from '../src/worker/request-table';
import { RequestTracker } from '../src/worker/tracker';

/** mulberry32: a seeded PRNG, so a failing mix can be replayed with SEED=... */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function route(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const ms = Number(url.searchParams.get('ms') ?? 0);
  switch (url.pathname) {
    case '/fast': res.end('ok'); return;
    case '/wait': setTimeout(() => { if (!res.destroyed) res.end('late'); }, ms); return;
    case '/hang': return; // only the client ends these
    case '/throw':
      // A handler error as a framework reports it: caught, answered 500.
      try { throw new Error('boom'); } catch { res.statusCode = 500; res.end('error'); }
      return;
    case '/destroy': res.destroy(new Error('handler gave up')); return;
    case '/socket-destroy': req.socket.destroy(); return;
    case '/stream': {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let n = 0;
      const t = setInterval(() => {
        if (res.destroyed) { clearInterval(t); return; }
        res.write(`data: ${n}\n\n`);
        if (++n >= 5) { clearInterval(t); res.end(); }
      }, Math.max(1, ms / 5));
      return;
    }
    case '/stream-error': res.write('partial'); setTimeout(() => res.destroy(new Error('upstream failed')), ms); return;
    default: res.statusCode = 404; res.end();
  }
}

const PATHS = ['/fast', '/wait', '/hang', '/throw', '/destroy', '/socket-destroy', '/stream', '/stream-error'];

/** One request over the keep-alive agent; aborted by the client after `abortAfter` ms when given (always for /hang). */
function viaAgent(agent: Agent, port: number, path: string, abortAfter: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.on('data', () => undefined);
      res.on('end', resolve);
      res.on('error', () => resolve());
      res.on('aborted', () => resolve());
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    if (abortAfter !== undefined) setTimeout(() => req.destroy(), abortAfter);
    req.end();
  });
}

/** `paths` pipelined on one raw connection; the client hangs up after `hangUpAfter` ms (or once all answered). */
function pipelined(port: number, paths: string[], hangUpAfter: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
    });
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      if ((got.match(/HTTP\/1\.1 /g) ?? []).length >= paths.length && got.endsWith('\r\n\r\n')) s.end();
    });
    const t = setTimeout(() => s.destroy(), hangUpAfter);
    s.on('close', () => { clearTimeout(t); resolve(); });
    s.on('error', () => undefined);
  });
}

function randomPath(rand: () => number): string {
  const p = PATHS[Math.floor(rand() * PATHS.length)]!;
  return `${p}?ms=${Math.floor(rand() * 60)}`;
}

test('randomized: every request is counted out exactly once; the count returns to exactly 0', async () => {
  const seed = Number(process.env.SEED ?? Date.now() % 1e9);
  const rand = prng(seed);
  const table = RequestTable.create();
  const tracker = new RequestTracker(table);
  tracker.install();
  let seen = 0;
  let lowest = 0;
  let peak = 0;
  const server = createServer((req, res) => {
    seen++;
    peak = Math.max(peak, tracker.inflight);
    lowest = Math.min(lowest, tracker.inflight);
    route(req, res);
  });
  server.keepAliveTimeout = 2000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sampler = setInterval(() => { peak = Math.max(peak, tracker.inflight); lowest = Math.min(lowest, tracker.inflight); }, 5);
  try {
    const jobs: Array<Promise<void>> = [];
    // A wave of held requests first, so the tracker grows past its initial 512 slots; the clients hang up
    // once the server holds them (connections are accepted slowly on a busy machine: no fixed delay).
    const held = Array.from({ length: 700 }, (_, i) => {
      const req = request({ host: '127.0.0.1', port, path: `/hang?i=${i}`, agent: new Agent({ keepAlive: false }) });
      req.on('error', () => undefined);
      req.end();
      return req;
    });
    const holdUntil = Date.now() + 30_000;
    while (tracker.inflight < 600 && Date.now() < holdUntil) await sleep(20);
    for (const req of held) setTimeout(() => req.destroy(), Math.floor(rand() * 200));
    for (let i = 0; i < 2500; i++) {
      const path = randomPath(rand);
      const abort = path.startsWith('/hang') || rand() < 0.2 ? Math.floor(rand() * 80) : undefined;
      jobs.push(viaAgent(agent, port, path, abort));
      if (i % 10 === 0) {
        const batch = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => randomPath(rand));
        jobs.push(pipelined(port, batch, rand() < 0.5 ? Math.floor(rand() * 60) : 1500));
      }
      if (i % 200 === 0) await sleep(5);
    }
    const t0 = Date.now();
    await Promise.all(jobs);
    if (process.env.DEBUG_TIMING) console.log('jobs took', Date.now() - t0, 'ms; seen', seen);
    agent.destroy();
    // Closing is asynchronous on both sides: poll, never a fixed sleep.
    const deadline = Date.now() + 15_000;
    while ((tracker.inflight !== 0 || tracker.served + tracker.aborted !== seen) && Date.now() < deadline) await sleep(20);
    const msg = `seed ${seed}: seen ${seen}, served ${tracker.served}, aborted ${tracker.aborted}, in flight ${tracker.inflight}`;
    assert.ok(seen > 1500, msg);
    assert.ok(peak > 512, `the mix held more than the initial 512 slots (peak ${peak}); ${msg}`);
    assert.ok(tracker.aborted > 500, `the client aborts were counted out as aborted; ${msg}`);
    assert.equal(tracker.inflight, 0, msg);
    assert.equal(tracker.served + tracker.aborted, seen, `each request counted out exactly once; ${msg}`);
    assert.ok(lowest >= 0, `never below 0; ${msg}`);
    // What the watchdog and a blocked-loop dump read agrees: nothing in shared memory either.
    assert.equal(table.header[H_INFLIGHT], 0);
    assert.equal(table.header[H_OLDEST], 0);
    assert.deepEqual(table.snapshot(Date.now()), []);
    assert.deepEqual(tracker.list(10, false), []);
  } finally {
    clearInterval(sampler);
    server.closeAllConnections();
    server.close();
  }
});
