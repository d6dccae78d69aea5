// At dump time, ask the database who blocks our waiting statements: the lock look-up.
//
// Where it runs: on the worker's main thread, started by the watchdog through its inspector session
// (Runtime.evaluate with awaitPromise) right after the probe, and only when the probe found a statement
// running on a connection whose server id we know. Why there:
//   - the look-up needs a driver and a connection with the app's settings (password, TLS, socket path),
//     and those live in the app's own objects on the main thread; nothing secret travels anywhere;
//   - a statement waiting on a lock leaves the main thread's loop free (the request awaits I/O), so the
//     look-up's own I/O runs; when the loop is blocked the look-up is skipped and the dump says so;
//   - the watchdog thread cannot use the app's driver (another isolate, another require cache), and the
//     master would have to load the driver from the app's directory and be sent the app's credentials.
// The side connection is new, made from the settings of the waiting connection (lock-side.ts), never one
// of the app's pool connections, and is destroyed when the look-up ends. The whole look-up has one hard
// deadline (LOCK_LOOKUP_MS, capped by what is left of the capture's budget): denied privileges, a hung or
// unreachable server, a driver whose objects surprise us all end in a dump without (or with part of) the
// answer and a `missing` line saying why. Nothing of this runs per request or per query.
//
// The chain: the waiter's blockers, then their blockers, one query per level for all sessions of that
// level, to MAX_DEPTH or the deadline. A holder that is one of this worker's own connections is named
// here (request, statements); one of another worker's is named by the master (src/master/lock-holders.ts).

import { requestById } from '../context';
import { LOCK_LOOKUP_MS as LOOKUP_MS, LOCK_LOOKUP_SYMBOL } from '../../protocol';
import { lockSentence, type DbKind, type LockHolder, type LockLookup, type LockWait } from '../../dump/locks';
import { lockDrivers, type LockDriver, type SideSession } from './lock-side';
import { mysqlCatalog } from './lock-mysql';
import { postgresCatalog } from './lock-postgres';
import { registry, type ConnState, type Statement } from './state';

export type { SideSession } from './lock-side';

const MAX_DEPTH = 5;
const MAX_WAITERS = 20;
const OWN_STATEMENTS = 5;
const SQL_CHARS = 1000;

/** What one level of the walk learns about each session asked: what it waits for, and who holds it up. */
export interface LockEdge {
  waitingFor?: string;
  holders: LockHolder[];
}

/** The server-specific questions: which catalog, which SQL. One per server family, shared by its drivers. */
export interface LockCatalog {
  kind: DbKind;
  server(s: SideSession): Promise<string>;
  level(s: SideSession, ids: number[]): Promise<Map<number, LockEdge>>;
}

const catalogs: Record<DbKind, LockCatalog> = { postgres: postgresCatalog, mysql: mysqlCatalog };

export const lockSettings = { enabled: true };

interface Waiting {
  conn: ConnState;
  stmt: Statement;
  serverId: number;
  driver: LockDriver;
}

function cut(sql: string): string {
  return sql.length > SQL_CHARS ? `${sql.slice(0, SQL_CHARS)}…` : sql;
}

/** Our statements the server is executing now, on connections whose server id we know. */
function waitingStatements(): { waiting: Waiting[]; unsupported: Set<string> } {
  const waiting: Waiting[] = [];
  const unsupported = new Set<string>();
  for (const conn of registry.connections) {
    if (waiting.length >= MAX_WAITERS) break;
    try {
      const a = conn.adapter;
      const serverId = a.serverId(conn.client);
      if (serverId === undefined) continue;
      const running = a.pending(conn.client, 1).items.find((p) => p.running);
      if (running === undefined) continue;
      const driver = lockDrivers[a.driver];
      if (driver === undefined) { unsupported.add(a.driver); continue; }
      waiting.push({ conn, stmt: running.stmt, serverId, driver });
    } catch {
      // A connection whose internals surprise us is left out, not allowed to lose the rest.
    }
  }
  return { waiting, unsupported };
}

/** This worker's connection with that server id, if the holder is one of ours. */
function ownHolder(kind: DbKind, serverId: number): LockHolder['ours'] | undefined {
  for (const conn of registry.connections) {
    const driver = lockDrivers[conn.adapter.driver];
    if (driver?.kind !== kind) continue;
    let id: number | undefined;
    try { id = conn.adapter.serverId(conn.client); } catch { id = undefined; }
    if (id !== serverId) continue;
    const requestId = conn.txOpener?.requestId ?? conn.last?.requestId;
    const ours: NonNullable<LockHolder['ours']> = { workerPid: process.pid };
    if (requestId !== undefined) {
      ours.requestId = requestId;
      const info = requestById(requestId);
      if (info !== undefined) {
        ours.method = info.method;
        ours.url = info.url;
        ours.requestAgeMs = info.ageMs;
      }
    }
    ours.statements = conn.recent.slice(-OWN_STATEMENTS).map((s) => cut(s.sql));
    return ours;
  }
  return undefined;
}

/** Walks every waiter's chain on one server: one query per level, for all sessions of that level at once. */
async function walk(catalog: LockCatalog, session: SideSession, waiters: number[], deadline: number): Promise<{ edges: Map<number, LockEdge>; cut?: string }> {
  const edges = new Map<number, LockEdge>();
  let level = [...new Set(waiters)];
  for (let depth = 0; level.length > 0; depth++) {
    if (depth >= MAX_DEPTH) return { edges, cut: `chain cut at ${MAX_DEPTH} levels` };
    if (Date.now() >= deadline) return { edges, cut: 'chain cut: the look-up ran out of time' };
    const got = await catalog.level(session, level);
    const next: number[] = [];
    for (const id of level) {
      const e = got.get(id) ?? { holders: [] };
      edges.set(id, e);
      for (const h of e.holders) if (!edges.has(h.serverId) && !next.includes(h.serverId)) next.push(h.serverId);
    }
    level = next;
  }
  return { edges };
}

function chainOf(start: number, edges: Map<number, LockEdge>): LockHolder[] {
  const chain: LockHolder[] = [];
  const seen = new Set<number>([start]);
  for (let id = start; ;) {
    const h = edges.get(id)?.holders[0];
    if (h === undefined) return chain;
    chain.push(h);
    // A cycle is a deadlock the server has not broken yet: stop where it closes.
    if (seen.has(h.serverId)) return chain;
    seen.add(h.serverId);
    id = h.serverId;
  }
}

function waitOf(w: Waiting, kind: DbKind, edges: Map<number, LockEdge>, now: number, chainCut: string | undefined): LockWait | undefined {
  const e = edges.get(w.serverId);
  if (e === undefined || (e.holders.length === 0 && e.waitingFor === undefined)) return undefined;
  const wait: LockWait = { kind, serverId: w.serverId, connection: w.conn.id, chain: chainOf(w.serverId, edges), sentence: '' };
  wait.sql = cut(w.stmt.sql);
  if (w.stmt.requestId !== undefined) wait.requestId = w.stmt.requestId;
  const site = w.stmt.callSite();
  if (site !== undefined) wait.site = { function: site.function, file: site.file, line: site.line };
  wait.waitedMs = now - (w.stmt.connectedAt || w.stmt.startedAt);
  if (e.waitingFor !== undefined) wait.waitingFor = e.waitingFor;
  if (e.holders.length > 1) wait.otherBlockers = e.holders.slice(1).map((h) => h.serverId);
  if (chainCut !== undefined && wait.chain.length > 0 && edges.get(wait.chain[wait.chain.length - 1]!.serverId) === undefined) wait.chainCut = chainCut;
  for (const h of wait.chain) {
    const ours = ownHolder(kind, h.serverId);
    if (ours !== undefined) h.ours = ours;
  }
  wait.sentence = lockSentence(wait);
  return wait;
}

function why(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown };
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.code === 'string' && !msg.includes(e.code) ? `${msg} (${e.code})` : msg;
}

interface Sessions {
  opened: SideSession[];
  /** Set when the deadline passed: a connection that opens after it is destroyed at once. */
  over: boolean;
}

async function lookUpServer(group: Waiting[], out: LockLookup, deadline: number, sessions: Sessions): Promise<void> {
  const first = group[0]!;
  const catalog = catalogs[first.driver.kind];
  const session = await first.driver.open(first.conn.client, deadline - Date.now());
  if (sessions.over) {
    session.destroy();
    return;
  }
  sessions.opened.push(session);
  const server = await catalog.server(session);
  out.server = out.server === undefined ? server : `${out.server}; ${server}`;
  const { edges, cut: chainCut } = await walk(catalog, session, group.map((w) => w.serverId), deadline);
  const now = Date.now();
  for (const w of group) {
    const wait = waitOf(w, catalog.kind, edges, now, chainCut);
    if (wait !== undefined) out.waits.push(wait);
  }
}

/**
 * The look-up: who blocks each of our running statements, bounded by `budgetMs` (at most LOOKUP_MS).
 * Never throws; what it could not learn is in `missing`.
 */
export async function lookUpLocks(budgetMs: number): Promise<LockLookup> {
  const started = Date.now();
  const out: LockLookup = { waits: [] };
  const missing: string[] = [];
  if (!lockSettings.enabled) return { waits: [], missing: ['the lock look-up is turned off (lock_lookup: false, --no-lock-lookup)'] };
  const { waiting, unsupported } = waitingStatements();
  for (const d of unsupported) missing.push(`no lock look-up for ${d} connections`);
  const groups = new Map<string, Waiting[]>();
  for (const w of waiting) {
    const key = w.driver.serverKey(w.conn.client);
    const g = groups.get(key);
    if (g === undefined) groups.set(key, [w]);
    else g.push(w);
  }
  const ms = Math.min(LOOKUP_MS, budgetMs);
  const deadline = started + ms;
  const sessions: Sessions = { opened: [], over: false };
  const jobs = [...groups.entries()].map(([key, g]) => lookUpServer(g, out, deadline, sessions).catch((err: unknown) => {
    if (!sessions.over) missing.push(`${key}: the look-up failed: ${why(err)}`);
  }));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), Math.max(0, ms)); });
  const r = await Promise.race([Promise.all(jobs).then(() => 'done' as const), late]);
  clearTimeout(timer);
  sessions.over = true;
  for (const s of sessions.opened) s.destroy();
  if (r === 'late') missing.push(`the look-up did not finish within ${ms} ms (server slow, paused or unreachable?): what it learned by then is shown`);
  out.elapsedMs = Date.now() - started;
  if (missing.length > 0) out.missing = missing;
  return out;
}

export function installLockLookup(enabled: boolean): void {
  lockSettings.enabled = enabled;
  (globalThis as Record<symbol, unknown>)[Symbol.for(LOCK_LOOKUP_SYMBOL)] = async (budgetMs: number): Promise<string> =>
    JSON.stringify(await lookUpLocks(budgetMs));
}
