// The HTML report's CPU section: routes by CPU and an icicle (a flame graph drawn top-down) of the aggregated
// samples, one per route and one for all of them, each a <details> to open: filtering by route needs no script,
// which the page's Content-Security-Policy keeps to its one hashed block (which also forbids style="…": colours
// are fill attributes). Every name is escaped.

import { isRequestRoute, parseFrame, type FrameKey } from '../dump/cpu';
import { esc, h } from './dump-html';
import { duration, percent } from './format';
import type { CpuReport } from './report-cpu';

const WIDTH = 1180;
const ROW = 17;
const MAX_DEPTH = 48;
/** Boxes narrower than this many pixels are not drawn (their time is in their parent's). */
const MIN_PX = 0.6;
/** Routes that get an icicle of their own; the rest are in "all routes". */
const MAX_ROUTES = 20;

interface Node { key: FrameKey; ms: number; children: Map<FrameKey, Node> }

function tree(stacks: ReadonlyArray<{ frames: readonly FrameKey[]; ms: number }>): Node {
  const root: Node = { key: '', ms: 0, children: new Map() };
  for (const s of stacks) {
    root.ms += s.ms;
    let n = root;
    for (const f of s.frames.slice(0, MAX_DEPTH)) {
      let c = n.children.get(f);
      if (!c) n.children.set(f, (c = { key: f, ms: 0, children: new Map() }));
      c.ms += s.ms;
      n = c;
    }
  }
  return root;
}

function hue(file: string): number {
  if (file.startsWith('node:')) return 200;
  if (file.includes('/node_modules/')) return 280;
  return 20;
}

export function icicleSvg(stacks: ReadonlyArray<{ frames: readonly FrameKey[]; ms: number }>, label: string): string {
  const root = tree(stacks);
  if (!(root.ms > 0)) return '<p class="dim">No samples.</p>';
  const boxes: string[] = [];
  let depth = 0;
  const walk = (n: Node, x: number, d: number): void => {
    let cx = x;
    for (const c of [...n.children.values()].sort((a, b) => b.ms - a.ms)) {
      const w = (c.ms / root.ms) * WIDTH;
      if (w >= MIN_PX) {
        const f = parseFrame(c.key);
        const name = f.name || '(anonymous)';
        depth = Math.max(depth, d + 1);
        const tip = `${name} ${f.file}:${f.line} — ${duration(c.ms)} (${percent(c.ms, root.ms)})`;
        boxes.push(`<g class="fr"><title>${h(tip, 400)}</title><rect x="${cx.toFixed(1)}" y="${d * ROW}" width="${Math.max(0, w - 0.5).toFixed(1)}" height="${ROW - 1}" ` +
          `fill="hsl(${hue(f.file)},70%,${72 - Math.min(30, d)}%)"/>` +
          (w > 40 ? `<text x="${(cx + 3).toFixed(1)}" y="${d * ROW + 12}">${h(name.slice(0, Math.floor(w / 6.5)), 200)}</text>` : '') + '</g>');
        walk(c, cx, d + 1);
      }
      cx += w;
    }
  };
  walk(root, 0, 0);
  return `<svg class="icicle" role="img" aria-label="${esc(label)}" width="${WIDTH}" height="${depth * ROW + 2}" viewBox="0 0 ${WIDTH} ${depth * ROW + 2}">${boxes.join('')}</svg>`;
}

export function cpuSectionHtml(r: CpuReport | undefined): string {
  if (!r) return '<section id="cpu"><h2>Routes by CPU</h2><p>No CPU samples (cpu_sample_interval 0, or no stats file in this directory).</p></section>';
  const rows = r.routes.map((x) => `<tr><td class="route">${isRequestRoute(x.route) ? `<b>${h(x.route, 200)}</b>` : `<span class="dim">${h(x.route, 40)}</span>`}</td>` +
    `<td>${esc(duration(x.cpuMs))}</td><td>${esc(percent(x.cpuMs, r.cpuMs))}</td><td>${x.requests || '-'}</td>` +
    `<td>${x.cpuMsPerRequest === undefined ? '-' : esc(`${x.cpuMsPerRequest.toFixed(2)} ms`)}</td><td>${x.timeMs === undefined ? '-' : esc(duration(x.timeMs))}</td></tr>`);
  const fns = r.functions.slice(0, 15).map((f) => `<tr><td class="route"><b>${h(f.name || '(anonymous)', 120)}</b></td><td class="where">${h(`${f.file}:${f.line}`, 300)}</td>` +
    `<td>${esc(duration(f.selfMs))}</td><td>${esc(duration(f.totalMs))}</td></tr>`);
  const routes = r.routes.filter((x) => isRequestRoute(x.route)).slice(0, MAX_ROUTES);
  const flames = [`<details class="flame" id="flame-all" open><summary>all routes and work outside requests — ${esc(duration(r.cpuMs))}</summary>${icicleSvg(r.stacks, 'all routes')}</details>`]
    .concat(routes.map((x, i) => `<details class="flame" id="flame-${i}" data-route="${esc(x.route)}"><summary>${h(x.route, 200)} — ${esc(duration(x.cpuMs))}</summary>` +
      `${icicleSvg(r.stacks.filter((s) => s.route === x.route), x.route)}</details>`));
  return `<section id="cpu"><h2>Routes by CPU</h2>
<p class="note">Sampled main-thread CPU (${h(r.source, 300)}): ${esc(duration(r.cpuMs))} of CPU, ${esc(duration(r.idleMs))} sampled idle. (no request) is JS outside any request: timers, startup, background work.</p>
<table class="routes"><tr><th class="route">ROUTE</th><th>CPU</th><th>SHARE</th><th>REQUESTS</th><th>CPU/REQ</th><th>TIME</th></tr>
${rows.join('\n')}</table>
<h3>Hottest functions</h3>
<table class="routes"><tr><th class="route">FUNCTION</th><th class="route">WHERE</th><th>SELF</th><th>TOTAL</th></tr>
${fns.join('\n')}</table>
<h3>Flame graph <span class="dim hint">(icicle: callers above callees, width is CPU; open a route to see only its samples)</span></h3>
${flames.join('\n')}
</section>`;
}
