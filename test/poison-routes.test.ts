// The poison-route circuit breaker's bookkeeping (pure, fake clock): count kills in a window, flag or
// quarantine, end the quarantine in a trial, close on a finished request, re-quarantine on a kill.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PoisonRoutes, type PoisonPolicy } from '../src/master/poison-routes';

function setup(policy: Partial<PoisonPolicy> = {}) {
  let now = 1_000_000;
  const p = new PoisonRoutes(() => ({ kills: 3, windowMs: 60_000, quarantine: false, quarantineMs: 30_000, ...policy }), () => now);
  return { p, advance: (ms: number) => { now += ms; } };
}

test('K kills within the window flag the route once; kills spread wider do not', () => {
  const { p, advance } = setup();
  assert.equal(p.noteKill('/a', 'd1'), undefined);
  advance(61_000);
  assert.equal(p.noteKill('/a', 'd2'), undefined);
  assert.equal(p.noteKill('/a', 'd3'), undefined, 'd1 fell out of the window');
  const ev = p.noteKill('/a', 'd4');
  assert.deepEqual(ev && { to: ev.to, kills: ev.kills, dumps: ev.dumps }, { to: 'poison', kills: 3, dumps: ['d2', 'd3', 'd4'] });
  assert.equal(p.noteKill('/a', 'd5'), undefined, 'one event, not one per kill');
  assert.deepEqual(p.list().map((r) => [r.route, r.state]), [['/a', 'poison']]);
  assert.deepEqual(p.quarantined(), [], 'quarantine off: nothing for the workers to refuse');
  advance(61_000);
  assert.deepEqual(p.tick().map((e) => e.to), ['watch'], 'the flag clears when its kills age out');
  assert.deepEqual(p.list(), []);
});

test('quarantine: closed for the cool-down, then a trial; a finished request closes it, a kill re-opens it', () => {
  const { p, advance } = setup({ kills: 2, quarantine: true });
  p.noteKill('/x', 'd1');
  assert.equal(p.noteKill('/x', 'd2')?.to, 'quarantined');
  assert.deepEqual(p.quarantined(), [{ route: '/x', until: 1_000_000 + 30_000, mode: 'closed' }]);
  assert.deepEqual(p.noteHeartbeat({ routes: [{ route: '/x', count: 4, sumMs: 1, maxMs: 1, hist: [] }], quarantined: [{ route: '/x', count: 4 }] }), [],
    'the 503s are not a trial');
  assert.equal(p.list()[0]!.quarantinedRequests, 4);
  advance(29_000);
  assert.deepEqual(p.tick(), []);
  advance(1_000);
  assert.deepEqual(p.tick().map((e) => e.to), ['trial']);
  assert.deepEqual(p.quarantined(), [{ route: '/x', until: 0, mode: 'trial' }]);
  assert.equal(p.noteKill('/x', 'd3')?.to, 'quarantined', 'one kill in trial is enough');
  advance(30_000);
  p.tick();
  const closed = p.noteHeartbeat({ routes: [{ route: '/x', count: 2, sumMs: 1, maxMs: 1, hist: [] }], quarantined: [{ route: '/x', count: 1 }] });
  assert.deepEqual(closed.map((e) => [e.from, e.to]), [['trial', 'watch']]);
  assert.deepEqual(p.quarantined(), []);
  assert.equal(p.noteKill('/x', 'd4'), undefined, 'counting starts again from zero');
});

test('poison_kills 0 turns it off', () => {
  const { p } = setup({ kills: 0 });
  for (let i = 0; i < 5; i++) assert.equal(p.noteKill('/a', `d${i}`), undefined);
  assert.deepEqual(p.list(), []);
});
