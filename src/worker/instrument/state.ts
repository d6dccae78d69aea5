// The driver-independent bookkeeping behind the `db` provider: one Statement per query the app issues,
// one ConnState per connection that ran one, one PoolState per pool. What is *pending* is not kept here:
// it is read from the driver's own queues at dump time (the Statement rides on the driver's query
// object), so our view cannot drift from the driver's. What is kept here is what the driver forgets:
// when a transaction began, for which request, and what ran inside it.
//
// Memory is bounded: connections are dropped when they end and capped in number, each keeps the last
// MAX_TX_STATEMENTS statements of its open transaction, pools keep at most MAX_WAITERS waiters.

import { currentRequestId } from '../context';
import { cachedSite, captureSite, MIN_CACHED_SQL, resolveSite, type CallSite } from './callsite';
import { currentOrigin } from './origin';
import { settings } from './settings';
import { txEffect } from './sql';
import { reportOwnError } from '../guard';

export type Driver = 'pg' | 'mysql2' | 'postgres' | 'mariadb';

export const MAX_CONNECTIONS = 1000;
export const MAX_TX_STATEMENTS = 10;
export const MAX_POOLS = 100;
export const MAX_WAITERS = 100;
/** SQL longer than this is cut (and copied) when it finishes, so history cannot pin a bulk INSERT's text. */
export const KEEP_SQL_CHARS = 2000;

/** One query as the app issued it. Allocated once per query; everything else is read lazily. */
export class Statement {
  readonly startedAt = Date.now();
  /** 0 while pending. */
  endedAt = 0;
  /** When a pool handed the statement a connection (pool.query waits for one first); 0 otherwise. */
  connectedAt = 0;
  failed = false;
  conn: ConnState | undefined = undefined;
  /** The app frame: from the per-SQL cache, or resolved on first read; null when none was found. */
  site: CallSite | null | undefined = undefined;
  /** Where the query builder's thenable that issued it was made (origin.ts): read instead of our stack. */
  origin: object | undefined = undefined;

  /** The SQL's length before finish() cut it. */
  readonly sqlLength: number;

  constructor(
    public sql: string,
    /** Only kept when recordValues is on; a reference to the app's own array, copied at read time. */
    readonly values: unknown,
    readonly requestId: number | undefined,
    /** 'connect' for a wait on a pool with no SQL yet (pool.connect(), getConnection()). */
    readonly kind: 'query' | 'connect',
  ) {
    this.sqlLength = sql.length;
  }

  callSite(): CallSite | undefined {
    if (this.site === undefined) {
      this.site = resolveSite(this.origin ?? this) ?? null;
      // Drop V8's frames (they hold the app's receivers and closures alive) once we have ours.
      (this as { stack?: unknown }).stack = undefined;
      this.origin = undefined;
    }
    return this.site ?? undefined;
  }
}

/**
 * The first `n` characters as a string of their own: V8's slice() of a long string keeps a pointer to
 * the whole of it. Rare (statements over 2000 characters), so the copy's cost does not matter.
 */
function detachedHead(s: string, n: number): string {
  return Buffer.from(s.slice(0, n), 'utf16le').toString('utf16le');
}

/** A Statement for what the app is issuing now; `below` is the wrapper the app called. */
export function newStatement(sql: string, values: unknown, below: Function, kind: 'query' | 'connect' = 'query'): Statement {
  const s = new Statement(sql, settings.recordValues ? values : undefined, currentRequestId(), kind);
  const frames = settings.frames;
  const origin = currentOrigin();
  if (origin !== undefined) s.origin = origin;
  else if (frames === 0) s.site = null;
  else if (settings.siteCache && sql.length >= MIN_CACHED_SQL && txEffect(sql) === 0) s.site = cachedSite(sql, below, frames);
  // Captured on the statement itself, formatted only if a dump lists it.
  if (origin === undefined && s.site === undefined) captureSite(s, below, frames);
  return s;
}

export interface Pending {
  stmt: Statement;
  /** True for the statement the server is executing (or, pipelined, has been sent). */
  running: boolean;
}

/** What ConnAdapter.pending() returns: the drivers' queues walked in order, the listing capped at `max`. */
export class PendingList {
  readonly items: Pending[] = [];
  more = 0;

  constructor(private readonly max: number) {}

  /** A queued driver object's statement, when it carries one of ours. */
  add(stmt: Statement | undefined, running: boolean): void {
    if (stmt === undefined) return;
    if (this.items.length < this.max) this.items.push({ stmt, running });
    else this.more++;
  }
}

/** What only the driver knows, read at dump time. `client` is the driver's connection object. */
export interface ConnAdapter {
  readonly driver: Driver;
  /** Statements issued and not finished, in order; at most `max`, and how many more there are. */
  pending(client: object, max: number): { items: Pending[]; more: number };
  /** The server's id for the connection: pg's backend pid, MySQL's connection (thread) id. */
  serverId(client: object): number | undefined;
  closed(client: object): boolean;
  database(client: object): string | undefined;
  /** The pool the connection belongs to, when the connection says (mysql2, mariadb); else found from the pool's side. */
  pool?(client: object): PoolState | undefined;
}

export interface PoolAdapter {
  readonly driver: Driver;
  counts(pool: object): { total: number; idle: number; waiting: number; max?: number };
  closed(pool: object): boolean;
  /** The pool's connections, to say which pool a connection belongs to. */
  clients(pool: object): object[];
}

let nextConnId = 1;
let nextPoolId = 1;

export class ConnState {
  readonly id = nextConnId++;
  /** Epoch ms the open transaction began (its first statement's start); 0 when none is open. */
  txSince = 0;
  txOpener: Statement | undefined = undefined;
  /** pg's 'E': the transaction failed and only ROLLBACK will do. */
  txFailed = false;
  txCount = 0;
  /** The open transaction's last statements, oldest first. */
  readonly recent: Statement[] = [];
  last: Statement | undefined = undefined;
  /** pg: a statement that failed, waiting for the ReadyForQuery that carries the transaction status. */
  errored: Statement | undefined = undefined;

  constructor(readonly client: object, readonly adapter: ConnAdapter) {}

  /**
   * A statement finished. `inTx` is the server's word on whether a transaction is open now; when the
   * server did not say, the statement's own keyword (BEGIN, COMMIT…) decides.
   */
  finish(stmt: Statement, inTx: boolean | undefined, txFailed: boolean): void {
    if (stmt.endedAt === 0) stmt.endedAt = Date.now();
    if (stmt.sql.length > KEEP_SQL_CHARS) stmt.sql = detachedHead(stmt.sql, KEEP_SQL_CHARS);
    this.last = stmt;
    const open = inTx ?? this.keywordSays(stmt);
    if (!open) {
      if (this.txSince !== 0) this.closeTx();
      return;
    }
    if (this.txSince === 0) {
      this.txSince = stmt.startedAt;
      this.txOpener = stmt;
      this.txCount = 0;
      this.recent.length = 0;
    }
    this.txFailed = txFailed;
    this.txCount++;
    this.recent.push(stmt);
    if (this.recent.length > MAX_TX_STATEMENTS) this.recent.shift();
  }

  private keywordSays(stmt: Statement): boolean {
    const effect = stmt.failed ? 0 : txEffect(stmt.sql);
    return effect === 0 ? this.txSince !== 0 : effect > 0;
  }

  private closeTx(): void {
    this.txSince = 0;
    this.txOpener = undefined;
    this.txFailed = false;
    this.txCount = 0;
    this.recent.length = 0;
  }
}

export class PoolState {
  readonly id = nextPoolId++;
  /** Callers waiting for a connection, oldest first (a Set keeps insertion order). */
  readonly waiters = new Set<Statement>();

  constructor(readonly pool: object, readonly adapter: PoolAdapter) {}

  addWaiter(s: Statement): void {
    if (this.waiters.size < MAX_WAITERS) this.waiters.add(s);
  }
}

export const registry = {
  connections: new Set<ConnState>(),
  pools: new Set<PoolState>(),
  /** Connections and pools past the caps: counted, not tracked. */
  untrackedConnections: 0,
  untrackedPools: 0,
};

function pruneConnections(): void {
  for (const c of registry.connections) if (safeClosed(c)) registry.connections.delete(c);
}

export function safeClosed(c: ConnState): boolean {
  try {
    return c.adapter.closed(c.client);
  } catch {
    return false;
  }
}

/** A ConnState for a new connection, or undefined past the cap. The caller stores it on the client. */
export function trackConnection(client: object, adapter: ConnAdapter): ConnState | undefined {
  if (registry.connections.size >= MAX_CONNECTIONS) pruneConnections();
  if (registry.connections.size >= MAX_CONNECTIONS) {
    registry.untrackedConnections++;
    return undefined;
  }
  const c = new ConnState(client, adapter);
  registry.connections.add(c);
  return c;
}

export function forgetConnection(c: ConnState | undefined): void {
  if (c !== undefined) registry.connections.delete(c);
}

export function trackPool(pool: object, adapter: PoolAdapter): PoolState | undefined {
  if (registry.pools.size >= MAX_POOLS) {
    for (const p of registry.pools) if (p.adapter.closed(p.pool)) registry.pools.delete(p);
  }
  if (registry.pools.size >= MAX_POOLS) {
    registry.untrackedPools++;
    return undefined;
  }
  const p = new PoolState(pool, adapter);
  registry.pools.add(p);
  return p;
}

/** Where a driver's connection and pool objects carry their state; null: past the cap, not tracked. */
export const kConn = Symbol('superv.connection');
export const kPool = Symbol('superv.pool');

export interface TrackedClient {
  on(event: string, fn: (this: TrackedClient) => void): unknown;
  [kConn]?: ConnState | null;
}

export interface TrackedPool {
  [kPool]?: PoolState | null;
}

/** Shared 'end' listener: `this` is the driver's connection. */
function onClientEnd(this: TrackedClient): void {
  try {
    forgetConnection(this[kConn] ?? undefined);
  } catch (err) {
    reportOwnError('forgetting a DB connection', err);
  }
}

/** The connection's state, made on first use and forgotten when the connection ends. */
export function connStateOf(client: TrackedClient, adapter: ConnAdapter): ConnState | undefined {
  let s = client[kConn];
  if (s === undefined) {
    s = trackConnection(client, adapter) ?? null;
    client[kConn] = s;
    if (s !== null) client.on('end', onClientEnd);
  }
  return s ?? undefined;
}

/** The pool's state, made on first use. */
export function poolStateOf(pool: TrackedPool, adapter: PoolAdapter): PoolState | undefined {
  let s = pool[kPool];
  if (s === undefined) pool[kPool] = s = trackPool(pool, adapter) ?? null;
  return s ?? undefined;
}

/**
 * The pool-connect path both drivers share. The caller waits as a pool waiter (the pool.query statement on
 * its way, or a bare `connect` entry issued at `below`) until the pool hands it a connection; then its
 * callback runs with `adopt(stmt)` in force, so the connection's first query adopts the statement the
 * app issued instead of starting a new one. Calls `original` with the wrapped callback.
 */
export function connectThroughPool(original: Function, self: unknown, pool: PoolState, stmt: Statement | undefined,
  below: Function, callback: Function, adopt: (s: Statement | undefined) => void): unknown {
  let waiter = stmt;
  try {
    if (waiter === undefined) {
      waiter = newStatement('', undefined, below, 'connect');
      pool.addWaiter(waiter);
    }
  } catch {
    // Bookkeeping must never break the app's connect.
  }
  const w = waiter;
  return Reflect.apply(original, self, [function supervPoolConnected(this: unknown, err?: unknown): unknown {
    if (w !== undefined) {
      pool.waiters.delete(w);
      w.connectedAt = Date.now();
    }
    adopt(err ? undefined : stmt);
    try {
      return Reflect.apply(callback, this, arguments) as unknown;
    } finally {
      adopt(undefined);
    }
  }]);
}

/**
 * A statement issued through a pool (`pool.query`), handed to the pool's `connect` wrapper, which the driver
 * calls inside that same call: how the connection it gets is tied to the statement. One per driver module.
 */
export class PoolHandoff {
  private current: Statement | undefined;

  /** Calls `original` with `stmt` handed off for the duration of the call. */
  run(original: Function, self: unknown, args: IArguments, stmt: Statement | undefined): unknown {
    this.current = stmt;
    try {
      return Reflect.apply(original, self, args) as unknown;
    } finally {
      this.current = undefined;
    }
  }

  /** The statement handed off by the enclosing pool call, once. */
  take(): Statement | undefined {
    const stmt = this.current;
    this.current = undefined;
    return stmt;
  }
}
