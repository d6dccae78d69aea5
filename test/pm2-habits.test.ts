// The CLI edges a user coming from pm2 hits: `-i N`, pm2 command and flag names answered with superv's,
// `stop` that returns once the master is gone (so `start` right after works), `scale` out of range refused,
// and `status` of a stalled worker showing its requests as its watchdog reads them.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FIXTURES, Superv, alive, cli, get, killAll, sleep, startSuperv, supervStatus, tempDir } from './helpers';

after(killAll);

const APP = join(FIXTURES, 'app.js');

describe('pm2 habits', () => {
  test('pm2 command names get the superv command to use', async () => {
    const runDir = tempDir('superv-run-');
    for (const [cmd, hint] of [['restart', /use `superv reload NAME`/], ['list', /use `superv ls`/], ['monit', /use `superv top NAME`/], ['delete', /use `superv stop NAME`/]] as const) {
      const r = await cli(runDir, cmd, 'app');
      assert.equal(r.code, 2, cmd);
      assert.match(r.stderr, new RegExp(`unknown command "${cmd}"; pm2's ${cmd}: `), cmd);
      assert.match(r.stderr, hint, cmd);
    }
    const other = await cli(runDir, 'frobnicate');
    assert.match(other.stderr, /unknown command "frobnicate"; try superv --help/);
  });

  test("pm2 flags: -i N is --workers; --kill-timeout names superv's --graceful-timeout", async () => {
    const { s, runDir } = await startSuperv(APP, ['-i', '2'], { name: 'eye' });
    assert.equal((await supervStatus(runDir, 'eye')).workers.length, 2);
    await s.kill();
    for (const [flag, ours] of [['--kill-timeout', '--graceful-timeout'], ['--max-memory-restart', '--max-memory']]) {
      const bad = new Superv(['start', APP, flag, '5000']);
      assert.equal((await bad.exited).code, 2);
      assert.match(bad.stderr, new RegExp(`unknown setting flag ${flag} \\(pm2's ${flag} is superv's ${ours}\\)`));
    }
  });
});

describe('stop and scale', () => {
  test('stop returns once the master has exited: start right after works; --no-wait returns at once', async () => {
    const { s, runDir } = await startSuperv(APP, ['-w', '1'], { name: 'shop' });
    const stopped = await cli(runDir, 'stop', 'shop');
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout, 'shop: stopped\n');
    assert.ok(!alive(s.pid), 'the master is gone when stop returns');
    const again = await startSuperv(APP, ['-w', '1'], { name: 'shop', runDir });
    assert.equal(again.s.events('master-ready').length, 1, 'a start right after the stop is not refused');

    // A request in flight for 8 s holds the graceful stop: --no-wait returns while the master still drains.
    const inflight = get(again.port, '/wait?ms=8000', { timeoutMs: 20000 });
    await again.s.waitInflight(1);
    const quick = await cli(runDir, 'stop', 'shop', '--no-wait');
    assert.equal(quick.code, 0, quick.stderr);
    assert.equal(quick.stdout, 'shop: stopping gracefully\n');
    assert.ok(alive(again.s.pid), 'still draining');
    assert.equal((await inflight).status, 200, 'the request finished');
    assert.equal((await again.s.exited).code, 0);
  });

  test('scale refuses 0, more than 1024 and a relative count past them, and keeps the count', async () => {
    const { s, runDir } = await startSuperv(APP, ['-w', '1'], { name: 'sc' });
    for (const [to, msg] of [
      ['0', /bad value for superv scale: 0 workers: a supervisor keeps at least 1 \(to stop them all: superv stop NAME\)/],
      ['5000', /bad value for superv scale: 5000 workers: at most 1024/],
      ['-1', /cannot scale to 0 worker\(s\) \(from 1\): between 1 and 1024; to stop them all: superv stop/],
      ['+1024', /cannot scale to 1025 worker\(s\) \(from 1\): between 1 and 1024/],
    ] as const) {
      const r = await cli(runDir, 'scale', 'sc', to);
      assert.equal(r.code, 2, `scale ${to}: ${r.stdout}`);
      assert.match(r.stderr, msg);
    }
    const st = await supervStatus(runDir, 'sc');
    assert.equal(st.workersWanted, 1);
    assert.equal(s.events('scale').length, 0, 'nothing scaled');
    await s.kill();
  });
});

describe('status during a stall', () => {
  test("a stalled worker's requests are read by its watchdog, not taken from its last heartbeat", async () => {
    const { s, port, runDir } = await startSuperv(APP, ['-w', '1', '--timeout', '0', '--slow', '0'], { name: 'st' });
    const waiting = get(port, '/wait?ms=60000', { timeoutMs: 90000 }).catch(() => undefined);
    await s.waitInflight(1);
    void get(port, '/spin?ms=60000', { timeoutMs: 90000 }).catch(() => undefined);
    const deadline = Date.now() + 20000;
    let w = (await supervStatus(runDir, 'st')).workers[0]!;
    while (w.state !== 'stalled' && Date.now() < deadline) {
      await sleep(200);
      w = (await supervStatus(runDir, 'st')).workers[0]!;
    }
    assert.equal(w.state, 'stalled');
    assert.equal(w.inflightFrom, 'watchdog');
    assert.equal(w.inflight, 2, 'the waiting request and the spinning one');
    assert.match(w.oldest?.url ?? '', /^\/wait/);
    const human = await cli(runDir, 'status', 'st');
    assert.match(human.stdout, /stalled\s+\S+\s+\d+\s+2\*/);
    assert.match(human.stdout, /\* stalled: in flight as its watchdog reads them now/);
    await s.kill();
    await waiting;
  });
});
