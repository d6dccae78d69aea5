// `superv report --html FILE`: one self-contained page (no CDN, no fetch: it opens offline and can be
// attached to a ticket). The same ranked table as the terminal, an SVG latency histogram per route, a
// timeline of kills and slow dumps, and every dump rendered inline as a <details> the markers link to.
//
// Dumps hold user-controlled text; it is escaped everywhere (view/html.ts h()). As a second wall, a
// Content-Security-Policy allows only this page's own <style> and <script> by hash: markup that slipped
// through escaping could still not run a script or load anything.

import { createHash } from 'node:crypto';
import { LATENCY_BUCKETS_MS } from '../dump/stats';
import { redactDump } from '../dump/redact';
import { collateralLines, type Report, type ReportRow } from './report';
import { duration, localTime, percent } from './format';
import type { SourceReader } from './facts';
import { dumpTitleHtml, esc, h, renderDumpHtml } from './dump-html';
import { cpuSectionHtml } from './report-flame';
import type { CpuReport } from './report-cpu';

/** Routes that get a latency chart; the table lists them all. */
const MAX_CHARTS = 50;

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1240px;padding:16px 24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde1e8;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 4px}h4{font-size:13.5px;margin:14px 0 4px;color:#4a5568}h5{font-size:13px;margin:8px 0 2px}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.dim{color:#6b7280}.warn{color:#9a6700}.note{color:#4b5563;font-size:12.5px;margin:2px 0}
table{border-collapse:collapse}
table.routes{width:100%}table.routes th,table.routes td{padding:4px 8px;border-bottom:1px solid #edf0f4;text-align:right;white-space:nowrap;vertical-align:top}
table.routes th{color:#4a5568;font-weight:600;font-size:12px}table.routes td.route,table.routes th.route,table.routes td.where{text-align:left}
table.routes td.where{white-space:normal;font-size:12.5px}table.routes tr:hover td{background:#f6f8fb}
td.killed{color:#b42318;font-weight:700}td.slow{color:#9a6700;font-weight:700}
table.kv th{text-align:left;font-weight:600;padding:1px 12px 1px 0;vertical-align:top;white-space:nowrap}table.kv td{padding:1px 8px 1px 0;word-break:break-all}
table.grid td,table.grid th{border:1px solid #e3e7ee;padding:2px 6px;text-align:left;vertical-align:top;word-break:break-all}
.route-card{border:1px solid #e3e7ee;border-radius:6px;padding:8px 12px;margin:10px 0}
.route-card ul{margin:4px 0;padding-left:18px}
svg text{font:11px system-ui,sans-serif;fill:#4a5568}
svg .bar{fill:#4c78a8}svg .bar.slow{fill:#e0a030}svg .bar.over{fill:#c0392b}svg .hour{fill:#d5dbe5}
svg .q{stroke:#1d2330;stroke-dasharray:3 2}svg .axis{stroke:#9aa4b2}
svg .killed{fill:#c0392b}svg .slow{fill:#e0a030}svg .other{fill:#7f8c8d}svg a:hover circle{stroke:#000;stroke-width:2}
.share{fill:#4c78a8}.share-bg{fill:#e8ecf2}
details.flame{margin:4px 0}details.flame summary{cursor:pointer;font-weight:600}svg.icicle text{font:11px ui-monospace,monospace;fill:#1d2330}svg.icicle .fr:hover rect{stroke:#000}
details.dump{border:1px solid #e3e7ee;border-left:4px solid #7f8c8d;border-radius:4px;margin:6px 0;padding:4px 10px}
details.dump.killed{border-left-color:#c0392b}details.dump.slow{border-left-color:#e0a030}details.dump[open]{background:#fbfcfd}
details.dump summary{cursor:pointer}details.dump:target{outline:2px solid #4c78a8}
.badge{display:inline-block;border-radius:3px;padding:0 5px;font-size:12px;color:#fff;background:#7f8c8d}.badge.killed{background:#c0392b}.badge.slow{background:#c98a12}
.headline{font-weight:700;margin:8px 0 2px}.headline.killed{color:#b42318}.headline.slow{color:#9a6700}
pre.src{background:#f6f8fb;border:1px solid #e3e7ee;padding:6px 0;overflow-x:auto}pre.src .l{display:block;min-height:1.4em}pre.src mark{background:#fde8e8;color:inherit;font-weight:700}
pre.src .ln{display:inline-block;width:4em;padding-right:1em;text-align:right;color:#9aa4b2;user-select:none}
ol.stack{margin:4px 0;padding-left:28px}ol.stack li.app{font-weight:700}ol.stack li.top{color:#b42318}ol.stack li.internal{color:#9aa4b2}
b.killed{color:#b42318}b.slow{color:#9a6700}
p.lock{margin:2px 0;font-size:13px}p.lock.killed{color:#b42318}td.ours{font-weight:600}td.outside{color:#9a6700;font-weight:600}
.hint{display:none}.js .hint{display:inline}
`;

// Opens the dump a link points at (a marker in the timeline, a dump in a route's list).
const SCRIPT = `(function(){
document.documentElement.classList.add('js');
function openTarget(){var id=decodeURIComponent(location.hash.slice(1));var el=id?document.getElementById(id):null;
if(el&&el.tagName==='DETAILS'){el.open=true;el.scrollIntoView();}}
window.addEventListener('hashchange',openTarget);openTarget();})();`;

const sha = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;
export const CSP = `default-src 'none'; style-src ${sha(CSS)}; script-src ${sha(SCRIPT)}; img-src data:; base-uri 'none'; form-action 'none'`;

const BUCKET_LABELS = [...LATENCY_BUCKETS_MS.map((b) => (b < 1000 ? `${b}ms` : `${b / 1000}s`)), `>${LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]! / 1000}s`];

const fmt = (v: number | undefined) => (v === undefined ? '-' : duration(v));

/** Where `ms` falls on the histogram's x axis, in bar units (bucket index + fraction inside it). */
function bucketPosition(ms: number, maxMs: number | undefined): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
    const upper = LATENCY_BUCKETS_MS[i]!;
    if (ms <= upper) {
      const lower = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]!;
      return i + (ms - lower) / (upper - lower);
    }
  }
  const lower = LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]!;
  const upper = Math.max(lower + 1, maxMs ?? lower + 1);
  return LATENCY_BUCKETS_MS.length + Math.min(1, (ms - lower) / (upper - lower));
}

/** The route's latency histogram as bars, with its estimated p50/p95/p99 as dashed lines. */
export function latencyChartSvg(row: ReportRow): string {
  const W = 620, H = 196, left = 40, top = 40, plotH = 118, n = row.hist.length;
  const barW = (W - left - 10) / n;
  const peak = Math.max(1, ...row.hist);
  const bars = row.hist.map((c, i) => {
    const bh = c > 0 ? Math.max(2, (c / peak) * plotH) : 0;
    const x = left + i * barW;
    const cls = i >= LATENCY_BUCKETS_MS.length ? 'bar over' : LATENCY_BUCKETS_MS[i]! > 1000 ? 'bar slow' : 'bar';
    const label = i === 0 ? `≤ ${BUCKET_LABELS[0]}` : i < LATENCY_BUCKETS_MS.length ? `${BUCKET_LABELS[i - 1]} – ${BUCKET_LABELS[i]}` : BUCKET_LABELS[i];
    return `<rect class="${cls}" x="${(x + 2).toFixed(1)}" y="${(top + plotH - bh).toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${bh.toFixed(1)}"><title>${esc(String(label))}: ${c} request(s)</title></rect>` +
      `<text x="${(x + barW / 2).toFixed(1)}" y="${top + plotH + 14}" text-anchor="middle">${esc(BUCKET_LABELS[i]!)}</text>` +
      (c > 0 ? `<text x="${(x + barW / 2).toFixed(1)}" y="${(top + plotH - bh - 3).toFixed(1)}" text-anchor="middle">${c}</text>` : '');
  });
  // Quantile lines run through the plot; their labels sit above it, one row each, so they never cover a bar.
  const marks = (['p50', 'p95', 'p99'] as const).map((k, j) => {
    const v = row[k];
    if (v === undefined) return '';
    const x = left + bucketPosition(v, row.maxMs) * barW;
    const anchor = x > W - 120 ? 'end' : 'start';
    return `<line class="q" x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${top - 36 + j * 11 + 2}" y2="${top + plotH}"/>` +
      `<text x="${(anchor === 'end' ? x - 3 : x + 3).toFixed(1)}" y="${top - 26 + j * 11}" text-anchor="${anchor}">${k} ≈${esc(duration(v))}</text>`;
  });
  return `<svg class="latency" role="img" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><title>latency histogram of ${h(row.route, 120)}</title>` +
    `<line class="axis" x1="${left}" x2="${W - 10}" y1="${top + plotH}" y2="${top + plotH}"/>` +
    `<text x="${left - 6}" y="${top + 8}" text-anchor="end">${peak}</text><text x="${left - 6}" y="${top + plotH}" text-anchor="end">0</text>` +
    bars.join('') + marks.join('') + `<text x="${left}" y="${H - 4}">requests per latency bucket (finished requests only)</text></svg>`;
}

/** Kills and slow dumps over time, each a link to its dump; requests per hour behind them. */
export function timelineSvg(r: Report): string {
  const W = 1180, H = 170, left = 60, right = 20, plotW = W - left - right;
  // Hour bars only over 3 h or more: over a shorter span one bar would fill the chart, and its hour
  // boundaries would stretch the axis until incidents seconds apart sit on one pixel.
  const hourSpan = r.hours.length ? r.hours[r.hours.length - 1]!.hour + 3_600_000 - r.hours[0]!.hour : 0;
  const drawHours = hourSpan >= 3 * 3_600_000;
  const times = [...r.incidents.map((i) => i.time), ...(drawHours ? [r.hours[0]!.hour, r.hours[r.hours.length - 1]!.hour + 3_600_000] : [])]
    .filter(Number.isFinite);
  if (times.length === 0) return '<p class="dim">nothing to show yet: no dumps, and under 3 h of route stats.</p>';
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t1 - t0 < 60_000) { t0 -= 30_000; t1 += 30_000; }
  const pad = (t1 - t0) * 0.02;
  t0 -= pad;
  t1 += pad;
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * plotW;
  const lanes = { killed: 28, slow: 58, other: 88 } as const;
  const peak = Math.max(1, ...r.hours.map((h) => h.count));
  const hours = (drawHours ? r.hours : []).map((hr) => {
    const bh = (hr.count / peak) * 50;
    const x0 = x(hr.hour), x1 = x(hr.hour + 3_600_000);
    return `<rect class="hour" x="${x0.toFixed(1)}" y="${(150 - bh).toFixed(1)}" width="${Math.max(1, x1 - x0 - 1).toFixed(1)}" height="${bh.toFixed(1)}">` +
      `<title>${esc(localTime(hr.hour))}: ${hr.count} request(s), ${esc(duration(hr.sumMs))}</title></rect>`;
  });
  const dots = r.incidents.map((inc, i) => {
    const title = `${localTime(inc.time)} ${inc.dump.dump.reason}${inc.kind === 'killed' ? '/killed' : ''} ${inc.route ?? ''} ${inc.where}`;
    return `<a href="#dump-${i}"><circle class="${inc.kind}" cx="${x(inc.time).toFixed(1)}" cy="${lanes[inc.kind]}" r="6"><title>${h(title, 300)}</title></circle></a>`;
  });
  const labels = Object.entries(lanes).map(([k, y]) => `<text x="${left - 8}" y="${y + 4}" text-anchor="end">${k}</text>`);
  const ticks = [t0, (t0 + t1) / 2, t1].map((t, i) =>
    `<text x="${x(t).toFixed(1)}" y="${H - 4}" text-anchor="${['start', 'middle', 'end'][i]}">${esc(localTime(t))}</text>`);
  return `<svg class="timeline" role="img" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><title>timeline of dumps</title>` +
    `<line class="axis" x1="${left}" x2="${W - right}" y1="150" y2="150"/>${hours.join('')}${labels.join('')}${dots.join('')}${ticks.join('')}</svg>`;
}

function shareBar(share: number): string {
  const w = Math.round(Math.max(0, Math.min(1, share)) * 60);
  return `<svg width="62" height="10" class="sharebar"><rect class="share-bg" width="62" height="10"/><rect class="share" width="${w}" height="10"/></svg>`;
}

function tableHtml(r: Report): string {
  const head = '<tr><th>#</th><th class="route">route</th><th>requests</th><th>time</th><th>share</th><th>p50≈</th><th>p95≈</th><th>p99≈</th><th>max</th><th>slow</th><th>killed</th><th class="route">where (dumps)</th></tr>';
  const rows = r.rows.map((x, i) => `<tr class="route-row" data-rank="${i + 1}">` +
    `<td>${i + 1}</td><td class="route"><a href="#route-${i + 1}"><code>${h(x.route, 120)}</code></a></td><td>${x.requests}</td>` +
    `<td>${esc(duration(x.timeMs))}</td><td>${shareBar(x.share)} ${esc(percent(x.timeMs, r.totalMs))}</td>` +
    `<td>${esc(fmt(x.p50))}</td><td>${esc(fmt(x.p95))}</td><td>${esc(fmt(x.p99))}</td><td>${esc(fmt(x.maxMs))}</td>` +
    `<td class="${x.slow ? 'slow' : ''}">${x.slow}</td><td class="${x.killed ? 'killed' : ''}">${x.killed}</td>` +
    `<td class="where">${x.topFrames.map((f) => `<code>${h(f.where, 100)}</code> ×${f.count}`).join('<br>') || '-'}</td></tr>`);
  return `<table class="routes">${head}${rows.join('')}</table>`;
}

function contentionHtml(r: Report): string {
  if (r.contention.length === 0) return '<p class="dim">No dump caught a statement waiting on a lock.</p>';
  const head = '<tr><th class="route">statement</th><th class="route">issued at</th><th class="route">held by</th><th>times</th><th>waited</th><th>max</th><th class="route">dumps</th></tr>';
  const rows = r.contention.map((c) => `<tr class="contention-row"><td class="route"><code>${h(c.statement, 200)}</code></td>` +
    `<td class="route"><code>${h(c.site ?? '-', 120)}</code></td><td class="route ${c.ours ? 'ours' : 'outside'}">${h(c.holder, 120)}</td>` +
    `<td>${c.count}</td><td>${esc(duration(c.totalMs))}</td><td>${esc(duration(c.maxMs))}</td>` +
    `<td class="where">${c.incidents.map((i) => `<a href="#dump-${i}">#${i + 1}</a>`).join(' ')}</td></tr>`);
  return `<table class="routes contention">${head}${rows.join('')}</table>` +
    '<p class="note">Held by: the head of the wait chain, grouped by our route when it is one of our requests, else by the outside application, client or user the database named.</p>';
}

function routeCards(r: Report): string {
  return r.rows.slice(0, MAX_CHARTS).map((x, i) => {
    const dumps = x.incidents.map((k) => `<li><a href="#dump-${k}">${dumpTitleHtml(r.incidents[k]!.dump)}</a></li>`);
    const chart = x.requests > 0 ? latencyChartSvg(x) : '<p class="dim">no finished requests in the route stats</p>';
    return `<div class="route-card" id="route-${i + 1}"><h3>${i + 1}. <code>${h(x.route, 200)}</code> <span class="dim">${x.requests} request(s), ` +
      `${esc(duration(x.timeMs))} (${esc(percent(x.timeMs, r.totalMs))})` +
      (x.requests > 0 ? `, p50 ≈${esc(fmt(x.p50))}, p95 ≈${esc(fmt(x.p95))}, p99 ≈${esc(fmt(x.p99))}, max ${esc(fmt(x.maxMs))}` : '') +
      `${x.slow ? `, ${x.slow} slow` : ''}${x.killed ? `, ${x.killed} killed` : ''}</span></h3>` +
      chart + (dumps.length ? `<ul>${dumps.join('')}</ul>` : '') + '</div>';
  }).join('\n') + (r.rows.length > MAX_CHARTS ? `<p class="dim">${r.rows.length - MAX_CHARTS} more route(s) in the table only.</p>` : '');
}

export interface HtmlOptions {
  read: SourceReader;
  /** A trace_url template that wins over the ones the dumps were written with. */
  traceUrl?: string;
}

/** Worker deaths by crash signature: a crash loop is one row. */
function deathsHtml(r: Report): string {
  if (r.deaths.length === 0) return '';
  const rows = r.deaths.map((g) => `<tr><td class="killed">${g.deaths}</td><td>${h(g.kind, 40)}</td><td class="route">${h(g.fingerprint, 300)}</td>` +
    `<td class="where">${h(g.routes.join(', ') || '-', 300)}</td><td>${esc(localTime(g.last))}</td><td>${g.files.length}</td></tr>`);
  return `<section id="deaths"><h2>Worker deaths by signature</h2>
<table class="routes"><tr><th>DEATHS</th><th>KIND</th><th class="route">SIGNATURE</th><th class="route">ROUTES</th><th>LAST</th><th>DUMPS</th></tr>
${rows.join('\n')}</table>
<p class="note">Identical crashes are rate-limited on disk; each dump counts the ones skipped before it, so DEATHS counts them all.</p>
</section>`;
}

/** Every traced request: its trace id (a link when trace_url is set) and the dump it is in. */
function tracesHtml(r: Report): string {
  if (r.traces.length === 0) return '';
  const rows = r.traces.map((t) => {
    const x = r.incidents[t.incident]!.dump.dump;
    const id = `<code class="trace">${h(t.trace.traceId, 40)}</code>`;
    return `<tr><td>${h(localTime(x.time), 40)}</td><td>${h(t.host, 60)}</td><td>${h(x.reason, 20)}${t.role === 'request' ? '' : ' <span class="dim">(in flight)</span>'}</td>` +
      `<td class="route"><code>${h(t.method, 10)} ${h(t.url, 200)}</code></td>` +
      `<td>${t.link ? `<a href="${esc(t.link)}" rel="noreferrer noopener" target="_blank">${id}</a>` : id}</td><td><a href="#dump-${t.incident}">dump</a></td></tr>`;
  });
  return `<section id="traces"><h2>Traced requests</h2>
<table class="routes"><tr><th>TIME</th><th>HOST</th><th>REASON</th><th class="route">REQUEST</th><th>TRACE</th><th></th></tr>
${rows.join('\n')}</table></section>`;
}

export function renderReportHtml(r: Report, o: HtmlOptions, cpu?: CpuReport): string {
  const title = `superv report${r.name ? ` — ${r.name}` : ''}`;
  const span = (a?: number, b?: number) => (a === undefined ? 'none' : `${localTime(a)} – ${localTime(b ?? a)}`);
  const killed = r.incidents.filter((i) => i.kind === 'killed').length;
  const slow = r.incidents.filter((i) => i.kind === 'slow').length;
  // Redacted once more: dumps from an older superv may predate a redaction rule, and this page travels.
  const dumps = r.incidents.map((inc, i) => renderDumpHtml({ ...inc.dump, dump: redactDump(inc.dump.dump) }, { id: `dump-${i}`, read: o.read, traceUrl: o.traceUrl }));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${esc(CSP)}">
<meta name="referrer" content="no-referrer">
<title>${h(title, 120)}</title><style>${CSS}</style></head>
<body>
<header><h1>${h(title, 120)}</h1>
<p class="dim">${h(r.dir, 300)} · generated ${esc(localTime(r.generatedAt))}</p>
<p>${r.totalRequests} finished request(s), ${esc(duration(r.totalMs))} in total (route stats ${esc(span(r.statsFrom, r.statsTo))}) ·
${r.incidents.length} dump(s): <b class="killed">${killed} killed</b>, <b class="slow">${slow} slow</b> (${esc(span(r.dumpsFrom, r.dumpsTo))})</p>
${r.hosts.length ? `<p class="dim">hosts: ${r.hosts.map((x) => `${h(x.host, 60)} (${x.dumps})`).join(', ')}</p>` : ''}</header>
<section id="routes"><h2>Routes by time consumed</h2>
${r.rows.length ? tableHtml(r) : '<p>No requests and no dumps yet.</p>'}
${collateralLines(r).map((l) => `<p class="headline killed">${h(l, 600)}</p>`).join('\n')}
${r.notes.map((n) => `<p class="note">${h(n, 600)}</p>`).join('\n')}
</section>
${cpuSectionHtml(cpu)}
<section id="lock-contention"><h2>Lock contention</h2>
${contentionHtml(r)}
</section>
${deathsHtml(r)}
${tracesHtml(r)}
<section id="timeline"><h2>Timeline <span class="dim hint">(click a marker to open its dump)</span></h2>
${timelineSvg(r)}
<p class="note">Markers: kills (red), slow requests (orange), other dumps (grey). Grey bars: finished requests per hour (over spans of 3 h or more).</p>
</section>
<section id="latency"><h2>Latency per route</h2>
${routeCards(r)}
</section>
<section id="dumps"><h2>Dumps (${r.incidents.length})</h2>
${dumps.join('\n')}
</section>
<script>${SCRIPT}</script>
</body></html>
`;
}
