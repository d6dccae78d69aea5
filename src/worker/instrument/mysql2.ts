// mysql2: BaseConnection (lib/base/connection.js; lib/connection.js before 3.10) and BasePool
// (lib/base/pool.js; lib/pool.js before), patched on their prototypes. The promise API
// (`mysql2/promise`, `.promise()`) and PoolConnection call into these, so one patch covers them all.
//
// Per query we add one Statement hung on mysql2's own command object and one shared 'end' listener on
// it (no closure). At 'end' the OK packet's server status says whether a transaction is open
// (SERVER_STATUS_IN_TRANS); a SELECT's result carries no status we can read, and an error none at all,
// so for those the statement's keyword decides (BEGIN, START TRANSACTION, COMMIT, ROLLBACK).
// What is pending is read from the connection's queue at dump time (_command, _commands).
//
// The SQL kept is the app's template (`… WHERE id = ?`): mysql2's query() interpolates values into
// `cmd.sql`, and values are recorded only with recordValues.
//
// Why patching and not mysql2's own TracingChannels (`mysql2:query`, `mysql2:execute`, `mysql2:connect`,
// `mysql2:pool:connect`, published since 3.20; 3.24 installed here): we use one or the other for a
// driver, never both, and the channels lose on both counts that decide it.
// - Cost, measured (one connection, promise API, `SELECT 1`, CPU per query, medians of
//   30 batches of 100): a no-op subscriber on `mysql2:query` alone adds ~13 µs (Node 24.22) to ~37 µs
//   (Node 20.20) per query, because with a subscriber mysql2 wraps every promise-API query in a Promise
//   of its own with two listeners (tracePromise); this patch adds a few µs (test/db-overhead.test.ts).
// - What they carry: the start message has the SQL with the values already inlined (`query`), not the
//   template, so record_sql_values off could not be honoured; and neither the connection nor the
//   command, so no thread id (the lock-holder look-up), no queue to read what is pending, no OK packet
//   for the transaction status.
// pg publishes no channel in the version installed (8.23): patched too.

import type { ModuleTarget } from './hook';
import { isObject, wrapMethod, type Method } from './patch';
import {
  connectThroughPool,
  connStateOf, kConn, kPool, newStatement, poolStateOf,
  PendingList, PoolHandoff, type ConnAdapter, type ConnState, type PoolAdapter, type PoolState, type Statement,
} from './state';

const kStmt = Symbol('superv.statement');
const SERVER_STATUS_IN_TRANS = 1;

interface MyCommand {
  sql?: unknown;
  query?: unknown;
  _rows?: unknown[];
  on(event: string, fn: (this: MyCommand) => void): unknown;
  [kStmt]?: Statement;
}

interface MyQueue {
  length: number;
  peekAt?(i: number): unknown;
  get?(i: number): unknown;
}

interface MyConn {
  _command?: MyCommand | null;
  _commands?: MyQueue | MyCommand[];
  threadId?: number | null;
  config?: { database?: string; host?: string; port?: number };
  _closing?: boolean;
  _fatalError?: unknown;
  stream?: { destroyed?: boolean };
  _pool?: MyPool | null;
  on(event: string, fn: (this: MyConn) => void): unknown;
  [kConn]?: ConnState | null;
}

interface MyPool {
  _allConnections?: { length: number };
  _freeConnections?: { length: number };
  _connectionQueue?: { length: number };
  config?: { connectionLimit?: number };
  _closed?: boolean;
  [kPool]?: PoolState | null;
}

function queued(q: MyQueue | MyCommand[] | undefined, i: number): MyCommand | undefined {
  if (q === undefined) return undefined;
  if (Array.isArray(q)) return q[i];
  const v = typeof q.peekAt === 'function' ? q.peekAt(i) : typeof q.get === 'function' ? q.get(i) : undefined;
  return isObject(v) ? (v as unknown as MyCommand) : undefined;
}

const connAdapter: ConnAdapter = {
  driver: 'mysql2',
  pending(client, max) {
    const c = client as MyConn;
    const list = new PendingList(max);
    const head = c._command ?? undefined;
    list.add(head?.[kStmt], true);
    // execute() queues an untracked Prepare (it has `query`, a Query has `sql`) before its Execute:
    // while the Prepare runs, the statement at work is the Execute right behind it.
    const preparing = head !== undefined && head[kStmt] === undefined && typeof head.query === 'string';
    const n = c._commands?.length ?? 0;
    for (let i = 0; i < n; i++) list.add(queued(c._commands, i)?.[kStmt], i === 0 && preparing);
    return list;
  },
  serverId: (client) => (client as MyConn).threadId ?? undefined,
  closed(client) {
    const c = client as MyConn;
    return c._closing === true || (c._fatalError !== null && c._fatalError !== undefined) || c.stream?.destroyed === true;
  },
  database(client) {
    const cfg = (client as MyConn).config;
    return cfg === undefined ? undefined : `${cfg.database ?? ''}@${cfg.host ?? '?'}:${cfg.port ?? '?'}`;
  },
  pool: mysqlPoolOf,
};

const poolAdapter: PoolAdapter = {
  driver: 'mysql2',
  counts(pool) {
    const p = pool as MyPool;
    const total = p._allConnections?.length ?? 0;
    const idle = p._freeConnections?.length ?? 0;
    return { total, idle, waiting: p._connectionQueue?.length ?? 0, max: p.config?.connectionLimit };
  },
  closed: (pool) => (pool as MyPool)._closed === true,
  clients: () => [],
};

/** The pool a pooled connection belongs to (PoolConnection keeps it in `_pool`). */
function mysqlPoolOf(client: object): PoolState | undefined {
  const p = (client as MyConn)._pool;
  return isObject(p) ? (p as MyPool)[kPool] ?? undefined : undefined;
}

function connOf(c: MyConn): ConnState | undefined {
  return connStateOf(c, connAdapter);
}

function poolOf(p: MyPool): PoolState | undefined {
  return poolStateOf(p, poolAdapter);
}

/** Shared 'end' listener: `this` is the command. Never throws into mysql2's emit. */
function onCommandEnd(this: MyCommand): void {
  try {
    const stmt = this[kStmt];
    const conn = stmt?.conn;
    if (stmt === undefined || conn === undefined) return;
    const rows = this._rows;
    // A result set or OK packet is pushed into _rows as it arrives: none at 'end' means the command failed.
    if (Array.isArray(rows) && rows.length === 0) stmt.failed = true;
    const lastResult: unknown = Array.isArray(rows) ? rows[rows.length - 1] : undefined;
    const status = isObject(lastResult) && !Array.isArray(lastResult) ? lastResult.serverStatus : undefined;
    conn.finish(stmt, typeof status === 'number' ? (status & SERVER_STATUS_IN_TRANS) !== 0 : undefined, false);
  } catch {
    // Instrumentation never breaks a query.
  }
}

/**
 * Set while a promise-API method (mysql2/promise) runs its synchronous call into the core: the capture
 * then starts above it, at the app's frame, instead of four mysql2 frames lower.
 */
let promiseEntry: Function | undefined;

/** Set by pool.query/execute for the getConnection() they call synchronously. */
const handoff = new PoolHandoff();
/** Set while the pool's getConnection callback runs, for the query/execute it issues on the connection. */
let adopting: Statement | undefined;

function templateOf(sql: unknown): string {
  if (typeof sql === 'string') return sql;
  return isObject(sql) && typeof sql.sql === 'string' ? sql.sql : '';
}

function valuesOf(sql: unknown, values: unknown): unknown {
  if (values !== undefined && typeof values !== 'function') return values;
  return isObject(sql) ? sql.values : undefined;
}

function onIssued(c: MyConn, cmd: unknown, stmt: Statement | undefined): void {
  if (!isObject(cmd) || stmt === undefined) return;
  const command = cmd as unknown as MyCommand;
  if (command[kStmt] !== undefined) return;
  const conn = connOf(c);
  if (conn === undefined) return;
  stmt.conn = conn;
  command[kStmt] = stmt;
  command.on('end', onCommandEnd);
}

function wrapIssue(original: Method): Method {
  const wrapper = function supervMysqlIssue(this: unknown, sql?: unknown, values?: unknown): unknown {
    const adopted = adopting;
    adopting = undefined;
    // The template before mysql2 formats it (query() overwrites the command's sql with values inlined).
    const template = adopted === undefined ? templateOf(sql) : '';
    const cmd = Reflect.apply(original, this, arguments) as unknown;
    try {
      const stmt = adopted ?? newStatement(template, valuesOf(sql, values), promiseEntry ?? wrapper);
      onIssued(this as MyConn, cmd, stmt);
    } catch {
      // As above.
    }
    return cmd;
  };
  return wrapper;
}

function patchConnection(exports: unknown): void {
  const proto = (exports as { prototype?: unknown } | undefined)?.prototype;
  if (!isObject(proto) || typeof proto.query !== 'function') throw new Error('mysql2 Connection has no prototype.query');
  wrapMethod(proto, 'query', wrapIssue);
  wrapMethod(proto, 'execute', wrapIssue);
}

function wrapPoolIssue(original: Method): Method {
  return function supervMysqlPoolIssue(this: unknown, sql?: unknown, values?: unknown): unknown {
    let stmt: Statement | undefined;
    try {
      const pool = poolOf(this as MyPool);
      if (pool !== undefined) {
        stmt = newStatement(templateOf(sql), valuesOf(sql, values), promiseEntry ?? supervMysqlPoolIssue);
        pool.addWaiter(stmt);
      }
    } catch {
      // As above.
    }
    return handoff.run(original, this, arguments, stmt);
  };
}

function patchPool(exports: unknown): void {
  const proto = (exports as { prototype?: unknown } | undefined)?.prototype;
  if (!isObject(proto) || typeof proto.getConnection !== 'function') throw new Error('mysql2 Pool has no prototype.getConnection');
  wrapMethod(proto, 'query', wrapPoolIssue);
  wrapMethod(proto, 'execute', wrapPoolIssue);
  wrapMethod(proto, 'getConnection', (original: Method) => function supervMysqlGetConnection(this: unknown, cb?: unknown): unknown {
    const stmt = handoff.take();
    const pool = typeof cb === 'function' ? poolOf(this as MyPool) : undefined;
    if (pool === undefined || typeof cb !== 'function') {
      return Reflect.apply(original, this, arguments) as unknown;
    }
    return connectThroughPool(original, this, pool, stmt, promiseEntry ?? supervMysqlGetConnection, cb, (s) => { adopting = s; });
  });
}

function wrapPromiseEntry(original: Method): Method {
  return function supervMysqlPromiseEntry(this: unknown): unknown {
    const outer = promiseEntry;
    promiseEntry = supervMysqlPromiseEntry;
    try {
      return Reflect.apply(original, this, arguments) as unknown;
    } finally {
      promiseEntry = outer;
    }
  };
}

function patchPromise(methods: string[]): (exports: unknown) => void {
  return (exports) => {
    const proto = (exports as { prototype?: unknown } | undefined)?.prototype;
    if (!isObject(proto)) throw new Error('mysql2 promise class has no prototype');
    for (const m of methods) if (typeof proto[m] === 'function') wrapMethod(proto, m, wrapPromiseEntry);
  };
}

export const mysql2Targets: ModuleTarget[] = [
  { driver: 'mysql2', suffix: '/mysql2/lib/base/connection.js', patch: patchConnection },
  { driver: 'mysql2', suffix: '/mysql2/lib/connection.js', patch: patchConnection },
  { driver: 'mysql2', suffix: '/mysql2/lib/base/pool.js', patch: patchPool },
  { driver: 'mysql2', suffix: '/mysql2/lib/pool.js', patch: patchPool },
  // Only to start call-site captures at the app's frame; the core patches do the tracking.
  { driver: 'mysql2', suffix: '/mysql2/lib/promise/connection.js', patch: patchPromise(['query', 'execute', 'beginTransaction', 'commit', 'rollback']) },
  { driver: 'mysql2', suffix: '/mysql2/lib/promise/pool.js', patch: patchPromise(['query', 'execute', 'getConnection']) },
];
