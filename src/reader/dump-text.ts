// `superv dumps` and `superv dumps show` on a terminal: one line per dump, and one dump read top-down the
// way an on-call engineer asks: what happened, to which request, in which line of our code, with which
// values, waiting on what. Every string from the dump goes through clean(): it is user-controlled.

import { normalizeRoute } from '../dump/route';
import type { Dump, Frame, RequestInfo } from '../dump/types';
import {
  blockedIn, captureFacts, crashFacts, dbWhere, dumpRoute, frameWhere, headline, isInternal, lockFacts, memoryFacts, moreLine, procFacts,
  sourceExcerpt, stateBlocks, streamNote, topAppFrame, type LockFactKind, type SourceReader, type StateBlock,
} from './facts';
import { clean, columns, duration, localTime, valueWithSize, type Style } from './format';
import type { LoadedDump } from './load';
import { traceTemplate, tracePhrase, traceUrlOf } from './trace';

/** One dump as `superv dumps --json` lists it. */
export interface DumpSummary {
  file: string;
  time: string;
  reason: string;
  action: string;
  supervisor: string;
  /** The host the dump was written on. */
  host: string;
  worker: number;
  pid: number;
  method?: string;
  url?: string;
  route?: string;
  /** The dump's request's trace and span ids (W3C traceparent, or the app's OpenTelemetry span). */
  traceId?: string;
  spanId?: string;
  /** The top app frame (`spinBusyLoop app.js:9`), or why there is none. */
  where: string;
  summary: string;
  /** Reason `crash`: how the worker died, and the signature identical crashes share. */
  kind?: string;
  fingerprint?: string;
  /** Deaths this dump stands for: itself plus identical ones counted but not written before it. */
  deaths?: number;
}

export function summarizeDump(d: LoadedDump): DumpSummary {
  const x = d.dump;
  return {
    file: d.path, time: x.time, reason: x.reason, action: x.action, supervisor: x.supervisor.name, host: x.supervisor.host, worker: x.worker.id,
    pid: x.worker.pid, method: x.request?.method, url: x.request?.url, route: dumpRoute(x),
    traceId: x.request?.trace?.traceId, spanId: x.request?.trace?.spanId, where: blockedIn(x), summary: x.summary,
    kind: x.crash?.kind, fingerprint: x.crash?.fingerprint, deaths: x.crash ? 1 + (x.crash.suppressed ?? 0) : undefined,
  };
}

function reasonCell(d: Dump, s: Style): string {
  const text = d.action === 'killed' ? `${d.reason}/killed` : d.crash ? `crash/${d.crash.kind}` : d.reason;
  return d.action === 'killed' || d.crash ? s.red(text) : d.reason === 'slow' ? s.yellow(text) : text;
}

/**
 * The dump list: oldest first, so the newest sits just above the prompt. HOST tells the machines of a merged
 * list apart; TRACE (the dump's request's trace id) appears once any dump has one.
 */
export function renderDumpList(ds: LoadedDump[], s: Style): string {
  const traced = ds.some((d) => d.dump.request?.trace);
  const head = ['TIME', 'HOST', 'REASON', 'ROUTE', 'WORKER', ...(traced ? ['TRACE'] : []), 'WHERE', 'FILE'];
  const rows = [head.map((h) => s.dim(h))];
  for (const d of ds) {
    const x = d.dump;
    const route = x.request ? `${clean(x.request.method, 10)} ${clean(dumpRoute(x), 60)}` : '-';
    const where = blockedIn(x);
    const cell = topAppFrame(x) ? s.bold(clean(where, 80)) : dbWhere(x) !== undefined ? s.bold(clean(where, 200)) : s.dim(clean(where, 80));
    const trace = traced ? [x.request?.trace?.traceId ?? '-'] : [];
    rows.push([localTime(x.time), clean(x.supervisor.host || '?', 40), reasonCell(x, s), route, `w${x.worker.id} ${x.worker.pid}`, ...trace, cell,
      s.dim(clean(d.name, 120))]);
  }
  return columns(rows);
}

export interface TextOptions {
  style: Style;
  read: SourceReader;
  /** Locals of node internals too (hidden by default: dozens of module constants). */
  allLocals?: boolean;
  /** A trace_url template that wins over the one the dump was written with. */
  traceUrl?: string;
}

/** Lines of a crash's stderr tail shown (the dump keeps up to 8 KiB). */
const STDERR_LINES = 30;

const section = (s: Style, title: string) => `\n${s.bold(s.cyan(title))}`;

function requestLines(r: RequestInfo, s: Style, template: string | undefined): string[] {
  const out = [`  ${s.bold(`${clean(r.method, 10)} ${clean(r.url, 500)}`)}`];
  const route = clean(normalizeRoute(r.url), 120);
  const stream = streamNote(r);
  out.push(`  route ${route} · running ${duration(r.ageMs)}${r.startedAt ? ` since ${localTime(r.startedAt)}` : ''}${stream ? ` · ${stream}` : ''}${r.remote ? ` · from ${clean(r.remote, 80)}` : ''}`);
  if (r.trace) {
    const link = traceUrlOf(r.trace, template);
    out.push(`  ${tracePhrase(r.trace)}${link ? ` · ${s.cyan(clean(link, 500))}` : ''}`);
  }
  for (const [k, v] of Object.entries(r.headers ?? {})) out.push(s.dim(`  ${clean(k, 60)}: ${clean(v, 200)}`));
  return out;
}

function frameCells(f: Frame, app: string, s: Style, mark: boolean): string[] {
  const where = clean(frameWhere(f, app), 160);
  const fn = clean(f.function || '(anonymous)', 80);
  if (f.app) return [mark ? s.red('▶') : s.magenta('•'), s.bold(fn), where];
  return isInternal(f) ? ['', s.dim(fn), s.dim(where)] : ['', fn, s.dim(where)];
}

function localsLines(f: Frame, s: Style): string[] {
  const entries = Object.entries(f.locals ?? {});
  const missing = (f.localsMissing ?? []).map((m) => s.dim(`    not read: ${clean(m, 200)}`));
  if (entries.length === 0) return [s.dim('    (no locals)'), ...missing];
  const rows = entries.map(([name, v]) => {
    const props = v.props ? ' ' + s.dim(`{ ${Object.entries(v.props).map(([k, p]) => `${clean(k, 40)}: ${clean(p, 60)}`).join(', ')} }`) : '';
    return ['', clean(name, 40), s.dim(clean(v.type, 20)), clean(valueWithSize(v), 160) + props];
  });
  return [...columns(rows).trimEnd().split('\n'), ...missing];
}

function stateLines(blocks: StateBlock[], s: Style): string[] {
  const out: string[] = [];
  for (const b of blocks) {
    out.push(`  ${s.bold(clean(b.title, 80))}`);
    if (b.kind === 'fields') {
      out.push(...columns(b.fields.map(([k, v]) => ['', clean(k, 40), clean(v, 300)])).trimEnd().split('\n'));
    } else {
      // One line per row: a terminal is too narrow for a SQL column; the lead columns (age, SQL) come first.
      for (const r of b.rows) {
        out.push(`    ${r.map((c, i) => (i === 0 ? s.bold(clean(c, 40)) : b.columns[i] === 'other' ? s.dim(clean(c, 200)) : clean(c, 300))).filter((c) => c !== '').join('  ')}`);
      }
      out.push(s.dim(`    (${b.rows.length} row(s)${b.more ? `, ${b.more} more not shown` : ''}; columns ${b.columns.map((c) => clean(c, 30)).join(', ')})`));
    }
  }
  return out;
}

/** What the database said about our waiting statements, and whom a holder's dump holds up. */
function lockLines(x: Dump, s: Style): string[] {
  const facts = lockFacts(x);
  if (facts.length === 0) return [];
  const style: Record<LockFactKind, (t: string) => string> = {
    waiting: s.bold, blocked: s.red, holder: s.dim, blocks: (t) => t, server: s.dim, missing: s.yellow,
  };
  return [section(s, 'Locks (asked the database at dump time)'), ...facts.map(([k, t]) => `  ${style[k](clean(t, k === 'blocked' ? 2000 : 600))}`)];
}

/** `worker 3 (index 0, background, booting), pid 42, up 2 s`: a background worker serves nothing, so no `served`. */
export function workerLine(w: Dump['worker']): string {
  const tags = [w.index !== undefined ? `index ${w.index}` : '', w.kind === 'background' ? 'background' : '', w.booting ? 'booting' : ''].filter(Boolean);
  return `worker ${w.id}${tags.length ? ` (${tags.join(', ')})` : ''}, pid ${w.pid}, up ${duration(w.uptimeMs)}` +
    (w.kind === 'background' ? '' : `, served ${w.served}`);
}

/** One dump, top-down, for a human on a terminal. */
export function renderDumpText(d: LoadedDump, o: TextOptions): string {
  const x = d.dump;
  const s = o.style;
  const app = x.supervisor.app;
  const out: string[] = [];
  const color = x.action === 'killed' || x.crash ? s.red : x.reason === 'slow' ? s.yellow : (t: string) => t;
  out.push(s.bold(color(clean(headline(x), 200))));
  out.push(`${localTime(x.time)}  ${s.bold(clean(x.supervisor.name, 64))} (master ${x.supervisor.pid} on ${clean(x.supervisor.host, 64)})` +
    ` · ${workerLine(x.worker)}`);
  out.push(clean(x.summary, 600));

  const crash = crashFacts(x);
  if (crash.length) out.push(section(s, 'Crash'), ...columns(crash.map(([k, v]) => ['', k, clean(v, 600)])).trimEnd().split('\n'));
  const template = traceTemplate(x, o.traceUrl);
  if (x.request) out.push(section(s, 'Request'), ...requestLines(x.request, s, template));

  const top = topAppFrame(x);
  out.push(section(s, 'Where'));
  out.push(`  ${top ? `${s.bold(clean(top.function || '(anonymous)', 80))} at ${clean(frameWhere(top, app), 160)}` : clean(blockedIn(x), 600)}`);
  out.push(s.dim(`  capture ${clean(captureFacts(x), 300)}`));
  const src = top && sourceExcerpt(top, o.read, x.time);
  if (src) {
    out.push(s.dim(`  ${clean(src.file, 200)}`));
    const width = String(src.lines[src.lines.length - 1]!.n).length;
    for (const l of src.lines) {
      const n = String(l.n).padStart(width);
      out.push(l.n === src.line ? s.bold(`${s.red('>')} ${n} │ ${clean(l.text, 200)}`) : s.dim(`  ${n} │ `) + clean(l.text, 200));
    }
    if (src.note) out.push(s.yellow(`  (${src.note})`));
  }

  out.push(...lockLines(x, s));

  const stack = x.capture?.stack ?? [];
  if (stack.length) {
    out.push(section(s, `Stack (${stack.length} frames; app frames marked)`));
    out.push(...columns(stack.map((f) => ['', ...frameCells(f, app, s, f === top)])).trimEnd().split('\n'));
    const withLocals = stack.filter((f) => f.locals && (o.allLocals || !isInternal(f)));
    for (const f of withLocals) {
      out.push(section(s, `Locals of ${clean(f.function || '(anonymous)', 80)} (${clean(frameWhere(f, app), 120)})`), ...localsLines(f, s));
    }
    const hidden = stack.filter((f) => f.locals && !o.allLocals && isInternal(f)).length;
    if (hidden) out.push(s.dim(`\n  locals of ${hidden} node-internal frame(s) hidden (--all shows them)`));
  }

  const blocks = stateBlocks(x.capture?.state);
  if (blocks.length) out.push(section(s, 'State (DB, outbound calls, app providers)'), ...stateLines(blocks, s));

  const cpu = x.cpu;
  if (cpu && Array.isArray(cpu.functions) && cpu.functions.length) {
    out.push(section(s, `Hottest functions (${duration(cpu.cpuMs)} of CPU sampled over the last ${duration(cpu.windowMs)})`));
    out.push(...columns(cpu.functions.map((f) => ['', s.bold(clean(f.name || '(anonymous)', 60)), clean(`${f.file}:${f.line}`, 120),
      `self ${duration(f.selfMs)}`, `total ${duration(f.totalMs)}`])).trimEnd().split('\n'));
  }

  const inflight = x.capture?.inflight ?? [];
  const more = moreLine(x.capture);
  if (inflight.length || more) {
    const total = inflight.length + (x.capture?.inflightMore?.count ?? 0);
    out.push(section(s, `In flight (${total.toLocaleString('en-US')}${more ? `, the oldest ${inflight.length} listed` : ''})`));
    out.push(...columns(inflight.map((r) => ['', `#${r.id}`, duration(r.ageMs), clean(r.method, 10), clean(r.url, 200),
      r.trace ? `trace ${r.trace.traceId}` : '', s.dim(r.lastWriteMs === undefined ? '' : `last write ${duration(r.lastWriteMs)} ago`)]), new Set([2])).trimEnd().split('\n'));
    if (more) out.push(`  ${clean(more, 600)}`);
  }

  const mem = memoryFacts(x.capture);
  if (mem.length) out.push(section(s, 'Memory'), ...columns(mem.map(([k, v]) => ['', k, clean(v, 200)])).trimEnd().split('\n'));
  const proc = procFacts(x.master);
  if (proc.length) out.push(section(s, 'Master view (/proc)'), ...columns(proc.map(([k, v]) => ['', k, clean(v, 300)])).trimEnd().split('\n'));

  const tail = x.crash?.stderrTail?.trimEnd();
  if (tail) {
    const lines = tail.split('\n');
    out.push(section(s, `Last stderr lines (${Math.min(lines.length, STDERR_LINES)} of the tail)`));
    for (const l of lines.slice(-STDERR_LINES)) out.push(s.dim(`  ${clean(l, 300)}`));
  }

  out.push('', s.dim(`file ${clean(d.path, 300)}`));
  return out.join('\n') + '\n';
}
