// The event-loop delay each heartbeat reports, end to end: the main thread's 50 ms liveness tick measures
// how late it fires (src/worker/heartbeat.ts), the heartbeat carries it, `superv status` shows it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import type { MasterStatus } from '../src/master/status';
import { CLI, FIXTURES, Superv, freePort, get, killAll, sleep, tempDir } from './helpers';

after(killAll);

const run = promisify(execFile);

async function loopDelayP99(runDir: string): Promise<number | undefined> {
  const r = await run(process.execPath, [CLI, 'status', 'app', '--json'], { env: { ...process.env, SUPERV_RUN_DIR: runDir } });
  return (JSON.parse(r.stdout) as MasterStatus).workers[0]?.loopDelayP99Ms;
}

/** Polls the worker's reported p99 until `ok` holds; returns the last value seen. */
async function until(runDir: string, ok: (ms: number) => boolean, timeoutMs: number): Promise<number | undefined> {
  let last: number | undefined;
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) {
    last = await loopDelayP99(runDir);
    if (last !== undefined && ok(last)) return last;
  }
  return last;
}

test('a loop blocked for 600 ms shows in the next heartbeat\'s loop delay, and later windows are clean', async () => {
  const port = await freePort();
  const runDir = tempDir('superv-run-');
  // A 1 s heartbeat window: wide enough for `superv status` polls (a process each) not to miss it.
  const s = new Superv(['start', join(FIXTURES, 'app.js'), '-w', '1', '--dump-dir', tempDir(), '--heartbeat-interval', '1s',
    '--timeout', '0', '--slow', '0'], { env: { PORT: String(port), SUPERV_RUN_DIR: runDir } });
  await s.waitEvent('master-ready');
  const idle = await until(runDir, (ms) => ms < 100, 10_000);
  assert.ok(idle !== undefined && idle < 100, `an idle worker reports a small delay (got ${idle} ms)`);

  assert.equal((await get(port, '/spin?ms=600', { timeoutMs: 10_000 })).status, 200);
  const blocked = await until(runDir, (ms) => ms >= 500, 5_000);
  // The tick that fired after the block was ~600 ms late; a timer's lateness never exceeds the block by much.
  assert.ok(blocked !== undefined && blocked >= 500 && blocked < 5_000, `the block shows (got ${blocked} ms)`);

  const after = await until(runDir, (ms) => ms < 100, 10_000);
  assert.ok(after !== undefined && after < 100, `the next windows are clean again (got ${after} ms)`);
  await s.kill();
});
