// The forensics cases every SQL driver must pass, run from one table against real servers: PostgreSQL
// through pg and MariaDB through mysql2 (driver-specific behaviour stays in db-pg / db-mysql). Each case runs
// in a plain node process with the instrumentation installed first and the drivers required after it, as a
// worker loads the app after its bootstrap; statements are issued from fake requests (enterRequest).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setRequestLookup } from '../src/worker/context';
import { installInstrumentation } from '../src/worker/instrument';
import { connection, db, inRequest, lineHere, requireServer, waitFor, type SERVERS } from './instrument-helpers';

installInstrumentation({ recordValues: false });
const pg = require('pg') as typeof import('pg');
const mysqlp = require('mysql2/promise') as typeof import('mysql2/promise');

setRequestLookup((id) => ({ id, method: 'POST', url: `/req/${id}`, startedAt: Date.now(), ageMs: 0 }));

/** One session on the server, as the cases need it. */
interface Session {
  /** The server's id for it: pg's backend pid, MySQL's connection id. */
  id: number;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}

interface Driver {
  name: string;
  server: keyof typeof SERVERS;
  connect(): Promise<Session>;
  /** How the server says a session waits on a lock. */
  waiting(observer: Session, id: number): Promise<boolean>;
  /** What the server says about a session, for a failure message: what it is doing and what it waits for. */
  describe(observer: Session, id: number): Promise<string>;
  /** How the summary names a session. */
  label: string;
  createTable(t: string): string;
  begin: string;
}

const DRIVERS: Driver[] = [
  {
    name: 'pg', server: 'postgres', label: 'backend pid', begin: 'BEGIN',
    createTable: (t) => `CREATE TABLE ${t} (id int PRIMARY KEY, balance int NOT NULL)`,
    async connect() {
      const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
      await c.connect();
      // Bound, not wrapped: a wrapper would be the call site the instrumentation records, not the case's line.
      return { id: (c as unknown as { processID: number }).processID, query: c.query.bind(c) as Session['query'], end: () => c.end() };
    },
    async waiting(observer, id) {
      const r = await observer.query(`SELECT cardinality(pg_blocking_pids(${id})) AS n`) as { rows: Array<{ n: number }> };
      return (r.rows[0]?.n ?? 0) > 0;
    },
    async describe(observer, id) {
      const r = await observer.query(`SELECT state, wait_event_type, wait_event, query, pg_blocking_pids(pid) AS blockers FROM pg_stat_activity WHERE pid = ${id}`) as { rows: unknown[] };
      return JSON.stringify(r.rows);
    },
  },
  {
    name: 'mysql2', server: 'mariadb', label: 'connection id', begin: 'START TRANSACTION',
    createTable: (t) => `CREATE TABLE ${t} (id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB`,
    async connect() {
      const c = await mysqlp.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', database: 'test' });
      return { id: c.threadId, query: c.query.bind(c) as Session['query'], end: () => c.end() };
    },
    async waiting(observer, id) {
      const [rows] = await observer.query(`SELECT trx_state FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ${id}`) as [Array<{ trx_state: string }>];
      if (rows[0]?.trx_state === 'LOCK WAIT') return true;
      // Or the statement runs at the server and is not answered. Twice in CI under load (MariaDB 10.11, a server
      // just started) INNODB_TRX did not list the waiting UPDATE for 15 s while PROCESSLIST showed it running
      // ("Updating"): what the case needs is the statement sent and held, which PROCESSLIST says too.
      const [proc] = await observer.query(`SELECT COMMAND, INFO FROM information_schema.PROCESSLIST WHERE ID = ${id}`) as [Array<{ COMMAND: string; INFO: string | null }>];
      return proc[0]?.COMMAND === 'Query' && /^UPDATE /.test(proc[0]?.INFO ?? '');
    },
    async describe(observer, id) {
      const [trx] = await observer.query('SELECT trx_mysql_thread_id, trx_state, trx_query FROM information_schema.INNODB_TRX') as [unknown[]];
      const [proc] = await observer.query(`SELECT ID, COMMAND, STATE, INFO FROM information_schema.PROCESSLIST WHERE ID = ${id}`) as [unknown[]];
      return `INNODB_TRX ${JSON.stringify(trx)}; PROCESSLIST ${JSON.stringify(proc)}`;
    },
  },
];

for (const d of DRIVERS) {
  describe(`${d.name}: shared cases`, () => {
    const table = `superv_case_${d.name}_${process.pid}`;
    const open: Session[] = [];
    const connect = async (): Promise<Session> => { const s = await d.connect(); open.push(s); return s; };

    before(async () => {
      await requireServer(d.server);
      const c = await connect();
      await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.query(d.createTable(table));
      await c.query(`INSERT INTO ${table} VALUES (1, 100)`);
    });

    after(async () => {
      // Sessions first: a failed case may leave a transaction holding the lock DROP TABLE would wait for.
      for (const s of open) await s.end().catch(() => undefined);
      const c = await d.connect().catch(() => undefined);
      await c?.query(`DROP TABLE IF EXISTS ${table}`);
      await c?.end();
    });

    test('lock contention: the waiting UPDATE and the transaction holding the row lock', async () => {
      const [holder, waiter, observer] = [await connect(), await connect(), await connect()];
      const holdLine = await inRequest(11, async () => {
        await holder.query(d.begin);
        const [locked, line] = [holder.query(`SELECT * FROM ${table} WHERE id = 1 FOR UPDATE`), lineHere()];
        await locked;
        return line;
      });
      const { q, line: waitLine } = await inRequest(12, () => ({ q: waiter.query(`UPDATE ${table} SET balance = balance - 1 WHERE id = 1`), line: lineHere() }));
      let settled = 'pending';
      q.then(() => { settled = 'resolved'; }, (e: unknown) => { settled = `rejected: ${String(e)}`; });
      await waitFor('the server to report the UPDATE waiting on the lock', async () => (await d.waiting(observer, waiter.id)) || undefined)
        .catch(async (e: unknown) => {
          // Seen once in CI under load, never reproduced: say what the server and the driver saw.
          throw new Error(`${String(e)}; holder ${holder.id}, waiter ${waiter.id}, the UPDATE is ${settled}; the server: ${await d.describe(observer, waiter.id)}`);
        });

      const state = db();
      const w = connection(state, waiter.id);
      assert.ok(w, 'the waiting connection is listed');
      assert.equal(w.pending[0]?.state, 'running');
      assert.ok(w.pending[0]?.sql?.startsWith(`UPDATE ${table}`), w.pending[0]?.sql);
      assert.equal(w.pending[0]?.request?.id, 12);
      assert.equal(w.pending[0]?.site?.line, waitLine);
      const h = connection(state, holder.id);
      assert.ok(h, 'the holding connection is listed');
      assert.deepEqual(h.pending, []);
      assert.equal(h.transaction?.state, 'idle in transaction');
      assert.equal(h.transaction?.request?.id, 11);
      assert.deepEqual(h.transaction?.statements.map((s) => s.sql), [d.begin, `SELECT * FROM ${table} WHERE id = 1 FOR UPDATE`]);
      assert.equal(h.transaction?.statements[1]?.site?.line, holdLine);
      assert.ok(state.connections.indexOf(h) < state.connections.indexOf(w), 'the older transaction is listed first');
      assert.ok(state.summary.some((s) => s.includes(`${d.label} ${holder.id}`) && s.includes('may hold locks')), state.summary.join('\n'));
      assert.ok(state.summary.some((s) => s.startsWith('POST /req/12 (request 12) has waited') && s.includes('UPDATE')), state.summary.join('\n'));

      await holder.query('COMMIT');
      await waitFor('the UPDATE to finish once the holder committed', () => (settled === 'pending' ? undefined : settled))
        .catch(async (e: unknown) => { throw new Error(`${String(e)}; the server: ${await d.describe(observer, waiter.id)}`); });
      await q;
      const later = db();
      assert.equal(connection(later, waiter.id), undefined);
      assert.equal(connection(later, holder.id), undefined);
    });

    test('a connection that ends is dropped', async () => {
      const c = await d.connect();
      await inRequest(13, () => c.query(d.begin));
      assert.ok(connection(db(), c.id)?.transaction);
      await c.end();
      await waitFor('the connection to be dropped', () => (connection(db(), c.id) === undefined ? true : undefined));
    });
  });
}
