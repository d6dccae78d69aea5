// The event-loop delay each heartbeat reports, end to end: the main thread's 50 ms liveness tick measures
// how late it fires (src/worker/heartbeat.ts), the heartbeat carries it, `superv status` shows it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FIXTURES, get, killAll, sleep, startSuperv, supervStatus } from './helpers';

after(killAll);

/** Polls the worker's reported p99 until `ok` holds; returns the last value seen. */
async function until(runDir: string, ok: (ms: number) => boolean, timeoutMs: number): Promise<number | undefined> {
  let last: number | undefined;
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) {
    last = (await supervStatus(runDir)).workers[0]?.loopDelayP99Ms;
    if (last !== undefined && ok(last)) return last;
  }
  return last;
}

test('a loop blocked for 600 ms shows in the next heartbeat\'s loop delay, and later windows are clean', async () => {
  // A 1 s heartbeat window (overriding the helper's 200 ms): wide enough for `superv status` polls (a
  // process each) not to miss it.
  const { s, port, runDir } = await startSuperv(join(FIXTURES, 'app.js'), ['-w', '1', '--heartbeat-interval', '1s', '--timeout', '0', '--slow', '0']);
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
