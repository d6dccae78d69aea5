// `superv dumps` and `superv dumps show` on a terminal: one line per dump, and one dump read top-down the
// way an on-call engineer asks: what happened, to which request, in which line of our code, with which
// values, waiting on what. Every string from the dump goes through clean(): it is user-controlled.

import { normalizeRoute } from './route';
import type { Dump, Frame, RequestInfo } from './types';
import {
  blockedIn, captureFacts, dumpRoute, frameWhere, headline, isInternal, memoryFacts, procFacts, sourceExcerpt,
  stateBlocks, topAppFrame, type SourceReader, type StateBlock,
} from './view/facts';
import { clean, columns, duration, localTime, type Style } from './view/format';
import type { LoadedDump } from './view/load';

/** One dump as `superv dumps --json` lists it. */
export interface DumpSummary {
  file: string;
  time: string;
  reason: string;
  action: string;
  supervisor: string;
  worker: number;
  pid: number;
  method?: string;
  url?: string;
  route?: string;
  /** The top app frame (`spinBusyLoop app.js:9`), or why there is none. */
  where: string;
  summary: string;
}

export function summarizeDump(d: LoadedDump): DumpSummary {
  const x = d.dump;
  return {
    file: d.path, time: x.time, reason: x.reason, action: x.action, supervisor: x.supervisor.name, worker: x.worker.id,
    pid: x.worker.pid, method: x.request?.method, url: x.request?.url, route: dumpRoute(x), where: blockedIn(x), summary: x.summary,
  };
}

function reasonCell(d: Dump, s: Style): string {
  const text = d.action === 'killed' ? `${d.reason}/killed` : d.reason;
  return d.action === 'killed' ? s.red(text) : d.reason === 'slow' ? s.yellow(text) : text;
}

/** The dump list: oldest first, so the newest sits just above the prompt. */
export function renderDumpList(ds: LoadedDump[], s: Style): string {
  const rows = [['TIME', 'REASON', 'ROUTE', 'WORKER', 'WHERE', 'FILE'].map((h) => s.dim(h))];
  for (const d of ds) {
    const x = d.dump;
    const route = x.request ? `${clean(x.request.method, 10)} ${clean(dumpRoute(x), 60)}` : '-';
    const where = blockedIn(x);
    rows.push([localTime(x.time), reasonCell(x, s), route, `w${x.worker.id} ${x.worker.pid}`,
      topAppFrame(x) ? s.bold(clean(where, 80)) : s.dim(clean(where, 80)), s.dim(clean(d.name, 120))]);
  }
  return columns(rows);
}

export interface TextOptions {
  style: Style;
  read: SourceReader;
  /** Locals of node internals too (hidden by default: dozens of module constants). */
  allLocals?: boolean;
}

const section = (s: Style, title: string) => `\n${s.bold(s.cyan(title))}`;

function requestLines(r: RequestInfo, s: Style): string[] {
  const out = [`  ${s.bold(`${clean(r.method, 10)} ${clean(r.url, 500)}`)}`];
  const route = clean(normalizeRoute(r.url), 120);
  out.push(`  route ${route} · running ${duration(r.ageMs)}${r.startedAt ? ` since ${localTime(r.startedAt)}` : ''}${r.remote ? ` · from ${clean(r.remote, 80)}` : ''}`);
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
  if (entries.length === 0) return [s.dim('    (no locals)')];
  const rows = entries.map(([name, v]) => {
    const props = v.props ? ' ' + s.dim(`{ ${Object.entries(v.props).map(([k, p]) => `${clean(k, 40)}: ${clean(p, 60)}`).join(', ')} }`) : '';
    return ['', clean(name, 40), s.dim(clean(v.type, 20)), clean(v.value, 160) + props];
  });
  return columns(rows).trimEnd().split('\n');
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

/** One dump, top-down, for a human on a terminal. */
export function renderDumpText(d: LoadedDump, o: TextOptions): string {
  const x = d.dump;
  const s = o.style;
  const app = x.supervisor.app;
  const out: string[] = [];
  const color = x.action === 'killed' ? s.red : x.reason === 'slow' ? s.yellow : (t: string) => t;
  out.push(s.bold(color(clean(headline(x), 200))));
  out.push(`${localTime(x.time)}  ${s.bold(clean(x.supervisor.name, 64))} (master ${x.supervisor.pid} on ${clean(x.supervisor.host, 64)})` +
    ` · worker ${x.worker.id}, pid ${x.worker.pid}, up ${duration(x.worker.uptimeMs)}, served ${x.worker.served}`);
  out.push(clean(x.summary, 600));

  if (x.request) out.push(section(s, 'Request'), ...requestLines(x.request, s));

  const top = topAppFrame(x);
  out.push(section(s, 'Where'));
  out.push(`  ${top ? `${s.bold(clean(top.function || '(anonymous)', 80))} at ${clean(frameWhere(top, app), 160)}` : clean(blockedIn(x), 200)}`);
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

  const inflight = x.capture?.inflight ?? [];
  if (inflight.length) {
    out.push(section(s, `In flight (${inflight.length}${x.capture?.inflightOverflow ? ` + ${x.capture.inflightOverflow} not listed` : ''})`));
    out.push(...columns(inflight.map((r) => ['', `#${r.id}`, duration(r.ageMs), clean(r.method, 10), clean(r.url, 200)]), new Set([2])).trimEnd().split('\n'));
  }

  const mem = memoryFacts(x.capture);
  if (mem.length) out.push(section(s, 'Memory'), ...columns(mem.map(([k, v]) => ['', k, clean(v, 200)])).trimEnd().split('\n'));
  const proc = procFacts(x.master);
  if (proc.length) out.push(section(s, 'Master view (/proc)'), ...columns(proc.map(([k, v]) => ['', k, clean(v, 300)])).trimEnd().split('\n'));

  out.push('', s.dim(`file ${clean(d.path, 300)}`));
  return out.join('\n') + '\n';
}
