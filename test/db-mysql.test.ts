// The `db` provider against a real MariaDB (127.0.0.1:3306, root, database test) through mysql2: the
// callback API, the promise API and a pool, in a plain node process. The cases every driver shares (lock
// contention, a connection that ends) are in db-cases.test.ts.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setRequestLookup } from '../src/worker/context';
import { installInstrumentation } from '../src/worker/instrument';
import { connection, db, inRequest, lineHere, requireServer, waitFor } from './instrument-helpers';

installInstrumentation({ recordValues: false });
// Required after the install, as the app is loaded after the worker bootstrap.
const mysql = require('mysql2') as typeof import('mysql2');
const mysqlp = require('mysql2/promise') as typeof import('mysql2/promise');

const MY = { host: '127.0.0.1', port: 3306, user: 'root', database: 'test' };
const TABLE = `superv_my_${process.pid}_${Date.now()}`;

setRequestLookup((id) => ({ id, method: 'POST', url: `/req/${id}`, startedAt: Date.now(), ageMs: 0 }));

type PConn = import('mysql2/promise').Connection;
const open: Array<{ end(): Promise<void> }> = [];

async function connect(): Promise<PConn> {
  const c = await mysqlp.createConnection(MY);
  open.push(c);
  return c;
}

async function connectionId(c: PConn): Promise<number> {
  const [rows] = await c.query('SELECT CONNECTION_ID() AS id');
  const id = (rows as Array<{ id: number }>)[0]?.id;
  assert.equal(id, c.threadId, 'threadId is the server connection id');
  return Number(id);
}

before(async () => {
  await requireServer('mariadb');
  const c = await connect();
  await c.query(`CREATE TABLE ${TABLE} (id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB`);
  await c.query(`INSERT INTO ${TABLE} VALUES (1, 100)`);
});

after(async () => {
  // Connections first: a failed test may leave a transaction holding the lock DROP TABLE would wait for.
  for (const x of open) await x.end().catch(() => undefined);
  const c = await mysqlp.createConnection(MY);
  await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await c.end();
});

test('callback API: a pending SELECT SLEEP(2) with its call site, request and connection id', async () => {
  const c = mysql.createConnection(MY);
  const id = await new Promise<number>((resolve, reject) => c.query('SELECT CONNECTION_ID() AS id', (err, rows) => {
    if (err) reject(err);
    else resolve(Number((rows as Array<{ id: number }>)[0]?.id));
  }));
  const { done, line } = await inRequest(31, () => {
    const [p, l] = [new Promise<void>((resolve, reject) => c.query('SELECT SLEEP(2)', (err) => (err ? reject(err) : resolve()))), lineHere()];
    return { done: p, line: l };
  });
  const conn = connection(db(), id);
  assert.ok(conn, 'the connection is listed while its statement is pending');
  assert.equal(conn.driver, 'mysql2');
  const p = conn.pending[0];
  assert.equal(p?.sql, 'SELECT SLEEP(2)');
  assert.equal(p?.state, 'running');
  assert.deepEqual(p?.request, { id: 31, method: 'POST', url: `/req/31` });
  assert.equal(p?.site?.file, __filename);
  assert.equal(p?.site?.line, line);
  assert.equal(conn.transaction, undefined);
  await done;
  assert.equal(connection(db(), id), undefined, 'idle again: counted, not listed');
  await new Promise<void>((resolve) => c.end(() => resolve()));
});

test('promise API: transaction via beginTransaction, SQL templates without values, execute()', async () => {
  const c = await connect();
  const id = await connectionId(c);
  const { q, line, beginLine } = await inRequest(32, async () => {
    const [begun, bl] = [c.beginTransaction(), lineHere()];
    await begun;
    await c.execute('SELECT ? AS a', ['private']);
    const [pending, l] = [c.query('SELECT SLEEP(?)', [2]), lineHere()];
    return { q: pending, line: l, beginLine: bl };
  });
  const conn = connection(db(), id);
  assert.ok(conn);
  const p = conn.pending[0];
  assert.equal(p?.sql, 'SELECT SLEEP(?)', 'the template, not the SQL with the value inlined');
  assert.equal(p?.values, undefined);
  assert.equal(p?.site?.line, line, 'the app frame, past mysql2/promise');
  assert.equal(p?.request?.id, 32);
  const t = conn.transaction;
  assert.equal(t?.state, 'active');
  assert.equal(t?.request?.id, 32);
  assert.equal(t?.openedAt?.line, beginLine);
  assert.deepEqual(t?.statements.map((s) => s.sql), ['START TRANSACTION', 'SELECT ? AS a']);
  assert.ok(!JSON.stringify(conn).includes('private'), 'no bound value anywhere');
  await q;
  await c.commit();
  assert.equal(connection(db(), id), undefined, 'COMMIT closed the transaction');
});

test("query('BEGIN') style, and a pool: pending statement, waiting caller, counts", async () => {
  const pool = mysqlp.createPool({ ...MY, connectionLimit: 1 });
  open.push(pool);
  const { first, second, line1, line2 } = await inRequest(33, () => {
    const [a, l1] = [pool.query('SELECT SLEEP(1.5)'), lineHere()];
    const [b, l2] = [pool.execute('SELECT ? + 1 AS n', [1]), lineHere()];
    return { first: a, second: b, line1: l1, line2: l2 };
  });
  const state = await waitFor('the first statement to reach its connection', () => {
    const s = db();
    return s.connections.some((c) => c.pending.some((p) => p.sql === 'SELECT SLEEP(1.5)')) ? s : undefined;
  });
  const conn = state.connections.find((c) => c.pending.some((p) => p.sql === 'SELECT SLEEP(1.5)'));
  assert.equal(conn?.pending[0]?.site?.line, line1);
  assert.equal(conn?.pending[0]?.request?.id, 33);
  const poolJson = state.pools.find((p) => p.id === conn?.pool);
  assert.ok(poolJson, 'the pooled connection names its pool');
  assert.equal(poolJson.total, 1);
  assert.equal(poolJson.idle, 0);
  assert.equal(poolJson.max, 1);
  const waiter = poolJson.waiters.find((w) => w.sql === 'SELECT ? + 1 AS n');
  assert.ok(waiter, 'the caller waiting for a connection is listed with its SQL');
  assert.equal(waiter.site?.line, line2);
  assert.equal(waiter.request?.id, 33);
  await first;
  const [rows] = await second;
  assert.equal((rows as Array<{ n: number }>)[0]?.n, 2);

  // BEGIN as plain SQL on a pooled connection.
  const pc = await pool.getConnection();
  try {
    await inRequest(34, () => pc.query('BEGIN'));
    const open1 = db().connections.find((c) => c.pool === poolJson.id);
    assert.equal(open1?.transaction?.request?.id, 34);
    assert.equal(open1?.transaction?.state, 'idle in transaction');
    await pc.query('ROLLBACK');
    assert.equal(db().connections.find((c) => c.pool === poolJson.id), undefined);
  } finally {
    pc.release();
  }
});
