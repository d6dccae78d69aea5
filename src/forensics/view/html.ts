// One dump as an HTML fragment (a <details> the report page links to). Every string from a dump is
// user-controlled (URLs, headers, locals, SQL): it reaches the page only through h(), which escapes it
// after clean() made its control characters visible. Nothing here builds markup from dump data otherwise.

import { normalizeRoute } from '../route';
import type { Frame, RequestInfo } from '../types';
import {
  blockedIn, captureFacts, dumpRoute, frameWhere, headline, isInternal, memoryFacts, procFacts, sourceExcerpt,
  stateBlocks, topAppFrame, type SourceReader, type StateBlock,
} from './facts';
import { clean, duration, localTime } from './format';
import type { LoadedDump } from './load';

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

function requestHtml(r: RequestInfo): string {
  const facts: Array<[string, string]> = [
    ['route', normalizeRoute(r.url)], ['running', duration(r.ageMs)],
    ...(r.startedAt ? [['since', localTime(r.startedAt)] as [string, string]] : []),
    ...(r.remote ? [['from', r.remote] as [string, string]] : []),
    ...Object.entries(r.headers ?? {}).map(([k, v]): [string, string] => [k, v]),
  ];
  return `<h4>Request</h4><p><code class="req">${h(r.method, 10)} ${h(r.url, 1000)}</code></p>${kv(facts)}`;
}

function localsHtml(f: Frame, app: string): string {
  const rows = Object.entries(f.locals ?? {}).map(([name, v]) => {
    const props = v.props ? `<span class="dim"> { ${Object.entries(v.props).map(([k, p]) => `${h(k, 40)}: ${h(p, 60)}`).join(', ')} }</span>` : '';
    return `<tr><th>${h(name, 60)}</th><td class="dim">${h(v.type, 20)}</td><td>${h(v.value, 300)}${props}</td></tr>`;
  });
  return `<h4>Locals of <code>${h(f.function || '(anonymous)', 80)}</code> <span class="dim">${h(frameWhere(f, app), 160)}</span></h4>` +
    (rows.length ? `<table class="kv">${rows.join('')}</table>` : '<p class="dim">(no locals)</p>');
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
}

export function dumpClass(d: LoadedDump): string {
  return d.dump.action === 'killed' ? 'killed' : d.dump.reason === 'slow' ? 'slow' : 'other';
}

/** The one line that names a dump: in its <summary>, and in the lists that link to it. */
export function dumpTitleHtml(d: LoadedDump): string {
  const x = d.dump;
  const route = x.request ? `${h(x.request.method, 10)} ${h(dumpRoute(x), 120)}` : '-';
  return `<span class="t">${h(localTime(x.time), 40)}</span> <span class="badge ${dumpClass(d)}">${h(x.reason, 20)}${x.action === 'killed' ? '/killed' : ''}</span> ` +
    `<code>${route}</code> <b>${h(blockedIn(x), 120)}</b> <span class="dim">w${x.worker.id} pid ${x.worker.pid}</span>`;
}

export function renderDumpHtml(d: LoadedDump, o: DumpHtmlOptions): string {
  const x = d.dump;
  const app = x.supervisor.app;
  const parts: string[] = [];
  parts.push(`<p class="headline ${dumpClass(d)}">${h(headline(x), 200)}</p><p>${h(x.summary, 800)}</p>`);
  parts.push(`<p class="dim">${h(x.supervisor.name, 64)} (master ${x.supervisor.pid} on ${h(x.supervisor.host, 64)}) · worker ${x.worker.id}, ` +
    `pid ${x.worker.pid}, up ${h(duration(x.worker.uptimeMs))}, served ${x.worker.served} · capture ${h(captureFacts(x), 300)}</p>`);
  if (x.request) parts.push(requestHtml(x.request));

  const top = topAppFrame(x);
  parts.push(`<h4>Where</h4><p>${top ? `<b>${h(top.function || '(anonymous)', 80)}</b> at <code>${h(frameWhere(top, app), 160)}</code>` : h(blockedIn(x), 200)}</p>`);
  const src = top && sourceExcerpt(top, o.read, x.time);
  if (src) {
    // One block per line, no newlines between them: a highlighted block line followed by "\n" would leave a gap.
    const lines = src.lines.map((l) => {
      const text = `<span class="ln">${l.n}</span>${h(l.text, 300)}`;
      return l.n === src.line ? `<mark class="l">${text}</mark>` : `<span class="l">${text}</span>`;
    });
    parts.push(`<p class="dim">${h(src.file, 300)}</p><pre class="src">${lines.join('')}</pre>${src.note ? `<p class="warn">${h(src.note)}</p>` : ''}`);
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
  if (inflight.length) {
    const rows = inflight.map((r) => `<tr><td>#${r.id}</td><td>${h(duration(r.ageMs))}</td><td>${h(r.method, 10)}</td><td>${h(r.url, 500)}</td></tr>`);
    parts.push(`<h4>In flight (${inflight.length})</h4><table class="grid">${rows.join('')}</table>`);
  }
  const mem = memoryFacts(x.capture);
  if (mem.length) parts.push(`<h4>Memory</h4>${kv(mem)}`);
  const proc = procFacts(x.master);
  if (proc.length) parts.push(`<h4>Master view (/proc)</h4>${kv(proc)}`);
  parts.push(`<p class="dim file">${h(d.path, 400)}</p>`);
  return `<details class="dump ${dumpClass(d)}" id="${esc(o.id)}"><summary>${dumpTitleHtml(d)}</summary><div class="body">${parts.join('\n')}</div></details>`;
}
