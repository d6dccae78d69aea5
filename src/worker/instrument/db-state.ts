// The `db` state provider: what the database drivers were doing when the dump was taken, shaped to be
// read by a person. Called on the main thread at capture time, possibly on top of blocked code, so it is
// synchronous, bounded (listing caps and a shared SQL budget) and never throws: a connection whose
// driver internals surprise us is reported as such, not allowed to lose the rest.
//
// It reads like: "GET /transfer (request 7) has waited 12.0 s on `UPDATE accounts …` issued at
// src/transfer.js:41 (transferFunds), pg connection 3 (backend pid 4321)"; "pg connection 2 (backend
// pid 4320) has had a transaction open for 15.0 s for GET /hold (request 6), idle since `SELECT … FOR
// UPDATE` finished 14.9 s ago: it may hold the locks the statements above wait for". Which lock blocks
// whom only the server knows: serverId is there to ask it (pg_blocking_pids(), performance_schema).

import { siteLabel, type CallSite } from './callsite';
import { requestLabel, requestRef, seconds, type RequestRef } from './describe';
import { unattributedReason } from '../context';
import { hookNotes, patchedDrivers, sweep } from './hook';
import { oneLine, previewValues, TextBudget } from './sql';
import { registry, safeClosed, type ConnState, type PoolState, type Statement } from './state';

const MAX_CONNECTIONS_LISTED = 50;
const MAX_PENDING_LISTED = 10;
const MAX_SENTENCES = 12;
const SQL_CHARS = 2000;
const HISTORY_SQL_CHARS = 500;
/** All SQL text in one dump together; past it each statement gets a short head only. */
const SQL_BUDGET = 256 * 1024;

export interface StatementJson {
  /** Absent for a caller waiting to check a connection out (pool.connect(), getConnection()). */
  sql?: string;
  /** Set for those: 'connection checkout'. */
  what?: 'connection checkout';
  state?: 'running' | 'queued' | 'waiting for a pool connection';
  /** Pending: since the app issued it. */
  ageMs?: number;
  /** Finished: how long it ran (after it had a connection). */
  durationMs?: number;
  /** Epoch ms the app issued it. */
  startedAt: number;
  /** Epoch ms it finished. */
  endedAt?: number;
  /** How long it waited for a pool connection before it was sent, when it did. */
  poolWaitMs?: number;
  failed?: true;
  request?: RequestRef;
  /** No request, and superv cannot tell it is outside any: why (context.ts, unattributedReason). */
  requestUnknown?: string;
  site?: CallSite;
  values?: unknown;
}

export interface TransactionJson {
  ageMs: number;
  startedAt: number;
  state: 'active' | 'idle in transaction' | 'failed (needs ROLLBACK)';
  request?: RequestRef;
  /** Where the statement that opened it (BEGIN) was issued. */
  openedAt?: CallSite;
  statementCount: number;
  /** Its last statements, oldest first (at most 10). */
  statements: StatementJson[];
}

export interface ConnectionJson {
  driver: string;
  id: number;
  /** pg backend pid / MySQL connection id: match it in pg_stat_activity, pg_locks, PROCESSLIST. */
  serverId?: number;
  pool?: number;
  database?: string;
  pending: StatementJson[];
  pendingMore?: number;
  transaction?: TransactionJson;
  /** The last statement that finished, when no transaction lists it. */
  last?: StatementJson;
}

export interface PoolJson {
  driver: string;
  id: number;
  total: number;
  idle: number;
  waiting: number;
  max?: number;
  /** Callers waiting for a connection, oldest first: pool.query() with its SQL, or connect(). */
  waiters: StatementJson[];
}

export interface DbState {
  summary: string[];
  drivers: string[];
  connections: ConnectionJson[];
  /** Tracked connections with nothing pending and no transaction open: counted, not listed. */
  idleConnections: number;
  /** Busy connections past the listing cap. */
  moreConnections?: number;
  pools: PoolJson[];
  notes?: string[];
}

interface Row {
  conn: ConnState;
  json: ConnectionJson;
  since: number;
}

class Reader {
  readonly now = Date.now();
  readonly budget = new TextBudget(SQL_BUDGET);
  readonly notes: string[] = [];
  /** Why a statement without a request may still have one (once per dump). */
  readonly unknown = unattributedReason();
  /** requestById() scans the tracker's slots: once per request id per dump is enough. */
  private readonly requests = new Map<number, RequestRef | undefined>();

  request(id: number | undefined): RequestRef | undefined {
    if (id === undefined) return undefined;
    if (!this.requests.has(id)) this.requests.set(id, requestRef(id));
    return this.requests.get(id);
  }

  statement(s: Statement, sqlChars: number, state?: StatementJson['state']): StatementJson {
    // Keys in reading order: what, how long, the SQL, for whom, from where.
    const j = {} as StatementJson;
    if (state !== undefined) j.state = state;
    if (s.endedAt === 0) j.ageMs = this.now - s.startedAt;
    else j.durationMs = s.endedAt - (s.connectedAt || s.startedAt);
    if (s.kind === 'connect') j.what = 'connection checkout';
    else j.sql = this.budget.clip(s.sql, sqlChars, s.sqlLength);
    if (s.failed) j.failed = true;
    const request = this.request(s.requestId);
    if (request !== undefined) j.request = request;
    else if (this.unknown !== undefined) j.requestUnknown = this.unknown;
    const site = s.callSite();
    if (site !== undefined) j.site = site;
    if (s.values !== undefined) j.values = previewValues(s.values);
    j.startedAt = s.startedAt;
    if (s.endedAt !== 0) j.endedAt = s.endedAt;
    if (s.connectedAt !== 0) j.poolWaitMs = s.connectedAt - s.startedAt;
    return j;
  }

  transaction(c: ConnState, idle: boolean): TransactionJson {
    const opener = c.txOpener;
    const t = {
      state: c.txFailed ? 'failed (needs ROLLBACK)' : idle ? 'idle in transaction' : 'active',
      ageMs: this.now - c.txSince,
    } as TransactionJson;
    const request = this.request(opener?.requestId);
    if (request !== undefined) t.request = request;
    const site = opener?.callSite();
    if (site !== undefined) t.openedAt = site;
    t.startedAt = c.txSince;
    t.statementCount = c.txCount;
    t.statements = c.recent.map((s) => this.statement(s, HISTORY_SQL_CHARS));
    return t;
  }

  connection(c: ConnState, poolIds: Map<object, number>): Row | undefined {
    const a = c.adapter;
    const { items, more } = a.pending(c.client, MAX_PENDING_LISTED);
    if (items.length === 0 && c.txSince === 0) return undefined;
    const json = { driver: a.driver, id: c.id } as ConnectionJson;
    const serverId = a.serverId(c.client);
    if (serverId !== undefined) json.serverId = serverId;
    const pool = poolIds.get(c.client) ?? a.pool?.(c.client)?.id;
    if (pool !== undefined) json.pool = pool;
    const db = a.database(c.client);
    if (db !== undefined) json.database = db;
    json.pending = items.map((p) => this.statement(p.stmt, SQL_CHARS, p.running ? 'running' : 'queued'));
    if (more > 0) json.pendingMore = more;
    if (c.txSince !== 0) json.transaction = this.transaction(c, items.length === 0);
    else if (c.last !== undefined) json.last = this.statement(c.last, HISTORY_SQL_CHARS);
    const firstPending = items[0]?.stmt.startedAt ?? Infinity;
    return { conn: c, json, since: Math.min(firstPending, c.txSince || Infinity) };
  }

  pool(p: PoolState): PoolJson {
    const counts = p.adapter.counts(p.pool);
    const json: PoolJson = { driver: p.adapter.driver, id: p.id, ...counts, waiters: [] };
    if (json.max === undefined) delete json.max;
    for (const w of p.waiters) json.waiters.push(this.statement(w, HISTORY_SQL_CHARS, 'waiting for a pool connection'));
    return json;
  }
}

function who(c: ConnectionJson): string {
  const server = c.serverId === undefined ? '' : ` (${c.driver === 'pg' || c.driver === 'postgres' ? 'backend pid' : 'connection id'} ${c.serverId})`;
  return `${c.driver} connection ${c.id}${server}`;
}

function at(site: CallSite | undefined): string {
  const s = siteLabel(site);
  return s === undefined ? '' : ` issued at ${s}`;
}

function sentences(rows: ConnectionJson[], pools: PoolJson[], now: number): string[] {
  const out: string[] = [];
  const pending = rows.flatMap((c) => c.pending.map((s) => ({ c, s }))).sort((a, b) => a.s.startedAt - b.s.startedAt);
  for (const { c, s } of pending) {
    const tx = c.transaction === undefined ? '' : `, inside a transaction open for ${seconds(c.transaction.ageMs)}`;
    const head = `${requestLabel(s.request)} has waited ${seconds(s.ageMs ?? 0)}`;
    out.push(s.state === 'queued'
      ? `${head} for \`${oneLine(s.sql ?? '')}\`${at(s.site)} to reach the server: it is queued behind another statement on ${who(c)}${tx}`
      : `${head} on \`${oneLine(s.sql ?? '')}\`${at(s.site)}; ${who(c)}${tx}`);
  }
  const txs = rows.filter((c) => c.transaction !== undefined).sort((a, b) => b.transaction!.ageMs - a.transaction!.ageMs);
  for (const c of txs) {
    const t = c.transaction!;
    const last = t.statements[t.statements.length - 1];
    const opened = t.openedAt === undefined ? '' : `, opened at ${siteLabel(t.openedAt)}`;
    let tail = '';
    if (t.state !== 'active' && last !== undefined) {
      const endedAgo = now - (last.endedAt ?? now);
      tail = `; ${t.state} since \`${oneLine(last.sql ?? '')}\` finished ${seconds(endedAgo)} ago${at(last.site)}: it may hold locks that others wait for`;
    }
    out.push(`${who(c)} has had a transaction open for ${seconds(t.ageMs)} for ${requestLabel(t.request)}${opened}${tail}`);
  }
  for (const p of pools) {
    if (p.waiting === 0 && p.waiters.length === 0) continue;
    const oldest = p.waiters[0];
    const detail = oldest === undefined ? '' : ` (oldest ${seconds(oldest.ageMs ?? 0)}: ${requestLabel(oldest.request)}${at(oldest.site)}${oldest.sql ? ` for \`${oneLine(oldest.sql)}\`` : ''})`;
    const cap = p.max === undefined ? '' : ` of max ${p.max}`;
    out.push(`${p.driver} pool ${p.id}: ${p.total - p.idle} connections in use${cap}, ${Math.max(p.waiting, p.waiters.length)} callers waiting for one${detail}`);
  }
  return out.slice(0, MAX_SENTENCES);
}

function safely<T>(what: string, notes: string[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (notes.length < 20) notes.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** The `db` provider. */
export function dbState(): DbState {
  const r = new Reader();
  // Drivers loaded in a way the load hook did not see get patched now; hookNotes() says so.
  safely('sweeping require.cache', r.notes, () => sweep('late'));
  const pools: PoolJson[] = [];
  const poolIds = new Map<object, number>();
  for (const p of registry.pools) {
    if (safely(`pool ${p.id}`, r.notes, () => p.adapter.closed(p.pool)) !== false) {
      registry.pools.delete(p);
      continue;
    }
    const j = safely(`pool ${p.id}`, r.notes, () => r.pool(p));
    if (j !== undefined) pools.push(j);
    for (const client of safely(`pool ${p.id}`, r.notes, () => p.adapter.clients(p.pool)) ?? []) poolIds.set(client, p.id);
  }
  const rows: Row[] = [];
  let idle = 0;
  for (const c of registry.connections) {
    if (safeClosed(c)) {
      registry.connections.delete(c);
      continue;
    }
    const row = safely(`${c.adapter.driver} connection ${c.id}`, r.notes, () => r.connection(c, poolIds));
    if (row === undefined) idle++;
    else rows.push(row);
  }
  rows.sort((a, b) => a.since - b.since);
  const listed = rows.slice(0, MAX_CONNECTIONS_LISTED).map((x) => x.json);
  const out: DbState = {
    summary: sentences(listed, pools, r.now),
    drivers: patchedDrivers(),
    connections: listed,
    idleConnections: idle,
    pools,
  };
  if (rows.length > listed.length) out.moreConnections = rows.length - listed.length;
  const notes = [...hookNotes(), ...r.notes];
  if (registry.untrackedConnections > 0) notes.push(`${registry.untrackedConnections} connections past the cap of tracked connections were not tracked`);
  if (registry.untrackedPools > 0) notes.push(`${registry.untrackedPools} pools past the cap were not tracked`);
  if (notes.length > 0) out.notes = notes;
  return out;
}
