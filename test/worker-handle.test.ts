// The worker state machine (pure): which moves are allowed, and that SIGKILL has one path.

import assert from 'node:assert/strict';
import type { Worker } from 'node:cluster';
import { test } from 'node:test';
import { WorkerHandle } from '../src/master/worker-handle';
import { watchdogBudget } from '../src/master/watchdog-channel';

function handle(): { h: WorkerHandle; sent: string[] } {
  const sent: string[] = [];
  const fake = { process: { pid: 4242, kill: (sig: string) => { sent.push(sig); return true; } } } as unknown as Worker;
  return { h: new WorkerHandle(1, fake, undefined, false), sent };
}

test('booting → ready → draining → killed → reaped', async () => {
  const { h, sent } = handle();
  assert.equal(h.state, 'booting');
  assert.ok(h.markReady());
  assert.equal(await h.ready, true);
  assert.ok(h.serving);
  assert.ok(h.markDraining());
  assert.ok(h.serving && h.running);
  h.kill('drain');
  assert.equal(h.state, 'killed');
  assert.ok(h.alive && !h.running && !h.counted, 'a killed worker is alive until reaped, but no longer counts');
  assert.deepEqual(sent, ['SIGKILL']);
  h.markReaped();
  assert.equal(h.alive, false);
  h.kill();
  assert.deepEqual(sent, ['SIGKILL'], 'a reaped worker is never signalled');
});

test('moves the table does not allow are refused, and the state is unchanged', () => {
  const { h } = handle();
  assert.equal(h.markDraining(), false, 'booting → draining');
  assert.ok(h.markDumping());
  assert.equal(h.markReady(), false, 'dumping → ready (a late listen)');
  assert.equal(h.markDraining(), false, 'dumping → draining');
  assert.equal(h.state, 'dumping');
});

test('kill keeps the first reason and settles a pending boot as failed', async () => {
  const { h, sent } = handle();
  h.kill('listen-timeout');
  h.kill('stop');
  assert.equal(h.endedBy, 'listen-timeout');
  assert.equal(await h.ready, false);
  assert.deepEqual(sent, ['SIGKILL', 'SIGKILL'], 'repeated kills re-send the signal');
  assert.equal(h.markReady(), false, 'a killed worker never becomes ready');
});

test('a worker may exit on its own in any state', () => {
  for (const step of [(h: WorkerHandle) => h, (h: WorkerHandle) => { h.markReady(); return h; }, (h: WorkerHandle) => { h.markDumping(); return h; }]) {
    const { h } = handle();
    step(h).markReaped();
    assert.equal(h.state, 'reaped');
  }
});

test("the watchdog's capture budget leaves its answer room to arrive before the master gives up", () => {
  assert.equal(watchdogBudget(5000), 4000, 'a quarter, at most 1 s');
  assert.equal(watchdogBudget(60000), 59000);
  assert.equal(watchdogBudget(2000), 1500);
  assert.equal(watchdogBudget(600), 350, 'at least 250 ms');
  assert.equal(watchdogBudget(100), 50, 'never below 50 ms');
  for (let b = 100; b <= 120000; b += 37) assert.ok(b - watchdogBudget(b) >= 50 && watchdogBudget(b) > 0);
});
