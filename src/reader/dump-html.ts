// One dump as an HTML fragment (a <details> the report page links to). Every string from a dump is
// user-controlled (URLs, headers, locals, SQL): it reaches the page only through h(), which escapes it
// after clean() made its control characters visible. Nothing here builds markup from dump data otherwise.

import { normalizeRoute } from '../dump/route';
import type { Frame, RequestInfo } from '../dump/types';
import {
  blockedIn, captureFacts, crashFacts, dumpRoute, frameWhere, headline, isInternal, lockFacts, memoryFacts, moreLine, procFacts, sourceExcerpt,
  stateBlocks, topAppFrame, type LockFactKind, type SourceReader, type StateBlock,
} from './facts';
import { clean, duration, localTime, valueWithSize } from './format';
import type { LoadedDump } from './load';
import { workerLine } from './dump-text';
import { traceTemplate, traceUrlOf } from './trace';

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes for text and for double- or single-quoted attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** A dump string, made safe for HTML: controls visible, length bounded, markup escaped. */
export function h(u: unknown, max = 300): string {
  return esc(clean(u, max));
}

function kv(rows: Array<[string, string]>, max = 400): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><th>${h(k, 60)}</th><td>${h(v, max)}</td></tr>`).join('')}</table>`;
}

/** A trace id as text, or as a link when a template applies. The id is hex (load.ts) and escaped all the same. */
function traceHtml(r: RequestInfo, template: string | undefined): string {
  if (!r.trace) return '';
  const link = traceUrlOf(r.trace, template);
  const id = `<code class="trace">${h(r.trace.traceId, 40)}</code>`;
  return link ? `<a class="trace" href="${esc(link)}" rel="noreferrer noopener" target="_blank">${id}</a>` : id;
}

function requestHtml(r: RequestInfo, template: string | undefined): string {
  const trace = r.trace
    ? `<p>${traceHtml(r, template)} <span class="dim">span ${h(r.trace.spanId, 20)} (${r.trace.from === 'otel' ? 'OpenTelemetry span' : 'traceparent'})</span></p>`
    : '';
  const facts: Array<[string, string]> = [
    ['route', normalizeRoute(r.url)], ['running', duration(r.ageMs)],
    ...(r.startedAt ? [['since', localTime(r.startedAt)] as [string, string]] : []),
    ...(r.remote ? [['from', r.remote] as [string, string]] : []),
    ...Object.entries(r.headers ?? {}).map(([k, v]): [string, string] => [k, v]),
  ];
  return `<h4>Request</h4><p><code class="req">${h(r.method, 10)} ${h(r.url, 1000)}</code></p>${trace}${kv(facts)}`;
}

function localsHtml(f: Frame, app: string): string {
  const rows = Object.entries(f.locals ?? {}).map(([name, v]) => {
    const props = v.props ? `<span class="dim"> { ${Object.entries(v.props).map(([k, p]) => `${h(k, 40)}: ${h(p, 60)}`).join(', ')} }</span>` : '';
    return `<tr><th>${h(name, 60)}</th><td class="dim">${h(v.type, 20)}</td><td>${h(valueWithSize(v), 300)}${props}</td></tr>`;
  });
  const missing = (f.localsMissing ?? []).map((m) => `<p class="dim">not read: ${h(m, 200)}</p>`).join('');
  return `<h4>Locals of <code>${h(f.function || '(anonymous)', 80)}</code> <span class="dim">${h(frameWhere(f, app), 160)}</span></h4>` +
    (rows.length ? `<table class="kv">${rows.join('')}</table>` : '<p class="dim">(no locals)</p>') + missing;
}

function stateHtml(blocks: StateBlock[]): string {
  return blocks.map((b) => {
    if (b.kind === 'fields') return `<h5>${h(b.title, 80)}</h5>${kv(b.fields, 1000)}`;
    const head = `<tr>${b.columns.map((c) => `<th>${h(c, 40)}</th>`).join('')}</tr>`;
    const body = b.rows.map((r) => `<tr>${r.map((c) => `<td>${h(c, 1000)}</td>`).join('')}</tr>`).join('');
    return `<h5>${h(b.title, 80)}</h5><table class="grid">${head}${body}</table>${b.more ? `<p class="dim">${b.more} more not shown</p>` : ''}`;
  }).join('');
}

export interface DumpHtmlOptions {
  id: string;
  read: SourceReader;
  /** Locals of node internals too. */
  allLocals?: boolean;
  /** A trace_url template that wins over the one the dump was written with. */
  traceUrl?: string;
}

export function dumpClass(d: LoadedDump): string {
  return d.dump.action === 'killed' || d.dump.crash ? 'killed' : d.dump.reason === 'slow' ? 'slow' : 'other';
}

/** The one line that names a dump: in its <summary>, and in the lists that link to it. */
export function dumpTitleHtml(d: LoadedDump): string {
  const x = d.dump;
  const route = x.request ? `${h(x.request.method, 10)} ${h(dumpRoute(x), 120)}` : '-';
  return `<span class="t">${h(localTime(x.time), 40)}</span> <span class="badge ${dumpClass(d)}">${h(x.reason, 20)}${x.action === 'killed' ? '/killed' : x.crash ? `/${h(x.crash.kind, 30)}` : ''}</span> ` +
    `<code>${route}</code> <b>${h(blockedIn(x), 120)}</b> <span class="dim">${h(x.supervisor.host || '?', 40)} w${x.worker.id} pid ${x.worker.pid}</span>` +
    (x.request?.trace ? ` <span class="dim">trace ${h(x.request.trace.traceId, 40)}</span>` : '');
}

export function renderDumpHtml(d: LoadedDump, o: DumpHtmlOptions): string {
  const x = d.dump;
  const app = x.supervisor.app;
  const parts: string[] = [];
  parts.push(`<p class="headline ${dumpClass(d)}">${h(headline(x), 200)}</p><p>${h(x.summary, 800)}</p>`);
  parts.push(`<p class="dim">${h(x.supervisor.name, 64)} (master ${x.supervisor.pid} on ${h(x.supervisor.host, 64)}) · ${h(workerLine(x.worker), 200)}` +
    ` · capture ${h(captureFacts(x), 300)}</p>`);
  const crash = crashFacts(x);
  if (crash.length) parts.push(`<h4>Crash</h4>${kv(crash)}`);
  const template = traceTemplate(x, o.traceUrl);
  if (x.request) parts.push(requestHtml(x.request, template));

  const top = topAppFrame(x);
  parts.push(`<h4>Where</h4><p>${top ? `<b>${h(top.function || '(anonymous)', 80)}</b> at <code>${h(frameWhere(top, app), 160)}</code>` : h(blockedIn(x), 600)}</p>`);
  const src = top && sourceExcerpt(top, o.read, x.time);
  if (src) {
    // One block per line, no newlines between them: a highlighted block line followed by "\n" would leave a gap.
    const lines = src.lines.map((l) => {
      const text = `<span class="ln">${l.n}</span>${h(l.text, 300)}`;
      return l.n === src.line ? `<mark class="l">${text}</mark>` : `<span class="l">${text}</span>`;
    });
    parts.push(`<p class="dim">${h(src.file, 300)}</p><pre class="src">${lines.join('')}</pre>${src.note ? `<p class="warn">${h(src.note)}</p>` : ''}`);
  }

  const locks = lockFacts(x);
  if (locks.length) {
    const cls: Record<LockFactKind, string> = { waiting: 'b', blocked: 'killed', holder: 'dim', blocks: '', server: 'dim', missing: 'warn' };
    parts.push(`<h4>Locks <span class="dim">(asked the database at dump time)</span></h4>` +
      locks.map(([k, t]) => `<p class="lock ${cls[k]}">${k === 'blocked' ? `<b>${h(t, 2000)}</b>` : h(t, 600)}</p>`).join(''));
  }

  const stack = x.capture?.stack ?? [];
  if (stack.length) {
    const items = stack.map((f) => {
      const cls = f === top ? 'app top' : f.app ? 'app' : isInternal(f) ? 'internal' : 'lib';
      return `<li class="${cls}"><code>${h(f.function || '(anonymous)', 80)}</code> <span>${h(frameWhere(f, app), 200)}</span></li>`;
    });
    parts.push(`<h4>Stack <span class="dim">(${stack.length} frames; app frames bold)</span></h4><ol class="stack">${items.join('')}</ol>`);
    for (const f of stack) if (f.locals && (o.allLocals || !isInternal(f))) parts.push(localsHtml(f, app));
  }
  const blocks = stateBlocks(x.capture?.state);
  if (blocks.length) parts.push(`<h4>State <span class="dim">(DB, outbound calls, app providers)</span></h4>${stateHtml(blocks)}`);
  const inflight = x.capture?.inflight ?? [];
  const more = moreLine(x.capture);
  if (inflight.length || more) {
    const total = inflight.length + (x.capture?.inflightMore?.count ?? 0);
    const rows = inflight.map((r) => `<tr><td>#${r.id}</td><td>${h(duration(r.ageMs))}</td><td>${h(r.method, 10)}</td><td>${h(r.url, 500)}</td>` +
      `<td>${traceHtml(r, template)}</td>` +
      `<td class="dim">${r.lastWriteMs === undefined ? '' : h(`last write ${duration(r.lastWriteMs)} ago`)}</td></tr>`);
    parts.push(`<h4>In flight (${total.toLocaleString('en-US')}${more ? `, the oldest ${inflight.length} listed` : ''})</h4>` +
      `<table class="grid">${rows.join('')}</table>${more ? `<p class="more">${h(more, 600)}</p>` : ''}`);
  }
  const mem = memoryFacts(x.capture);
  if (mem.length) parts.push(`<h4>Memory</h4>${kv(mem)}`);
  const proc = procFacts(x.master);
  if (proc.length) parts.push(`<h4>Master view (/proc)</h4>${kv(proc)}`);
  const tail = x.crash?.stderrTail?.trimEnd();
  // One escaped line at a time: clean() would turn the newlines into \x0a.
  if (tail) parts.push(`<h4>Last stderr lines</h4><pre class="src">${tail.split('\n').slice(-30).map((l) => `<span class="l">${h(l, 300)}</span>`).join('')}</pre>`);
  parts.push(`<p class="dim file">${h(d.path, 400)}</p>`);
  return `<details class="dump ${dumpClass(d)}" id="${esc(o.id)}"><summary>${dumpTitleHtml(d)}</summary><div class="body">${parts.join('\n')}</div></details>`;
}
