// The `db` provider against a real PostgreSQL (127.0.0.1:5432, user postgres, database test), in a plain
// node process: instrumentation installed first, pg required after it, statements issued from fake
// requests (context.ts's enterRequest), and the provider read while they are pending. The cases every driver
// shares (lock contention, a connection that ends) are in db-cases.test.ts.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setRequestLookup } from '../src/worker/context';
import { installInstrumentation } from '../src/worker/instrument';
import { connection, db, inRequest, lineHere, requireServer, waitFor } from './instrument-helpers';

installInstrumentation({ recordValues: false });
// Required after the install, as the app is loaded after the worker bootstrap (a top-level import would be
// hoisted above the install).
const pg = require('pg') as typeof import('pg');

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
const TABLE = `superv_pg_${process.pid}_${Date.now()}`;

setRequestLookup((id) => ({ id, method: 'GET', url: `/req/${id}?token=t`, startedAt: Date.now(), ageMs: 0 }));

async function connect(): Promise<import('pg').Client & { processID: number }> {
  const c = new pg.Client(PG);
  await c.connect();
  const r = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  assert.equal(r.rows[0]?.pid, (c as unknown as { processID: number }).processID);
  return c as import('pg').Client & { processID: number };
}

const open: Array<{ end(): Promise<void> }> = [];

before(async () => {
  await requireServer('postgres');
  const c = await connect();
  open.push(c);
  await c.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, balance int NOT NULL)`);
  await c.query(`INSERT INTO ${TABLE} VALUES (1, 100)`);
});

after(async () => {
  // Clients first: a failed test may leave a transaction holding the row lock DROP TABLE would wait for.
  for (const x of open) await x.end().catch(() => undefined);
  const c = await connect();
  await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await c.end();
});

test('a pending statement inside a transaction: SQL, call site, request, server pid, transaction', async () => {
  const c = await connect();
  open.push(c);
  const { q, line } = await inRequest(7, async () => {
    await c.query('BEGIN');
    await c.query('SELECT $1::int AS x', [42]);
    const [pending, l] = [c.query('SELECT pg_sleep(2)'), lineHere()];
    return { q: pending, line: l };
  });

  const state = db();
  const conn = connection(state, c.processID);
  assert.ok(conn, 'the connection is listed while a statement is pending');
  const p = conn.pending.find((s) => s.sql === 'SELECT pg_sleep(2)');
  assert.ok(p, 'the pending statement is listed');
  assert.deepEqual(p.request, { id: 7, method: 'GET', url: '/req/7?token=t' });
  assert.equal(p.site?.file, __filename);
  assert.equal(p.site?.line, line);
  assert.equal(p.site?.app, true);
  assert.equal(typeof p.ageMs, 'number');
  assert.ok(p.ageMs! >= 0);
  assert.equal(p.values, undefined, 'no values without recordValues');

  const withTx = conn.transaction;
  assert.ok(withTx, 'the transaction BEGIN opened is listed');
  assert.equal(withTx.state, 'active');
  assert.deepEqual(withTx.request, { id: 7, method: 'GET', url: '/req/7?token=t' });
  assert.equal(withTx.openedAt?.file, __filename);
  assert.deepEqual(withTx.statements.map((s) => s.sql), ['BEGIN', 'SELECT $1::int AS x']);
  assert.ok(withTx.statements.every((s) => s.values === undefined && typeof s.durationMs === 'number'));
  const sentence = db().summary.find((s) => s.includes('SELECT pg_sleep(2)'));
  assert.ok(sentence?.startsWith('GET /req/7 (request 7) has waited'), sentence);
  assert.ok(sentence?.includes(`${__filename}:${line}`), sentence);
  assert.ok(!sentence?.includes('token'), 'sentences leave the query string out');

  await q;
  const done = connection(db(), c.processID);
  assert.ok(done, 'still listed: its transaction is open');
  assert.deepEqual(done.pending, []);
  assert.equal(done.transaction?.state, 'idle in transaction');
  assert.equal(done.transaction?.statements.at(-1)?.sql, 'SELECT pg_sleep(2)');
  await c.query('COMMIT');
  assert.equal(connection(db(), c.processID), undefined, 'idle with no transaction: counted, not listed');
  assert.ok(db().idleConnections >= 1);
});

test('a failed statement leaves the transaction failed until ROLLBACK', async () => {
  const c = await connect();
  open.push(c);
  await inRequest(13, async () => {
    await c.query('BEGIN');
    await assert.rejects(c.query('SELECT 1/0'));
  });
  // pg rejects the query on the ErrorResponse; the status comes with the ReadyForQuery right behind it.
  const t = await waitFor('the failed status', () => {
    const x = connection(db(), c.processID)?.transaction;
    return x?.state === 'failed (needs ROLLBACK)' ? x : undefined;
  });
  assert.equal(t?.statements.at(-1)?.failed, true);
  await c.query('ROLLBACK');
  assert.equal(connection(db(), c.processID), undefined);
});

test('pool: a statement on a pool connection, a caller waiting for one, and the counts', async () => {
  const pool = new pg.Pool({ ...PG, max: 1 });
  open.push(pool);
  const { first, second, line1, line2 } = await inRequest(21, () => {
    const [a, l1] = [pool.query('SELECT pg_sleep(1.5)'), lineHere()];
    const [b, l2] = [pool.query('SELECT 2 AS two'), lineHere()];
    return { first: a, second: b, line1: l1, line2: l2 };
  });
  // The first statement gets the pool's only connection once it is connected.
  const state = await waitFor('the first statement to reach its connection', () => {
    const s = db();
    return s.connections.some((c) => c.pending.some((p) => p.sql === 'SELECT pg_sleep(1.5)')) ? s : undefined;
  });
  const conn = state.connections.find((c) => c.pending.some((p) => p.sql === 'SELECT pg_sleep(1.5)'));
  const poolJson = state.pools.find((p) => p.id === conn?.pool);
  assert.ok(poolJson, 'the connection names its pool');
  assert.equal(poolJson.total, 1);
  assert.equal(poolJson.max, 1);
  assert.equal(poolJson.waiting, 1);
  const running = conn?.pending[0];
  assert.equal(running?.site?.line, line1, 'the call site is pool.query in the app, not pg-pool');
  assert.equal(running?.request?.id, 21);
  assert.equal(typeof running?.poolWaitMs, 'number');
  const waiter = poolJson.waiters.find((w) => w.sql === 'SELECT 2 AS two');
  assert.ok(waiter, 'the waiting caller is listed with its SQL');
  assert.equal(waiter.state, 'waiting for a pool connection');
  assert.equal(waiter.site?.line, line2);
  assert.equal(waiter.request?.id, 21);
  assert.ok(state.summary.some((s) => s.startsWith('pg pool') && s.includes('1 callers waiting')), state.summary.join('\n'));

  // A checkout with a callback, while the pool is still busy: a waiter with no SQL yet.
  const { checkedOut, checkoutLine } = await inRequest(25, () => {
    const [p, l] = [new Promise<void>((resolve) => pool.connect((err, _client, release) => { release(err); resolve(); })), lineHere()];
    return { checkedOut: p, checkoutLine: l };
  });
  const checkout = db().pools.find((p) => p.id === poolJson.id)?.waiters.find((w) => w.what === 'connection checkout');
  assert.ok(checkout, 'the checkout is listed');
  assert.equal(checkout.sql, undefined);
  assert.equal(checkout.site?.line, checkoutLine);
  assert.equal(checkout.request?.id, 25);

  await first;
  await checkedOut;
  const r = await second;
  assert.equal(r.rows[0]?.two, 2);
  assert.deepEqual(db().pools.find((p) => p.id === poolJson.id)?.waiters, []);
});

test('recordValues: bound parameters appear only when asked for', async () => {
  installInstrumentation({ recordValues: true });
  try {
    const c = await connect();
    open.push(c);
    await inRequest(22, async () => {
      await c.query('BEGIN');
      await c.query('SELECT $1::text AS a, $2::int AS b', ['secret-ish', 5]);
    });
    const t = connection(db(), c.processID)?.transaction;
    assert.deepEqual(t?.statements.at(-1)?.values, ['secret-ish', 5]);
    await c.query('ROLLBACK');
  } finally {
    installInstrumentation({ recordValues: false });
  }
});

test('a long statement is kept cut once it finishes, and says how long it was', async () => {
  const c = await connect();
  open.push(c);
  const sql = `SELECT 1 /* ${'z'.repeat(5000)} */`;
  await inRequest(24, async () => {
    await c.query('BEGIN');
    await c.query(sql);
  });
  const kept = connection(db(), c.processID)?.transaction?.statements.at(-1)?.sql ?? '';
  assert.ok(kept.startsWith('SELECT 1 /* zzz'), kept.slice(0, 40));
  assert.ok(kept.endsWith(`… [${sql.length} chars]`), kept.slice(-40));
  assert.ok(kept.length < 600, `history statements are clipped to ~500 characters (${kept.length})`);
  await c.query('ROLLBACK');
});
