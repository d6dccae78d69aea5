// node-postgres: Client (pg/lib/client.js) and Pool (pg-pool/index.js), patched on their prototypes.
//
// Per query we add: one Statement (request id, start time, a bounded stack capture) hung on pg's own
// Query object, and, when the server answers ReadyForQuery, its transaction status ('I' idle, 'T' in a
// transaction, 'E' in a failed one). That status is the server's word, so `client.query('BEGIN')`,
// BEGIN inside a function, and an implicit commit are all seen right, without parsing SQL.
// What is pending is read from pg's queues at dump time (_activeQuery, _sentQueryQueue, _queryQueue).
//
// pool.query() waits for a connection and then calls client.query() from a callback, where the app's
// stack is gone: the Statement is made in pool.query (app's stack, app's request), listed as a pool
// waiter, and handed to the client.query that pg-pool issues from inside that callback ("adoption").

import type { ModuleTarget } from './hook';
import { isObject, wrapMethod, type Method } from './patch';
import {
  connectThroughPool,
  connStateOf, kConn, kPool, newStatement, poolStateOf,
  PendingList, PoolHandoff, type ConnAdapter, type ConnState, type PoolAdapter, type PoolState, type Statement,
} from './state';

const kStmt = Symbol('superv.statement');

interface PgQuery {
  text?: unknown;
  values?: unknown;
  [kStmt]?: Statement;
}

interface PgClient {
  _activeQuery?: PgQuery | null;
  activeQuery?: PgQuery | null;
  _queryQueue?: PgQuery[];
  queryQueue?: PgQuery[];
  _sentQueryQueue?: PgQuery[];
  processID?: number | null;
  database?: string;
  host?: string;
  port?: number;
  _ended?: boolean;
  connection?: { stream?: { destroyed?: boolean } };
  on(event: string, fn: (this: PgClient) => void): unknown;
  /** null: past the connection cap, not tracked. */
  [kConn]?: ConnState | null;
}

interface PgPool {
  totalCount?: number;
  idleCount?: number;
  waitingCount?: number;
  options?: { max?: number };
  ending?: boolean;
  ended?: boolean;
  _clients?: object[];
  [kPool]?: PoolState | null;
}

// pg 8.23 keeps these as _activeQuery/_queryQueue and turned the old names into deprecated getters
// that print a warning: read the old names only on older versions, where they are plain fields.
function active(c: PgClient): PgQuery | undefined {
  return ('_activeQuery' in c ? c._activeQuery : c.activeQuery) ?? undefined;
}

function queue(c: PgClient): PgQuery[] | undefined {
  return '_queryQueue' in c ? c._queryQueue : c.queryQueue;
}

/** The query client.query() just enqueued: the queue's tail, else (sent at once) the pipeline's, else the active one. */
function newest(c: PgClient): PgQuery | undefined {
  const q = queue(c);
  if (q !== undefined && q.length > 0) return q[q.length - 1];
  const sent = c._sentQueryQueue;
  if (sent !== undefined && sent.length > 0) return sent[sent.length - 1];
  return active(c);
}

const connAdapter: ConnAdapter = {
  driver: 'pg',
  pending(client, max) {
    const c = client as PgClient;
    const list = new PendingList(max);
    list.add(active(c)?.[kStmt], true);
    for (const q of c._sentQueryQueue ?? []) list.add(q[kStmt], true);
    for (const q of queue(c) ?? []) list.add(q[kStmt], false);
    return list;
  },
  serverId: (client) => (client as PgClient).processID ?? undefined,
  closed(client) {
    const c = client as PgClient;
    return c._ended === true || c.connection?.stream?.destroyed === true;
  },
  database(client) {
    const c = client as PgClient;
    return c.database === undefined ? undefined : `${c.database}@${c.host ?? '?'}:${c.port ?? '?'}`;
  },
};

const poolAdapter: PoolAdapter = {
  driver: 'pg',
  counts(pool) {
    const p = pool as PgPool;
    return { total: p.totalCount ?? 0, idle: p.idleCount ?? 0, waiting: p.waitingCount ?? 0, max: p.options?.max };
  },
  closed: (pool) => (pool as PgPool).ending === true || (pool as PgPool).ended === true,
  clients: (pool) => (pool as PgPool)._clients ?? [],
};

function connOf(c: PgClient): ConnState | undefined {
  return connStateOf(c, connAdapter);
}

function poolOf(p: PgPool): PoolState | undefined {
  return poolStateOf(p, poolAdapter);
}

/** pool.query's statement, for the pool.connect() it calls synchronously. */
const handoff = new PoolHandoff();
/** Set while pg-pool's connect callback runs, for the client.query() it issues from there. */
let adopting: Statement | undefined;

function onQueryIssued(c: PgClient, adopted: Statement | undefined, below: Function): void {
  const q = newest(c);
  // Not enqueued (the client was closed: pg fails the query on the next tick) or an older query.
  if (q === undefined || q[kStmt] !== undefined) return;
  const conn = connOf(c);
  if (conn === undefined) return;
  const stmt = adopted ?? newStatement(typeof q.text === 'string' ? q.text : '', q.values, below);
  stmt.conn = conn;
  q[kStmt] = stmt;
}

function onReady(c: PgClient, msg: unknown): void {
  const conn = c[kConn];
  if (conn === undefined || conn === null) return;
  const stmt = active(c)?.[kStmt] ?? conn.errored;
  conn.errored = undefined;
  if (stmt === undefined) return;
  const status = isObject(msg) ? msg.status : undefined;
  if (status === 'I' || status === 'T' || status === 'E') conn.finish(stmt, status !== 'I', status === 'E');
  else conn.finish(stmt, undefined, false);
}

function onErrorMessage(c: PgClient): void {
  const conn = c[kConn];
  const stmt = active(c)?.[kStmt];
  if (conn === undefined || conn === null || stmt === undefined) return;
  // pg drops the active query here; the transaction status comes with the ReadyForQuery that follows.
  stmt.failed = true;
  stmt.endedAt = Date.now();
  conn.errored = stmt;
}

function patchClient(exports: unknown): void {
  const proto = (exports as { prototype?: unknown } | undefined)?.prototype;
  if (!isObject(proto) || typeof proto.query !== 'function') throw new Error('pg Client has no prototype.query');
  wrapMethod(proto, 'query', (original: Method) => function supervPgQuery(this: unknown): unknown {
    const adopted = adopting;
    adopting = undefined;
    const result = Reflect.apply(original, this, arguments) as unknown;
    try {
      onQueryIssued(this as PgClient, adopted, supervPgQuery);
    } catch {
      // Instrumentation never breaks a query.
    }
    return result;
  });
  wrapMethod(proto, '_handleReadyForQuery', (original: Method) => function supervPgReady(this: unknown, msg?: unknown): unknown {
    try {
      onReady(this as PgClient, msg);
    } catch {
      // As above.
    }
    return Reflect.apply(original, this, arguments) as unknown;
  });
  wrapMethod(proto, '_handleErrorMessage', (original: Method) => function supervPgError(this: unknown): unknown {
    try {
      onErrorMessage(this as PgClient);
    } catch {
      // As above.
    }
    return Reflect.apply(original, this, arguments) as unknown;
  });
}

function sqlOf(text: unknown): string {
  if (typeof text === 'string') return text;
  return isObject(text) && typeof text.text === 'string' ? text.text : '';
}

function patchPool(exports: unknown): void {
  const proto = (exports as { prototype?: unknown } | undefined)?.prototype;
  if (!isObject(proto) || typeof proto.connect !== 'function') throw new Error('pg-pool Pool has no prototype.connect');
  wrapMethod(proto, 'query', (original: Method) => function supervPgPoolQuery(this: unknown, text?: unknown, values?: unknown): unknown {
    let stmt: Statement | undefined;
    try {
      const pool = poolOf(this as PgPool);
      if (pool !== undefined && text !== null && typeof text !== 'function') {
        const vals = values !== undefined && typeof values !== 'function' ? values : isObject(text) ? text.values : undefined;
        stmt = newStatement(sqlOf(text), vals, supervPgPoolQuery);
        pool.addWaiter(stmt);
      }
    } catch {
      // As above.
    }
    return handoff.run(original, this, arguments, stmt);
  });
  wrapMethod(proto, 'connect', (original: Method) => function supervPgPoolConnect(this: unknown, cb?: unknown): unknown {
    const stmt = handoff.take();
    // pool.connect() with a promise: the pool's waitingCount counts it; no waiter detail.
    const pool = typeof cb === 'function' ? poolOf(this as PgPool) : undefined;
    if (pool === undefined || typeof cb !== 'function') {
      return Reflect.apply(original, this, arguments) as unknown;
    }
    return connectThroughPool(original, this, pool, stmt, supervPgPoolConnect, cb, (s) => { adopting = s; });
  });
}

export const pgTargets: ModuleTarget[] = [
  { driver: 'pg', suffix: '/pg/lib/client.js', patch: patchClient },
  { driver: 'pg', suffix: '/pg-pool/index.js', patch: patchPool },
];
