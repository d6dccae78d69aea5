// Asking MySQL / MariaDB who blocks a connection, on the side connection. Which catalog depends on the
// server, decided from its version once per side connection (one query, levelSql, over either):
//   - MariaDB (all versions) and MySQL 5.7: information_schema.INNODB_LOCK_WAITS + INNODB_LOCKS + INNODB_TRX
//   - MySQL 8.0+: performance_schema.data_lock_waits + data_locks (5.7's INNODB_LOCK_WAITS is gone)
// PROCESSLIST adds user, host, db and the command ("Sleep": idle). An idle holder's trx_query is NULL:
// the server keeps no text of a transaction's past statements, so the sentence says so and gives the
// last state it knows (how long it has slept). Reading other users' transactions needs the PROCESS
// privilege; without it the server refuses and the dump says so.
//
// Only InnoDB's row and table locks are seen here. A wait for a metadata lock (LOCK TABLES, DDL) is not
// an InnoDB wait: the waiter's PROCESSLIST state says "Waiting for table metadata lock", and that is what
// the dump reports, without a holder (performance_schema.metadata_locks would name it, when enabled).

import type { LockHolder } from '../../dump/locks';
import type { LockCatalog, LockEdge, SideSession } from './lock-lookup';

/**
 * Where a server keeps its lock waits. The two catalogs have the same shape (a wait row names the
 * waiting and the blocking transaction and the blocking lock; a lock row its mode, type, table and
 * index) under other names, so one query is written over this table of names.
 */
export interface WaitTables {
  /** The catalog, as the dump's `server` line names it. */
  name: string;
  waits: string;
  requestingTrx: string;
  blockingTrx: string;
  blockingLock: string;
  locks: string;
  lockId: string;
  /** Expressions over the lock row `l`. */
  lockMode: string;
  lockType: string;
  lockTable: string;
  lockIndex: string;
}

/** MariaDB (all versions) and MySQL 5.7. */
export const INNODB_TABLES: WaitTables = {
  name: 'information_schema.INNODB_LOCK_WAITS',
  waits: 'information_schema.INNODB_LOCK_WAITS',
  requestingTrx: 'requesting_trx_id',
  blockingTrx: 'blocking_trx_id',
  blockingLock: 'blocking_lock_id',
  locks: 'information_schema.INNODB_LOCKS',
  lockId: 'lock_id',
  lockMode: 'l.lock_mode',
  lockType: 'l.lock_type',
  lockTable: 'l.lock_table',
  lockIndex: 'l.lock_index',
};

/** MySQL 8.0 and later (INNODB_LOCK_WAITS and INNODB_LOCKS are gone). Not run against a server in our CI. */
export const PERFORMANCE_SCHEMA_TABLES: WaitTables = {
  name: 'performance_schema.data_lock_waits',
  waits: 'performance_schema.data_lock_waits',
  requestingTrx: 'REQUESTING_ENGINE_TRANSACTION_ID',
  blockingTrx: 'BLOCKING_ENGINE_TRANSACTION_ID',
  blockingLock: 'BLOCKING_ENGINE_LOCK_ID',
  locks: 'performance_schema.data_locks',
  lockId: 'ENGINE_LOCK_ID',
  lockMode: 'l.LOCK_MODE',
  lockType: 'l.LOCK_TYPE',
  lockTable: "CONCAT(l.OBJECT_SCHEMA, '.', l.OBJECT_NAME)",
  lockIndex: 'l.INDEX_NAME',
};

/**
 * One row per (waiter, direct blocker), for the waiters' thread ids (`IN (?)`, one array value).
 * `blocking` counts every transaction the blocker holds up: the "N requests wait on" of its dump.
 */
export function levelSql(t: WaitTables): string {
  return `
SELECT r.trx_mysql_thread_id AS waiter, b.trx_mysql_thread_id AS holder, b.trx_state, b.trx_query,
  TIMESTAMPDIFF(MICROSECOND, b.trx_started, NOW()) DIV 1000 AS tx_ms,
  p.USER AS user, p.HOST AS host, p.DB AS db, p.COMMAND AS command, p.TIME AS idle_s,
  ${t.lockMode} AS lock_mode, ${t.lockType} AS lock_type, ${t.lockTable} AS lock_table, ${t.lockIndex} AS lock_index,
  (SELECT COUNT(*) FROM ${t.waits} x WHERE x.${t.blockingTrx} = w.${t.blockingTrx}) AS blocking
FROM ${t.waits} w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.${t.requestingTrx}
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.${t.blockingTrx}
LEFT JOIN ${t.locks} l ON l.${t.lockId} = w.${t.blockingLock}
LEFT JOIN information_schema.PROCESSLIST p ON p.ID = b.trx_mysql_thread_id
WHERE r.trx_mysql_thread_id IN (?)`;
}

/** The waiters' own state: a wait that InnoDB does not list (a metadata lock) shows here. */
const WAITER_SQL = 'SELECT ID AS id, STATE AS state FROM information_schema.PROCESSLIST WHERE ID IN (?)';

type Row = Record<string, unknown>;

function str(v: unknown): string | undefined {
  if (Buffer.isBuffer(v)) return v.toString('utf8') || undefined;
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'string' || typeof v === 'bigint' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** MySQL 8.0 and later use performance_schema; MariaDB (which reports 10.x, 11.x) and 5.7 the old tables. */
export function usesPerformanceSchema(version: string): boolean {
  if (/mariadb/i.test(version)) return false;
  const major = Number(/^(\d+)\./.exec(version)?.[1]);
  return Number.isFinite(major) && major >= 8;
}

export function waitTablesFor(version: string): WaitTables {
  return usesPerformanceSchema(version) ? PERFORMANCE_SCHEMA_TABLES : INNODB_TABLES;
}

function holderOf(r: Row): LockHolder {
  const h: LockHolder = { serverId: num(r.holder) ?? 0 };
  const command = str(r.command);
  const trxState = str(r.trx_state);
  const idle = command === 'Sleep';
  const idleS = num(r.idle_s);
  h.state = idle ? `idle in transaction (Sleep for ${idleS ?? '?'} s)` : `${trxState ?? 'RUNNING'}${command ? `, ${command}` : ''}`;
  const query = str(r.trx_query);
  if (query !== undefined) h.query = query;
  else if (idle) h.queryUnknown = true;
  const tx = num(r.tx_ms);
  if (tx !== undefined) h.txAgeMs = tx;
  const user = str(r.user);
  if (user !== undefined) h.user = user;
  const host = str(r.host);
  if (host !== undefined) h.client = host;
  const db = str(r.db);
  if (db !== undefined) h.database = db;
  const mode = str(r.lock_mode);
  if (mode !== undefined) {
    const table = str(r.lock_table)?.replace(/`/g, '');
    const index = str(r.lock_index);
    h.lock = `${mode} ${str(r.lock_type) === 'TABLE' ? 'table lock' : 'row lock'} on ${table ?? '?'}${index ? ` (index ${index})` : ''}`;
  }
  const blocking = num(r.blocking);
  if (blocking !== undefined) h.blocking = blocking;
  return h;
}

/** Each side session's server, as server() found it: one look-up may ask a MariaDB and a MySQL 8 at once. */
const tablesOf = new WeakMap<SideSession, WaitTables>();

export const mysqlCatalog: LockCatalog = {
  kind: 'mysql',
  async server(s: SideSession): Promise<string> {
    const rows = await s.query('SELECT VERSION() AS v', []);
    const v = str(rows[0]?.v) ?? '?';
    const tables = waitTablesFor(v);
    tablesOf.set(s, tables);
    return `${/mariadb/i.test(v) ? 'MariaDB' : 'MySQL'} ${v} (${tables.name})`;
  },
  async level(s: SideSession, ids: number[]): Promise<Map<number, LockEdge>> {
    const out = new Map<number, LockEdge>();
    const tables = tablesOf.get(s) ?? INNODB_TABLES;
    for (const r of await s.query(levelSql(tables), [ids])) {
      const waiter = num(r.waiter);
      if (waiter === undefined) continue;
      let e = out.get(waiter);
      if (e === undefined) out.set(waiter, e = { holders: [], waitingFor: 'LOCK WAIT (InnoDB)' });
      e.holders.push(holderOf(r));
    }
    const rest = ids.filter((id) => !out.has(id));
    if (rest.length > 0) {
      for (const r of await s.query(WAITER_SQL, [rest])) {
        const id = num(r.id);
        const state = str(r.state);
        if (id !== undefined && state !== undefined && /lock/i.test(state)) out.set(id, { holders: [], waitingFor: state });
      }
    }
    return out;
  },
};
