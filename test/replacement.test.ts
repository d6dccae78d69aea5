// Issue 18: every worker replaced at once, with new connections arriving all along. Node's cluster closes
// the shared listening socket when its last worker goes (clients then get ECONNREFUSED, and the connections
// it had queued are reset); superv's listen keeper holds the port, so every connection waits and is served.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI, FIXTURES, killAll, sleep, startSuperv, tempDir, type Superv } from './helpers';

after(killAll);

const POOL = join(FIXTURES, 'pool.js');
const run = promisify(execFile);
/** Longer than the kill takes (dump_timeout 1 s): the replacements listen only after the last worker died. */
const BOOT_DELAY_MS = '2500';

/** One fresh connection per request (no keep-alive), `conc` at a time, until stopped: outcomes counted. */
function stream(port: number, conc: number): { stop(): Promise<Record<string, number>> } {
  const counts: Record<string, number> = {};
  let running = true;
  const once = () => new Promise<string>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    // Far above a replacement's time (timeout + dump + boot): a connection left hanging shows as TIMEOUT.
    req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  const loops = Array.from({ length: conc }, async () => {
    while (running) {
      const r = await once();
      counts[r] = (counts[r] ?? 0) + 1;
    }
  });
  return { stop: async () => { running = false; await Promise.all(loops); return counts; } };
}

async function cli(runDir: string, ...args: string[]): Promise<void> {
  await run(process.execPath, [CLI, ...args], { env: { ...process.env, SUPERV_RUN_DIR: runDir } });
}

/**
 * Blocks every worker at once (the fixture spins while the flag file exists), streams new connections from
 * then on, lets superv kill and replace them all, and keeps streaming until the replacements have served a
 * while. `during` runs once every worker is stuck (a reload, a scale down).
 */
async function replaceAll(workers: number, opts: { during?: (s: Superv, runDir: string) => Promise<void>; wanted?: number; env?: Record<string, string> } = {}) {
  const dir = tempDir();
  const flag = join(dir, 'block-all');
  const { s, port, runDir } = await startSuperv(POOL, ['-w', String(workers), '--timeout', '1s', '--dump-timeout', '1s', '--slow', '0'],
    { dumpDir: dir, name: 'pool', env: { BLOCK_FLAG: flag, BOOT_DELAY_MS: BOOT_DELAY_MS, ...opts.env } });
  writeFileSync(flag, '');
  // Every worker checks the flag every 20 ms: give them time to block before the first new connection, so
  // that no connection is accepted by a worker that then blocks before reading it (that one would die with it).
  await sleep(500);
  const load = stream(port, 4);
  await s.waitEvent('worker-stuck', workers, 30_000);
  rmSync(flag);
  await opts.during?.(s, runDir);
  const wanted = opts.wanted ?? workers;
  await s.waitFor(() => s.readyPids().length === wanted && s.events('worker-killed').length >= workers || undefined, 60_000, 'replacements ready');
  // The replacements serve the waiting connections, then a while of fresh ones.
  await sleep(1500);
  const counts = await load.stop();
  const log = s.stdout;
  await s.kill();
  return { counts, log };
}

function assertAllServed(counts: Record<string, number>, log: string): void {
  const failed = Object.entries(counts).filter(([k]) => k !== '200');
  assert.deepEqual(failed, [], `every new connection answered 200: ${JSON.stringify(counts)}\n${log.slice(-3000)}`);
  assert.ok((counts['200'] ?? 0) >= 4, `the stream ran: ${JSON.stringify(counts)}`);
}

describe('every worker replaced at once: no refused or reset connection', () => {
  test('1 worker', async () => {
    const { counts, log } = await replaceAll(1);
    assertAllServed(counts, log);
    assert.match(log, /"event":"port-held"/, 'the master held the port while no worker listened');
  });

  test('4 workers', async () => {
    const { counts, log } = await replaceAll(4);
    assertAllServed(counts, log);
  });

  test('2 workers under SCHED_NONE (the kernel balances; the master holds the shared socket)', async () => {
    const { counts, log } = await replaceAll(2, { env: { NODE_CLUSTER_SCHED_POLICY: 'none' } });
    assertAllServed(counts, log);
  });

  test('during superv reload', async () => {
    const { counts, log } = await replaceAll(2, { during: (_s, runDir) => cli(runDir, 'reload', 'pool').catch(() => undefined) });
    assertAllServed(counts, log);
  });

  test('during superv scale down', async () => {
    const { counts, log } = await replaceAll(3, { wanted: 1, during: (_s, runDir) => cli(runDir, 'scale', 'pool', '1') });
    assertAllServed(counts, log);
  });

  test('the whole pool over max_memory at once: each is recycled, replacement first, and every connection served', async () => {
    const dir = tempDir();
    const flag = join(dir, 'grow-all');
    const { s, port } = await startSuperv(POOL, ['-w', '2', '--max-memory', '128M', '--min-uptime', '0', '--slow', '0'],
      { dumpDir: dir, env: { GROW_FLAG: flag, GROW_MB: '160', BOOT_DELAY_MS: BOOT_DELAY_MS } });
    const before = s.readyPids();
    const load = stream(port, 4);
    writeFileSync(flag, '');
    await s.waitEvent('memory-limit', 2, 30_000);
    await s.waitFor(() => (s.readyPids().length === 2 && s.readyPids().every((p) => !before.includes(p)) && s.events('worker-exited').length >= 2) || undefined,
      60_000, 'both replaced');
    await sleep(1500);
    const counts = await load.stop();
    const log = s.stdout;
    await s.kill();
    assertAllServed(counts, log);
    assert.equal(s.events('worker-killed').length, 0, 'recycled gracefully, not killed');
  });

  test('hold_timeout 0 restores plain node:cluster: the port closes with the last worker (the test can fail)', async () => {
    const dir = tempDir();
    const flag = join(dir, 'block-all');
    const { s, port } = await startSuperv(POOL, ['-w', '1', '--timeout', '1s', '--dump-timeout', '1s', '--slow', '0', '--hold-timeout', '0'],
      { dumpDir: dir, env: { BLOCK_FLAG: flag, BOOT_DELAY_MS: BOOT_DELAY_MS } });
    writeFileSync(flag, '');
    await sleep(500);
    const load = stream(port, 4);
    await s.waitEvent('worker-stuck', 1, 30_000);
    rmSync(flag);
    await s.waitFor(() => s.readyPids().length === 1 && s.events('worker-killed').length >= 1 || undefined, 60_000, 'replacement ready');
    await sleep(1000);
    const counts = await load.stop();
    assert.ok((counts.ECONNREFUSED ?? 0) + (counts.ECONNRESET ?? 0) > 0, `without the keeper, connections are refused or reset: ${JSON.stringify(counts)}`);
    await s.kill();
  });
});
