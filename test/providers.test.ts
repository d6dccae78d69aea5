// State providers without the supervisor: the probe (src/worker/probe.ts) evaluated in-process, as the
// watchdog would evaluate it through the inspector, and the `db` provider's bounds and robustness
// against driver internals it does not expect. No database needed: pg clients that never connect keep
// their queries queued, which is all the provider reads.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installInstrumentation, type DbState } from '../src/worker/instrument';
import { registerStateProvider, stateProviders, unregisterStateProvider } from '../src/worker/providers';
import { PROBE_SYMBOL } from '../src/protocol';
import { installProbe, type ProbeResult } from '../src/worker/probe';
import { RequestTable } from '../src/worker/request-table';
import { RequestTracker } from '../src/worker/tracker';

installInstrumentation({ recordValues: false });
const pg = require('pg') as typeof import('pg');

function db(): DbState {
  const fn = stateProviders().get('db');
  assert.ok(fn);
  return fn() as DbState;
}

/** A client that never connects (nothing listens on port 1): its queries stay queued. */
function deadClient(): import('pg').Client {
  return new pg.Client({ host: '127.0.0.1', port: 1, user: 'nobody', database: 'none' });
}

test('the probe reports a throwing or async provider and keeps the others', () => {
  installProbe(new RequestTracker(RequestTable.create()), () => ({ meanMs: 0, p99Ms: 0, maxMs: 0 }));
  registerStateProvider('boom', () => { throw new Error('broken provider'); });
  registerStateProvider('async', () => Promise.resolve(1));
  registerStateProvider('fine', () => ({ ok: true }));
  try {
    const probe = (globalThis as Record<symbol, unknown>)[Symbol.for(PROBE_SYMBOL)] as () => string;
    const r = JSON.parse(probe()) as ProbeResult;
    assert.deepEqual(r.state.fine, { ok: true });
    assert.match(JSON.stringify(r.state.boom), /broken provider/);
    assert.match(JSON.stringify(r.state.async), /synchronous/);
    assert.ok(r.state.db, 'superv\'s own providers are there too');
    assert.ok(r.state.outbound);
  } finally {
    for (const n of ['boom', 'async', 'fine']) unregisterStateProvider(n);
  }
});

test('db provider: queued statements are listed in order, capped, with long SQL clipped', () => {
  const c = deadClient();
  const long = `SELECT '${'x'.repeat(10_000)}'`;
  for (let i = 0; i < 15; i++) c.query(i === 0 ? long : `SELECT ${i}`).catch(() => undefined);
  const conn = db().connections.find((x) => x.pending.some((p) => p.sql?.startsWith("SELECT 'xxx")));
  assert.ok(conn, 'the never-connected client is listed with its queue');
  assert.equal(conn.pending.length, 10);
  assert.equal(conn.pendingMore, 5);
  assert.ok(conn.pending.every((p) => p.state === 'queued'));
  assert.deepEqual(conn.pending.slice(1, 3).map((p) => p.sql), ['SELECT 1', 'SELECT 2']);
  const sql = conn.pending[0]!.sql ?? '';
  assert.ok(sql.length < 2100 && sql.endsWith(`[${long.length} chars]`), sql.slice(-40));
  assert.equal(conn.serverId, undefined, 'no backend pid before the connection exists');
});

test('db provider: a connection whose driver internals surprise it is reported, the rest still listed', () => {
  const good = deadClient();
  const bad = deadClient();
  good.query('SELECT 100').catch(() => undefined);
  bad.query('SELECT 200').catch(() => undefined);
  Object.defineProperty(bad, '_queryQueue', { get() { throw new Error('driver changed'); } });
  const state = db();
  assert.ok(state.connections.some((x) => x.pending.some((p) => p.sql === 'SELECT 100')));
  assert.ok(!state.connections.some((x) => x.pending.some((p) => p.sql === 'SELECT 200')));
  assert.ok(state.notes?.some((n) => n.includes('driver changed')), JSON.stringify(state.notes));
  assert.doesNotThrow(() => JSON.stringify(state));
});

function lineHere(): number {
  const m = /:(\d+):\d+\)?$/.exec(new Error().stack?.split('\n')[2] ?? '');
  return Number(m?.[1]);
}

test('call sites: one SQL text keeps the site it was first issued from; short texts and callSiteCache:false are exact', () => {
  const c = deadClient();
  const text = `SELECT * FROM cache_probe_${process.pid} WHERE id = $1`;
  const [, first] = [c.query(text, [1]).catch(() => undefined), lineHere()];
  const [, second] = [c.query(text, [2]).catch(() => undefined), lineHere()];
  const [, shortA] = [c.query('SELECT 1').catch(() => undefined), lineHere()];
  const [, shortB] = [c.query('SELECT 1').catch(() => undefined), lineHere()];
  installInstrumentation({ recordValues: false, callSiteCache: false });
  const [, exact] = [c.query(text, [3]).catch(() => undefined), lineHere()];
  installInstrumentation({ recordValues: false });
  const conn = db().connections.find((x) => x.pending.some((p) => p.sql === text));
  assert.ok(conn);
  const lines = conn.pending.map((p) => p.site?.line);
  assert.notEqual(first, second);
  assert.deepEqual(lines, [first, first, shortA, shortB, exact]);
});

// Last: it fills the listing cap, which would hide the connections of any test after it.
test('db provider: bounded and quick with many busy connections', (t) => {
  for (let i = 0; i < 300; i++) deadClient().query(`SELECT ${i} /* ${'y'.repeat(3000)} */`).catch(() => undefined);
  const t0 = process.hrtime.bigint();
  const state = db();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const bytes = JSON.stringify(state).length;
  t.diagnostic(`db provider with ${state.connections.length} listed (+${state.moreConnections ?? 0} more): ${ms.toFixed(1)} ms, ${bytes} bytes`);
  assert.equal(state.connections.length, 50, 'at most 50 connections listed');
  assert.ok((state.moreConnections ?? 0) >= 250);
  assert.ok(bytes < 1024 * 1024, `output bounded (${bytes} bytes)`);
  assert.ok(state.summary.length <= 12);
});
