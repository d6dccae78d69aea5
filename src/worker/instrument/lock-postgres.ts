// Asking PostgreSQL who blocks a session: one query per level of the wait chain, on the side connection.
//
// pg_blocking_pids(pid) is the server's own answer (it knows lock queues, group locking and parallel
// workers); pg_stat_activity says who the blocker is (state, query, xact_start, application_name,
// client_addr, usename) and pg_locks which lock the waiter wants and the holder has. Every role may
// call these; without pg_read_all_stats (or superuser) another user's `query` reads
// `<insufficient privilege>`, which we pass on as such: the id, state and ages stay right.

import type { LockHolder } from '../../dump/locks';
import type { LockCatalog, LockEdge, SideSession } from './lock-lookup';

// One row per (waiter, direct blocker); a waiter with no blocker still gets a row (its wait event).
// `blocking` counts every session the blocker holds up, ours or not: the "N requests wait on" of its dump.
const LEVEL_SQL = `
SELECT w.pid AS waiter, w.wait_event_type, w.wait_event,
       wl.mode AS want_mode, wl.locktype AS want_type, wl.relation::regclass::text AS want_rel,
       (SELECT t.relation::regclass::text FROM pg_locks t WHERE t.pid = w.pid AND t.locktype = 'tuple' LIMIT 1) AS tuple_rel,
       b.pid AS holder, b.state, b.query, b.application_name, b.client_addr::text AS client_addr, b.client_port,
       b.usename, b.datname, (extract(epoch FROM (now() - b.xact_start)) * 1000)::bigint AS tx_ms,
       (SELECT count(*) FROM pg_stat_activity x WHERE b.pid = ANY(pg_blocking_pids(x.pid))) AS blocking,
       hl.mode AS held_mode
FROM pg_stat_activity w
LEFT JOIN LATERAL (SELECT l.mode, l.locktype, l.relation, l.transactionid FROM pg_locks l
                   WHERE l.pid = w.pid AND NOT l.granted LIMIT 1) wl ON true
LEFT JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) ON true
LEFT JOIN pg_stat_activity b ON b.pid = bp.pid
LEFT JOIN LATERAL (SELECT l.mode FROM pg_locks l
                   WHERE l.pid = b.pid AND l.granted AND l.locktype = wl.locktype
                     AND l.relation IS NOT DISTINCT FROM wl.relation
                     AND l.transactionid IS NOT DISTINCT FROM wl.transactionid LIMIT 1) hl ON true
WHERE w.pid = ANY($1::int[])
ORDER BY w.pid, b.xact_start NULLS LAST`;

type Row = Record<string, unknown>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

function lockText(mode: string | undefined, type: string | undefined, rel: string | undefined, tupleRel: string | undefined): string | undefined {
  if (mode === undefined) return undefined;
  if (type === 'transactionid') return `${mode} on a transaction: a row${tupleRel ? ` of ${tupleRel}` : ''} it changed or locked`;
  if (type === 'tuple') return `${mode} on a row of ${rel ?? 'a table'}`;
  if (type === 'relation') return `${mode} on table ${rel ?? '?'}`;
  return `${mode} on ${type ?? 'an object'}${rel ? ` ${rel}` : ''}`;
}

function holderOf(r: Row): LockHolder {
  const h: LockHolder = { serverId: num(r.holder) ?? 0 };
  const state = str(r.state);
  if (state !== undefined) h.state = state;
  const query = str(r.query);
  if (query === '<insufficient privilege>') {
    h.queryHidden = `another user's session: the app's role needs pg_read_all_stats to see its state and query`;
  } else if (query !== undefined) {
    h.query = query;
    // pg keeps the last statement of an idle session in `query`.
    if (state === 'idle in transaction' || state === 'idle in transaction (aborted)' || state === 'idle') h.queryIsLast = true;
  }
  const tx = num(r.tx_ms);
  if (tx !== undefined) h.txAgeMs = tx;
  const app = str(r.application_name);
  if (app !== undefined) h.application = app;
  const addr = str(r.client_addr);
  if (addr !== undefined) h.client = `${addr.replace(/\/\d+$/, '')}${num(r.client_port) !== undefined ? `:${num(r.client_port)}` : ''}`;
  else if (num(r.client_port) === -1) h.client = 'local socket';
  const user = str(r.usename);
  if (user !== undefined) h.user = user;
  const db = str(r.datname);
  if (db !== undefined) h.database = db;
  const held = lockText(str(r.held_mode), str(r.want_type), str(r.want_rel), str(r.tuple_rel));
  if (held !== undefined) h.lock = held;
  const blocking = num(r.blocking);
  if (blocking !== undefined) h.blocking = blocking;
  return h;
}

export const postgresCatalog: LockCatalog = {
  kind: 'postgres',
  async server(s: SideSession): Promise<string> {
    const rows = await s.query('SHOW server_version', []);
    return `PostgreSQL ${String(rows[0]?.server_version ?? '?')}`;
  },
  async level(s: SideSession, ids: number[]): Promise<Map<number, LockEdge>> {
    const out = new Map<number, LockEdge>();
    for (const r of await s.query(LEVEL_SQL, [ids])) {
      const waiter = num(r.waiter);
      if (waiter === undefined) continue;
      let e = out.get(waiter);
      if (e === undefined) {
        e = { holders: [] };
        const want = lockText(str(r.want_mode), str(r.want_type), str(r.want_rel), str(r.tuple_rel));
        const ev = str(r.wait_event_type);
        if (want !== undefined) e.waitingFor = want;
        else if (ev === 'Lock') e.waitingFor = `Lock/${str(r.wait_event) ?? '?'}`;
        out.set(waiter, e);
      }
      if (num(r.holder) !== undefined) e.holders.push(holderOf(r));
    }
    return out;
  },
};
