// An idle worker costs next to nothing, and parking it costs no stall detection (src/worker/liveness.ts):
// its main thread wakes about once per heartbeat instead of every 50 ms, its watchdog every few seconds;
// and a request that blocks a parked worker is still timed from its start, so it is killed at `timeout`
// of blocking, not earlier. Wake-ups are counted, not timed: voluntary context switches per thread from
// /proc, which a busy host does not inflate (it adds involuntary ones).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Dump } from '../src/dump/types';
import { FIXTURES, get, killAll, sleep, startSuperv } from './helpers';

after(killAll);

/** Voluntary context switches (a thread going to sleep, i.e. one per wake-up) of every thread of `pid`. */
function sleepsByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      if (m) out.set(tid, Number(m[1]));
    } catch { /* thread ended */ }
  }
  return out;
}

test('an idle worker parks: its main thread wakes about once per heartbeat, the whole process a few times a second', async () => {
  const { s } = await startSuperv(join(FIXTURES, 'app.js'), ['-w', '1', '--heartbeat-interval', '1s']);
  const [pid] = s.workerPids();
  // Parked after the first heartbeat interval with nothing served.
  await sleep(3000);
  const a = sleepsByThread(pid!);
  const seconds = 5;
  await sleep(seconds * 1000);
  const b = sleepsByThread(pid!);
  const main = b.get(String(pid))! - a.get(String(pid))!;
  let all = 0;
  for (const [tid, n] of b) all += n - (a.get(tid) ?? n);
  // Serving, the main thread alone wakes 20 times a second (the 50 ms tick): 100 here.
  assert.ok(main <= 3 * seconds, `main thread: ${main} wake-ups in ${seconds} s`);
  assert.ok(all <= 8 * seconds, `all threads: ${all} wake-ups in ${seconds} s`);
  await s.kill();
});

test('a request that blocks a parked worker is timed from its start: killed after timeout of blocking, not before', async () => {
  const { s, port } = await startSuperv(join(FIXTURES, 'app.js'), ['-w', '1', '--heartbeat-interval', '1s', '--timeout', '2s', '--slow', '0']);
  await sleep(3000);
  const sent = Date.now();
  get(port, '/spin?ms=60000', { timeoutMs: 60_000 }).catch(() => undefined);
  const [stuck] = await s.waitEvent('worker-stuck', 1, 30_000);
  // Timed from the parked worker's last heartbeat (up to 1 s before the request) it would be killed early.
  assert.ok((stuck!.time as number) - sent >= 1950, `worker-stuck ${(stuck!.time as number) - sent} ms after the request was sent`);
  const [written] = await s.waitEvent('dump-written', 1, 30_000);
  const d = JSON.parse(readFileSync(written!.file as string, 'utf8')) as Dump;
  assert.equal(d.capture?.loop.blocked, true);
  assert.ok(d.capture!.loop.blockedForMs <= (written!.time as number) - sent + 100,
    `blocked ${d.capture!.loop.blockedForMs} ms by the watchdog's measure, ${(written!.time as number) - sent} ms after the request`);
  await s.kill();
});
