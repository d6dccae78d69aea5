// The CPU part of `superv report`: routes by CPU (beside their time), the hottest functions, and the folded
// stacks the HTML flame graph draws. Pure: the command loads the CPU totals (live from the master, or the
// stats files in a dump dir) and hands them here.

import { functionsOf, isRequestRoute, IDLE_ROUTE, type CpuFunction, type CpuTotals, type FrameKey } from '../dump/cpu';
import type { RouteTotals } from '../dump/stats';
import { clean, columns, duration, localTime, percent, type Style } from './format';

export interface CpuRouteRow {
  route: string;
  cpuMs: number;
  /** Of the CPU of all routes and of work outside requests (idle excluded: it is no CPU). */
  share: number;
  requests: number;
  /** Undefined for rows that are no route (no request) and routes with no finished request. */
  cpuMsPerRequest?: number;
  /** Wall time of the route's finished requests, from the route stats (the time columns). */
  timeMs?: number;
}

export interface CpuReport {
  since: number;
  to: number;
  /** CPU of the main threads, all routes and outside requests. */
  cpuMs: number;
  /** Wall time the main threads were sampled idle (no CPU). */
  idleMs: number;
  routes: CpuRouteRow[];
  functions: CpuFunction[];
  /** For the flame graph: folded stacks, outermost frame first, by route. */
  stacks: Array<{ route: string; frames: FrameKey[]; ms: number }>;
  /** Whether the samples came from the running master or from files. */
  source: string;
}

const round = (x: number) => Math.round(x * 100) / 100;

export function buildCpuReport(t: CpuTotals, source: string, time: readonly RouteTotals[] = []): CpuReport {
  const timeBy = new Map(time.map((r) => [r.route, r]));
  const busy = t.routes.filter((r) => r.route !== IDLE_ROUTE);
  const cpuMs = busy.reduce((a, r) => a + r.cpuMs, 0);
  const routes = busy.map((r): CpuRouteRow => ({
    route: r.route, cpuMs: round(r.cpuMs), share: cpuMs > 0 ? round(r.cpuMs / cpuMs) : 0, requests: r.requests,
    cpuMsPerRequest: isRequestRoute(r.route) && r.requests > 0 ? round(r.cpuMs / r.requests) : undefined,
    timeMs: timeBy.get(r.route)?.sumMs,
  })).sort((a, b) => b.cpuMs - a.cpuMs);
  const stacks = t.stacks.filter((s) => s.route !== IDLE_ROUTE);
  return {
    since: t.since, to: t.to, cpuMs: round(cpuMs), idleMs: round(t.routes.find((r) => r.route === IDLE_ROUTE)?.cpuMs ?? 0),
    routes, functions: functionsOf(stacks, 25), stacks, source,
  };
}

/** `--json`'s `cpu`: the routes and functions tables. */
export function cpuJson(r: CpuReport): unknown {
  return {
    since: new Date(r.since).toISOString(), to: new Date(r.to).toISOString(), cpuMs: r.cpuMs, idleMs: r.idleMs, source: r.source,
    routes: r.routes.map((x) => ({ route: x.route, cpuMs: x.cpuMs, share: x.share, requests: x.requests, cpuMsPerRequest: x.cpuMsPerRequest ?? null, timeMs: x.timeMs ?? null })),
    functions: r.functions.map((f) => ({ name: f.name || '(anonymous)', file: f.file, line: f.line, selfMs: round(f.selfMs), totalMs: round(f.totalMs) })),
  };
}

const ms = (v: number) => (v < 10 ? `${v.toFixed(2)} ms` : duration(v));

export function renderCpuText(r: CpuReport, s: Style): string {
  const head = `\n${s.bold('routes by CPU')} ${s.dim(`(sampled main-thread CPU, ${localTime(r.since)} – ${localTime(r.to)}, ${r.source}; ` +
    `${duration(r.cpuMs)} of CPU, ${duration(r.idleMs)} idle)`)}\n`;
  const table = [['#', 'ROUTE', 'CPU', 'SHARE', 'REQUESTS', 'CPU/REQ', 'TIME', 'CPU/TIME'].map((h) => s.dim(h))];
  r.routes.forEach((x, i) => {
    table.push([String(i + 1), isRequestRoute(x.route) ? s.bold(clean(x.route, 60)) : s.dim(x.route), ms(x.cpuMs), percent(x.cpuMs, r.cpuMs),
      x.requests ? String(x.requests) : '-', x.cpuMsPerRequest === undefined ? '-' : ms(x.cpuMsPerRequest),
      x.timeMs === undefined ? '-' : duration(x.timeMs), x.timeMs ? percent(x.cpuMs, x.timeMs) : '-']);
  });
  const routes = r.routes.length ? columns(table, new Set([0, 2, 3, 4, 5, 6, 7])) : 'no CPU samples yet\n';
  const fns = [['FUNCTION', 'WHERE', 'SELF', 'TOTAL'].map((h) => s.dim(h))];
  for (const f of r.functions.slice(0, 15)) {
    fns.push([s.bold(clean(f.name || '(anonymous)', 50)), clean(`${f.file}:${f.line}`, 80), `${ms(f.selfMs)} ${percent(f.selfMs, r.cpuMs)}`, `${ms(f.totalMs)} ${percent(f.totalMs, r.cpuMs)}`]);
  }
  return head + routes + (r.functions.length ? `\n${s.bold('hottest functions')} ${s.dim('(self: the innermost frame; total: anywhere on the stack)')}\n` + columns(fns, new Set([2, 3])) : '');
}
