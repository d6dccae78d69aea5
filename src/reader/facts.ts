// What a dump means, in one place, for every viewer (`superv dumps`, `show`, `report`, the HTML page):
// which frame was running, where it is in the app's tree, what the process sat in, what the providers'
// state says. Plain strings out; each renderer escapes for its own medium.

import { readFileSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, relative } from 'node:path';
import { redactText } from '../dump/redact';
import { normalizeRoute } from '../dump/route';
import { chainHead, type LockHolder, type LockWait } from '../dump/locks';
import type { Capture, Dump, Frame, MasterView, RequestInfo } from '../dump/types';
import { urlToPath } from '../util/url-path';
import { awaitingOf } from './awaiting';
import { bytes, duration } from './format';

export function topAppFrame(d: Dump): Frame | undefined {
  return d.capture?.stack?.find((f) => f.app);
}

/** Node internals (`node:events`, `internal/…`): dimmed, and their locals hidden by default. */
export function isInternal(f: Frame): boolean {
  return f.file.startsWith('node:') || f.file.startsWith('internal/') || f.file === '';
}

/** Where the frame is in the app's own sources: the source-mapped location when the app ships maps. */
export function frameSource(f: Frame): { file: string; line: number; column: number; fn: string } {
  const o = f.original;
  return o && o.file
    ? { file: urlToPath(o.file), line: o.line, column: o.column, fn: o.name || f.function }
    : { file: urlToPath(f.file), line: f.line, column: f.column, fn: f.function };
}

/** A path as the app's authors write it: relative to the app's directory when inside it. */
export function shortPath(file: string, appFile: string): string {
  if (!isAbsolute(file) || !isAbsolute(appFile)) return file;
  const rel = relative(dirname(appFile), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

/** `src/rank.js:42:7`. */
export function frameWhere(f: Frame, appFile: string): string {
  const s = frameSource(f);
  return `${shortPath(s.file, appFile)}:${s.line}${s.column ? `:${s.column}` : ''}`;
}

/** `rankUsers src/rank.js:42`: what the lists and the report show for "where it was". */
export function frameLabel(f: Frame, appFile: string): string {
  const s = frameSource(f);
  return `${s.fn || '(anonymous)'} ${shortPath(s.file, appFile)}:${s.line}`;
}

/** The normalized route of the dump's request (`/users/:id`), when the dump names a request. */
export function dumpRoute(d: Dump): string | undefined {
  return d.request ? normalizeRoute(d.request.url) : undefined;
}

// ─── database waits ─────────────────────────────────────────────────────────

/** The lock waits the database named at dump time, the dump's own request's first. */
export function lockWaits(d: Dump): LockWait[] {
  const waits = d.capture?.locks?.waits ?? [];
  const id = d.request?.id;
  return id === undefined ? waits : [...waits.filter((w) => w.requestId === id), ...waits.filter((w) => w.requestId !== id)];
}

/** The holder, grouped the way an operator fixes it: our route, or the outside application / client / user. */
export function holderGroup(h: LockHolder | undefined): { label: string; ours: boolean } {
  if (h === undefined) return { label: 'holder not identified', ours: false };
  const o = h.ours;
  if (o !== undefined) return { label: o.method !== undefined && o.url !== undefined ? `${o.method} ${normalizeRoute(o.url)}` : 'a request of ours (route unknown)', ours: true };
  if (h.application) return { label: `application ${h.application}${h.user ? ` (user ${h.user})` : ''}`, ours: false };
  const host = h.client?.replace(/:\d+$/, '');
  if (host) return { label: `client ${host}${h.user ? ` (user ${h.user})` : ''}`, ours: false };
  return { label: h.user ? `user ${h.user}` : 'a session outside superv', ours: false };
}

type SiteLike = { function: string; file: string; line: number };

/** `waitForRow app.js:57`: the app frame that issued a statement. */
export function siteText(site: SiteLike | undefined, appFile: string): string | undefined {
  return site === undefined ? undefined : `${site.function || '(anonymous)'} ${shortPath(urlToPath(site.file), appFile)}:${site.line}`;
}

interface PendingSql { sql?: string; state?: string; request?: { id?: number }; site?: SiteLike }

/** The statement the dump's request was waiting on (the `db` provider's view), when there is one. */
export function pendingSqlOf(d: Dump): PendingSql | undefined {
  const db = d.capture?.state?.db as { connections?: Array<{ pending?: PendingSql[] }> } | undefined;
  const all = (db?.connections ?? []).flatMap((c) => c.pending ?? []).filter((p) => p.state === 'running');
  const id = d.request?.id;
  return all.find((p) => id !== undefined && p.request?.id === id) ?? (id === undefined ? all[0] : undefined);
}

interface OpenTx { state?: string; ageMs?: number; request?: { id?: number }; openedAt?: SiteLike; statements?: Array<{ sql?: string }> }

/** The transaction the dump's request holds open (the `db` provider's view), when there is one. */
function openTransactionOf(d: Dump): OpenTx | undefined {
  const id = d.request?.id;
  if (id === undefined) return undefined;
  const db = d.capture?.state?.db as { connections?: Array<{ transaction?: OpenTx }> } | undefined;
  return (db?.connections ?? []).map((c) => c.transaction).find((t) => t?.request?.id === id);
}

function oneLineSql(sql: string, max: number): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * What the request waited on in the database, in one line: the app frame that issued the statement and the
 * database's sentence (`waitForRow app.js:57 blocked by 4321 (…)`), or the statement itself when no lock
 * holds it up; a holder's dump says whom it holds up. Undefined when the dump shows no database wait.
 */
export function dbWhere(d: Dump, stable = false): string | undefined {
  const app = d.supervisor.app;
  const w = lockWaits(d)[0];
  if (w !== undefined) {
    const site = siteText(w.site, app);
    // `stable`: the same for every dump of the same wait (no ids, no ages), for counting in the report.
    const what = stable ? `blocked by ${w.chain.length === 0 ? 'an unidentified holder' : holderGroup(chainHead(w)).label}` : w.sentence;
    return `${site === undefined ? '' : `${site} `}${what}`;
  }
  const blocks = d.blocks ?? [];
  if (stable && blocks.length > 0) return 'holds a lock others wait on';
  if (blocks.length > 0) {
    const b = blocks[0]!;
    return `holds a lock that ${blocks.length === 1 ? '1 request waits' : `${blocks.length} requests wait`} on (${b.method ?? ''} ${b.url ? normalizeRoute(b.url) : ''} on worker ${b.workerPid})`;
  }
  const p = pendingSqlOf(d);
  const missing = d.capture?.locks?.missing?.[0];
  // A statement no lock holds up is said by awaitingOf (blockedIn), like an outbound call; here only when the
  // look-up could not tell, which the reader must see.
  if (p !== undefined && missing !== undefined) {
    const site = siteText(p.site, app);
    return `${site === undefined ? '' : `${site} `}awaiting SQL \`${oneLineSql(p.sql ?? '', 80)}\` (no lock look-up: ${missing})`;
  }
  if (p !== undefined) return undefined;
  const t = openTransactionOf(d);
  if (t !== undefined) {
    const site = siteText(t.openedAt, app);
    const last = t.statements?.[t.statements.length - 1]?.sql;
    if (stable) return `${site === undefined ? '' : `${site} `}${t.state ?? 'in a transaction'}`;
    return `${site === undefined ? '' : `${site} `}${t.state ?? 'in a transaction'} for ${duration(t.ageMs)}${last ? `, last \`${oneLineSql(last, 80)}\`` : ''}`;
  }
  return undefined;
}

export type LockFactKind = 'waiting' | 'blocked' | 'holder' | 'blocks' | 'server' | 'missing';

/** The lock look-up's findings as lines for the dump views: each waiting statement, its sentence, the chain's details. */
export function lockFacts(d: Dump): Array<[LockFactKind, string]> {
  const locks = d.capture?.locks;
  const blocks = d.blocks ?? [];
  if (locks === undefined && blocks.length === 0) return [];
  const out: Array<[LockFactKind, string]> = [];
  for (const w of lockWaits(d)) {
    const site = siteText(w.site, d.supervisor.app);
    out.push(['waiting', `${w.requestId !== undefined ? `request ${w.requestId}: ` : ''}${oneLineSql(w.sql ?? '?', 300)}${site ? `, issued at ${site}` : ''}` +
      `, waited ${duration(w.waitedMs)}${w.waitingFor ? ` for ${w.waitingFor}` : ''}`]);
    out.push(['blocked', w.sentence]);
    for (const h of w.chain) {
      if (h.lock) out.push(['holder', `${h.serverId} holds ${h.lock}${h.blocking ? `; ${h.blocking} session(s) wait on it` : ''}`]);
      for (const st of h.ours?.statements ?? []) out.push(['holder', `${h.serverId} ran: ${oneLineSql(st, 300)}`]);
      if (h.ours?.dump) out.push(['holder', `${h.serverId}'s dump: ${h.ours.dump}`]);
    }
  }
  for (const b of blocks) {
    out.push(['blocks', `holds up worker ${b.workerPid} ${`${b.method ?? ''} ${b.url ?? ''}`.trim()}${b.requestId !== undefined ? ` (request ${b.requestId})` : ''}` +
      `, waiting ${duration(b.waitedMs)} on ${oneLineSql(b.sql ?? '?', 300)} (session ${b.holderServerId} holds the lock)`]);
  }
  if (locks?.server) out.push(['server', `${locks.server}, asked in ${duration(locks.elapsedMs)}`]);
  for (const m of locks?.missing ?? []) out.push(['missing', `look-up incomplete: ${m}`]);
  if (locks !== undefined && locks.waits.length === 0 && (locks.missing ?? []).length === 0) out.push(['server', 'no statement waited on a lock']);
  return out;
}

/**
 * Where the worker was, in a few words: the top app frame; else, when it waited on the database, what it
 * waited for (dbWhere); else why there is none (the loop was free and the request waited on I/O, or the
 * main thread sat in native code and the master's /proc view says where). `stable` leaves out what differs
 * between dumps of the same place (ids, ages), for the report's counts.
 */
export function blockedIn(d: Dump, stable = false): string {
  const top = topAppFrame(d);
  if (top) return frameLabel(top, d.supervisor.app);
  // A dead worker's capture is its last words, not a view of a loop: say how it died instead.
  if (d.crash) return `(${d.crash.kind}${d.crash.signal ? ` ${d.crash.signal}` : d.crash.exitCode !== null ? ` code ${d.crash.exitCode}` : ''})`;
  const db = dbWhere(d, stable);
  if (db !== undefined) return db;
  const c = d.capture;
  if (c && !c.loop.blocked && (c.stack?.length ?? 0) === 0) {
    const route = d.request ? `${d.request.method} ${dumpRoute(d) ?? ''}` : undefined;
    const label = (site: { file: string; line: number; function: string }): string => `${site.function} ${shortPath(urlToPath(site.file), d.supervisor.app)}:${site.line}`;
    return awaitingOf(d, label, route) ?? '(awaiting I/O, loop free)';
  }
  const first = c?.stack?.[0];
  if (first) return frameLabel(first, d.supervisor.app);
  const p = d.master.proc;
  const child = p.children?.[0];
  if (child) return `(native: child ${JSON.stringify(child.cmdline.slice(0, 60))})`;
  const sys = p.syscallName ?? p.wchan;
  return sys ? `(native: ${sys})` : '(no stack)';
}

export function headline(d: Dump): string {
  const what: Record<string, string> = {
    timeout: 'event loop blocked past the timeout',
    slow: d.capture?.loop.blocked ? 'slow request, event loop blocked' : 'slow request',
    memory: 'over the memory limit',
    manual: 'manual dump',
    crash: `the worker died (${d.crash?.kind ?? 'unknown'})`,
  };
  const did: Record<Dump['action'], string> = {
    killed: 'worker killed', recycled: 'worker recycled', replaced: 'worker replaced', none: 'worker left running',
  };
  return `${d.reason}: ${what[d.reason] ?? d.reason} — ${did[d.action] ?? d.action}`;
}

// ─── source ─────────────────────────────────────────────────────────────────

export interface SourceFile { text: string; mtimeMs: number }
export type SourceReader = (file: string) => SourceFile | undefined;

export interface SourceExcerpt {
  file: string;
  line: number;
  lines: Array<{ n: number; text: string }>;
  /** Why the reader should doubt it: the file changed after the incident. */
  note?: string;
}

// Only source files, and not huge ones: a dump names the files to read, and a crafted one must not turn
// `superv dumps show` (or a report shared with others) into a reader of arbitrary files.
const SOURCE_EXT = new Set(['.js', '.cjs', '.mjs', '.jsx', '.ts', '.cts', '.mts', '.tsx']);
const MAX_SOURCE_BYTES = 4 * 2 ** 20;

/** Reads source files from this machine, each once. */
export function fsSourceReader(): SourceReader {
  const cache = new Map<string, SourceFile | undefined>();
  return (file) => {
    if (cache.has(file)) return cache.get(file);
    let got: SourceFile | undefined;
    try {
      const st = statSync(file);
      if (st.isFile() && st.size <= MAX_SOURCE_BYTES && SOURCE_EXT.has(extname(file))) got = { text: readFileSync(file, 'utf8'), mtimeMs: st.mtimeMs };
    } catch {
      got = undefined;
    }
    cache.set(file, got);
    return got;
  };
}

/** A few lines around the frame's line, from the source-mapped file when it can be read, else the generated one. */
export function sourceExcerpt(f: Frame, read: SourceReader, dumpTime: string, context = 3): SourceExcerpt | undefined {
  const tries = [frameSource(f), { file: urlToPath(f.file), line: f.line }];
  for (const at of tries) {
    if (!isAbsolute(at.file) || at.line < 1) continue;
    const src = read(at.file);
    if (!src) continue;
    const all = src.text.split('\n');
    if (at.line > all.length) continue;
    const from = Math.max(1, at.line - context);
    const to = Math.min(all.length, at.line + context);
    const lines = [];
    // Redacted like a dump: a report is shared more widely than the source, and a literal next to the
    // running line (`const apiKey = '…'`) is exactly what would travel with it.
    for (let n = from; n <= to; n++) lines.push({ n, text: redactText((all[n - 1] ?? '').replace(/\r$/, '')) });
    const t = Date.parse(dumpTime);
    const note = Number.isFinite(t) && src.mtimeMs > t ? 'the file changed after the dump: these lines may differ from what ran' : undefined;
    return { file: at.file, line: at.line, lines, note };
  }
  return undefined;
}

// ─── providers' state (DB, outbound calls, the app's own) ──────────────────

export type StateBlock =
  | { kind: 'table'; title: string; columns: string[]; rows: string[][]; more: number }
  | { kind: 'fields'; title: string; fields: Array<[string, string]> };

// Columns that say the most, first: how long, then what (the SQL, the outbound request), then the rest.
const LEAD = ['ageMs', 'age', 'durationMs', 'elapsedMs', 'waitingMs', 'state', 'status', 'sql', 'query', 'text', 'method', 'request', 'url', 'host', 'target'];
const MAX_COLUMNS = 8;
const MAX_ROWS = 50;
const MAX_DEPTH = 3;

function plainObject(u: unknown): u is Record<string, unknown> {
  return typeof u === 'object' && u !== null && !Array.isArray(u);
}

function valueText(key: string, v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'number' && /(?:Ms|_ms)$/.test(key)) return duration(v);
  if (typeof v === 'number' && /(?:Bytes|bytes)$/.test(key)) return bytes(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function table(title: string, items: Array<Record<string, unknown>>): StateBlock {
  const seen: string[] = [];
  for (const it of items.slice(0, MAX_ROWS)) for (const k of Object.keys(it)) if (!seen.includes(k)) seen.push(k);
  const ordered = [...LEAD.filter((k) => seen.includes(k)), ...seen.filter((k) => !LEAD.includes(k))];
  const shown = ordered.slice(0, MAX_COLUMNS);
  const rest = ordered.slice(MAX_COLUMNS);
  const columns = rest.length ? [...shown, 'other'] : shown;
  const rows = items.slice(0, MAX_ROWS).map((it) => {
    const cells = shown.map((k) => (k in it ? valueText(k, it[k]) : ''));
    if (rest.length) cells.push(rest.filter((k) => k in it).map((k) => `${k}=${valueText(k, it[k])}`).join(' '));
    return cells;
  });
  return { kind: 'table', title, columns, rows, more: Math.max(0, items.length - MAX_ROWS) };
}

function walk(title: string, v: unknown, depth: number, out: StateBlock[]): void {
  if (Array.isArray(v)) {
    if (v.length === 0) { out.push({ kind: 'fields', title, fields: [['(none)', '']] }); return; }
    if (v.every(plainObject)) { out.push(table(title, v)); return; }
    out.push({ kind: 'fields', title, fields: v.slice(0, MAX_ROWS).map((x, i) => [String(i), valueText('', x)]) });
    return;
  }
  if (!plainObject(v)) { out.push({ kind: 'fields', title, fields: [['', valueText(title, v)]] }); return; }
  const fields: Array<[string, string]> = [];
  const nested: Array<[string, unknown]> = [];
  for (const [k, x] of Object.entries(v)) {
    if (depth < MAX_DEPTH && (Array.isArray(x) || plainObject(x))) nested.push([k, x]);
    else fields.push([k, valueText(k, x)]);
  }
  if (fields.length || !nested.length) out.push({ kind: 'fields', title, fields });
  for (const [k, x] of nested) walk(`${title}.${k}`, x, depth + 1, out);
}

/**
 * The state providers' output as tables and field lists. Its shape is each provider's own, so this is
 * generic: an array of objects becomes a table (age and SQL/request columns first), an object a list of
 * fields, nested ones their own blocks (`db.pool`).
 */
export function stateBlocks(state: Record<string, unknown> | undefined): StateBlock[] {
  const out: StateBlock[] = [];
  for (const [name, v] of Object.entries(state ?? {})) walk(name, v, 1, out);
  return out;
}

// ─── the process, as the worker and the master saw it ──────────────────────

const PROC_STATE: Record<string, string> = {
  R: 'running', S: 'sleeping', D: 'uninterruptible sleep (disk or kernel)', Z: 'zombie', T: 'stopped', t: 'traced', X: 'dead', I: 'idle',
};

function tally(xs: string[]): string {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => (n > 1 ? `${k} ×${n}` : k)).join(', ');
}

/** The master's /proc view as labelled lines (a label may repeat: one line per child or peer). */
export function procFacts(m: MasterView): Array<[string, string]> {
  const p = m.proc;
  const out: Array<[string, string]> = [];
  const head = [p.state ? `${p.state} (${PROC_STATE[p.state] ?? '?'})` : undefined,
    m.cpuPercent !== undefined ? `cpu ${m.cpuPercent}%` : undefined, m.rss !== undefined ? `rss ${bytes(m.rss)}` : undefined];
  if (head.some(Boolean)) out.push(['process', head.filter(Boolean).join(', ')]);
  // `syscall` is /proc's raw line (number and registers); the name, when superv knows it, is what a reader wants.
  const sys = p.syscallName ?? p.syscall?.split(' ')[0];
  if (sys || p.wchan) out.push(['kernel', [sys ? `syscall ${sys}` : '', p.wchan ? `wchan ${p.wchan}` : ''].filter(Boolean).join(', ')]);
  if (p.threads?.length) {
    out.push(['threads', `${p.threads.length}: ${tally(p.threads.map((t) => (t.wchan ? `${t.state} ${t.wchan}` : t.state)))}`]);
  }
  if (p.children) {
    if (p.children.length === 0) out.push(['children', 'none']);
    for (const c of p.children) out.push(['child', `pid ${c.pid} ${JSON.stringify(c.cmdline)}${c.state ? ` ${c.state}` : ''}${c.wchan ? ` ${c.wchan}` : ''}`]);
  }
  for (const t of p.tcp ?? []) {
    const q = t.rxQueue || t.txQueue ? ` (rx ${t.rxQueue}, tx ${t.txQueue} queued)` : '';
    out.push(['tcp', `${t.local} ⇄ ${t.remote} ${t.state}${q}`]);
  }
    if (m.lastHeartbeat) {
    // Negative when a heartbeat landed while the dump was being taken (the loop was free).
    const age = m.lastHeartbeat.ageMs;
    out.push(['last heartbeat', `${age >= 0 ? `${duration(age)} before the dump` : 'during the dump'}, ${m.lastHeartbeat.inflight} request(s) in flight`]);
  }
  if (p.error) out.push(['error', p.error]);
  return out;
}

/** A crash dump's own facts, as labelled lines: how it died, the error and its causes, who called exit. */
export function crashFacts(d: Dump): Array<[string, string]> {
  const c = d.crash;
  if (!c) return [];
  const app = d.supervisor.app;
  const out: Array<[string, string]> = [['kind', c.kind], ['cause', c.cause]];
  out.push(['ended', c.signal ? `signal ${c.signal}` : `exit code ${c.exitCode ?? '?'}`]);
  if (c.error) out.push(['error', `${c.error.type}: ${c.error.message}`]);
  for (const [i, e] of (c.error?.cause ?? []).entries()) {
    const top = e.stack?.find((f) => f.app) ?? e.stack?.[0];
    out.push([i === 0 ? 'caused by' : '…caused by', `${e.type}: ${e.message}${top ? ` at ${frameLabel(top, app)}` : ''}`]);
  }
  if (c.exitCall) {
    const top = c.exitCall.stack.find((f) => f.app) ?? c.exitCall.stack[0];
    out.push([`process.${c.exitCall.fn}()`, `${c.exitCall.code !== undefined ? `code ${c.exitCall.code}, ` : ''}called at ${top ? frameLabel(top, app) : '(no stack)'}`]);
  }
  const basis = { context: 'the failing code ran for it', 'only-inflight': 'the only request in flight', 'oldest-inflight': 'the oldest in flight (a guess)' };
  if (c.requestBasis && d.request) out.push(['request', `${d.request.method} ${d.request.url} — ${basis[c.requestBasis]}`]);
  out.push(['collateral', `${c.collateral} request(s) in flight died with the worker`]);
  out.push(['signature', c.fingerprint]);
  if (c.occurrences !== undefined) {
    out.push(['seen', `${c.occurrences} time(s) since the master started${c.suppressed ? `; ${c.suppressed} identical crash(es) before this one were counted, not written` : ''}`]);
  }
  if (c.memoryDump) out.push(['memory dump', `${c.memoryDump} (taken when the heap neared its limit)`]);
  const old = c.heapSpaces?.old_space;
  // Node's report names them used/capacity (its heapSpaces, not v8.getHeapSpaceStatistics()).
  if (old?.used !== undefined) out.push(['old space', `${bytes(old.used)} used of ${bytes(old.capacity ?? 0)} at the failed allocation`]);
  return out;
}

export function memoryFacts(c: Capture | undefined): Array<[string, string]> {
  if (!c) return [];
  const out: Array<[string, string]> = [];
  const h = c.heap;
  if (h?.used_heap_size !== undefined) {
    out.push(['heap', `${bytes(h.used_heap_size)} used of ${bytes(h.total_heap_size)} (limit ${bytes(h.heap_size_limit)})`]);
  }
  const m = c.memory;
  if (m) out.push(['memory', `rss ${bytes(m.rss)}, external ${bytes(m.external)}, array buffers ${bytes(m.arrayBuffers)}`]);
  const e = c.eventLoopDelay;
  if (e) out.push(['loop delay', `mean ${duration(e.meanMs)}, p99 ${duration(e.p99Ms)}, max ${duration(e.maxMs)}`]);
  return out;
}

export function captureFacts(d: Dump): string {
  const c = d.capture;
  if (d.crash) {
    if (!c) return 'nothing from inside the worker: it ran no JS before it died';
    return c.complete ? 'recorded by the worker as it died' : c.incomplete ?? 'partial';
  }
  if (!c) return `no capture from inside the worker${d.captureError ? `: ${d.captureError}` : ''}`;
  const loop = c.loop.blocked ? `event loop blocked for ${duration(c.loop.blockedForMs)}` : 'event loop free';
  return c.complete
    ? `complete in ${duration(c.elapsedMs)}; ${loop}`
    : `incomplete after ${duration(c.elapsedMs)}${c.incomplete ? `: ${c.incomplete}` : ''}; ${loop}`;
}

/** `4,812 more: /poll 4,800, / 12` — the in-flight requests a dump counts instead of listing. */
export function moreLine(c: Capture | undefined): string | undefined {
  const m = c?.inflightMore;
  if (!m || m.count <= 0) return undefined;
  const n = (x: number) => x.toLocaleString('en-US');
  const routes = m.byRoute.map((r) => `${r.route} ${n(r.count)}`).join(', ');
  return `${n(m.count)} more${routes ? `: ${routes}` : ''}`;
}

/** How a streaming request shows its last write: `streaming, last write 200 ms ago`. */
export function streamNote(r: RequestInfo): string | undefined {
  return r.lastWriteMs === undefined ? undefined : `streaming, last write ${duration(r.lastWriteMs)} ago`;
}

