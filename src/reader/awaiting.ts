// What a request was awaiting while the loop was free, in a few words, from the `db` and `outbound`
// providers' state in its dump: "loadReport src/report.js:12 awaiting SQL `SELECT pg_sleep(…`". The
// providers' shapes belong to the worker (src/worker/instrument); the reader must not import them, so
// they are read here as plain JSON, field by field, and anything unexpected is simply not used.

import type { Dump } from '../dump/types';

interface Site {
  file: string;
  line: number;
  function: string;
  app: boolean;
}

/** One thing the request waited on: the oldest wins. */
interface Wait {
  ageMs: number;
  site?: Site;
  /** "SQL `SELECT …`", "a pool connection for SQL `…`", "GET https://api.example.com/x". */
  what: string;
}

const SQL_WORDS = 48;

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function list(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.map(obj).filter((x): x is Record<string, unknown> => x !== undefined) : [];
}

function siteOf(v: unknown): Site | undefined {
  const s = obj(v);
  if (s === undefined || typeof s.file !== 'string' || typeof s.line !== 'number') return undefined;
  return { file: s.file, line: s.line, function: typeof s.function === 'string' ? s.function : '(anonymous)', app: s.app !== false };
}

/** The statement's first words, on one line. */
export function sqlHead(sql: string, max = SQL_WORDS): string {
  const s = sql.slice(0, max * 4).replace(/\s+/g, ' ').trim();
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function forRequest(item: Record<string, unknown>, id: number): boolean {
  return obj(item.request)?.id === id;
}

function age(item: Record<string, unknown>): number {
  return typeof item.ageMs === 'number' ? item.ageMs : 0;
}

function dbWaits(state: Record<string, unknown>, id: number): Wait[] {
  const db = obj(state.db);
  if (db === undefined) return [];
  const out: Wait[] = [];
  for (const c of list(db.connections)) {
    for (const p of list(c.pending)) {
      if (!forRequest(p, id) || typeof p.sql !== 'string') continue;
      out.push({ ageMs: age(p), site: siteOf(p.site), what: `SQL \`${sqlHead(p.sql)}\`` });
    }
  }
  for (const pool of list(db.pools)) {
    for (const w of list(pool.waiters)) {
      if (!forRequest(w, id)) continue;
      const sql = typeof w.sql === 'string' && w.sql !== '' ? ` for SQL \`${sqlHead(w.sql)}\`` : '';
      out.push({ ageMs: age(w), site: siteOf(w.site), what: `a ${typeof pool.driver === 'string' ? pool.driver : 'pool'} pool connection${sql}` });
    }
  }
  return out;
}

function outboundWaits(state: Record<string, unknown>, id: number): Wait[] {
  const out: Wait[] = [];
  for (const p of list(obj(state.outbound)?.pending)) {
    if (!forRequest(p, id)) continue;
    const path = typeof p.path === 'string' ? p.path.split('?')[0] ?? '' : '';
    out.push({ ageMs: age(p), site: siteOf(p.site), what: `${String(p.method ?? 'GET')} ${String(p.origin ?? '')}${path}` });
  }
  return out;
}

/**
 * What the dump's request was awaiting, oldest first: the app's function and line, then what it
 * awaited; with no app frame on record it says so and names the route. Undefined when the providers
 * list nothing for the request.
 */
export function awaitingOf(d: Dump, label: (site: Site) => string, route: string | undefined): string | undefined {
  const state = obj(d.capture?.state);
  const id = d.request?.id;
  if (state === undefined || id === undefined) return undefined;
  const waits = [...dbWaits(state, id), ...outboundWaits(state, id)].sort((a, b) => b.ageMs - a.ageMs);
  const w = waits[0];
  if (w === undefined) return undefined;
  const where = w.site?.app === true ? label(w.site) : `(no app frame; ${route ?? 'request'})`;
  return `${where} awaiting ${w.what}`;
}
