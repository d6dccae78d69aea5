// `superv report`: which routes consume the time, and which get slow or killed, from two sources:
//   - the master's route stats file (every finished request, as per-route latency histograms), and
//   - the dumps on disk (every slow request and every kill, with the frame that was running).
// Pure: the command loads both and hands them here; the text and HTML renderers read the Report.

import { LATENCY_BUCKETS_MS } from '../protocol';
import type { Dump } from './types';
import { blockedIn, dumpRoute } from './view/facts';
import { clean, columns, duration, localTime, percent, type Style } from './view/format';
import type { LoadedDump } from './view/load';

/** One route's totals over the stats file's window (the master keeps a few days). */
export interface RouteTotals {
  route: string;
  count: number;
  sumMs: number;
  maxMs: number;
  /** Counts per LATENCY_BUCKETS_MS bucket, plus one for slower requests. */
  hist: number[];
  /** Slow and killed requests the master counted (they survive dump rotation). */
  slow: number;
  killed: number;
}

export interface HourTotals {
  /** Epoch ms of the hour's start. */
  hour: number;
  count: number;
  sumMs: number;
  slow: number;
  killed: number;
}

export interface RouteStatsData {
  files: string[];
  routes: RouteTotals[];
  hours: HourTotals[];
  /** The window the stats cover, epoch ms. */
  from?: number;
  to?: number;
  problems: string[];
}

/**
 * The q-quantile (0 < q < 1) of a bucketed histogram, like Prometheus' histogram_quantile: find the bucket
 * holding the rank, interpolate linearly inside it. An estimate: within a bucket the real distribution is
 * unknown. The known maximum tightens it: no quantile exceeds `maxMs`, and the open last bucket ends there.
 */
export function histogramQuantile(hist: readonly number[], q: number, maxMs?: number, bounds: readonly number[] = LATENCY_BUCKETS_MS): number | undefined {
  const total = hist.reduce((a, b) => a + (b > 0 ? b : 0), 0);
  if (!(total > 0) || !(q > 0) || !(q <= 1)) return undefined;
  const rank = q * total;
  let cum = 0;
  for (let i = 0; i < hist.length; i++) {
    const c = hist[i]! > 0 ? hist[i]! : 0;
    if (c === 0 || cum + c < rank) { cum += c; continue; }
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    let upper = i < bounds.length ? bounds[i]! : Math.max(lower, maxMs ?? lower);
    if (maxMs !== undefined && maxMs >= lower && maxMs < upper) upper = maxMs;
    const v = lower + (upper - lower) * ((rank - cum) / c);
    return maxMs !== undefined ? Math.min(v, maxMs) : v;
  }
  return maxMs;
}

export type IncidentKind = 'killed' | 'slow' | 'other';

export interface Incident {
  dump: LoadedDump;
  kind: IncidentKind;
  route?: string;
  /** The top app frame, or why there is none. */
  where: string;
  time: number;
}

export interface ReportRow {
  route: string;
  /** Finished requests (route stats). */
  requests: number;
  /** Time of finished requests plus the age of killed ones at their kill: they never finish. */
  timeMs: number;
  share: number;
  p50?: number;
  p95?: number;
  p99?: number;
  maxMs?: number;
  hist: number[];
  slow: number;
  killed: number;
  /** The most frequent "where" across this route's dumps, most frequent first. */
  topFrames: Array<{ where: string; count: number }>;
  /** Indexes into Report.incidents. */
  incidents: number[];
}

export interface Report {
  generatedAt: number;
  dir: string;
  name?: string;
  statsFiles: string[];
  statsFrom?: number;
  statsTo?: number;
  dumpsFrom?: number;
  dumpsTo?: number;
  totalMs: number;
  totalRequests: number;
  rows: ReportRow[];
  /** Every dump, oldest first. */
  incidents: Incident[];
  hours: HourTotals[];
  notes: string[];
}

function kindOf(d: Dump): IncidentKind {
  return d.action === 'killed' ? 'killed' : d.reason === 'slow' ? 'slow' : 'other';
}

const emptyHist = () => new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);

export interface ReportInput {
  dir: string;
  name?: string;
  stats?: RouteStatsData;
  dumps: LoadedDump[];
  now?: number;
}

export function buildReport(input: ReportInput): Report {
  const incidents: Incident[] = input.dumps.map((d) => ({
    dump: d, kind: kindOf(d.dump), route: dumpRoute(d.dump), where: blockedIn(d.dump), time: Date.parse(d.dump.time),
  })).sort((a, b) => a.time - b.time);

  const rows = new Map<string, ReportRow>();
  const row = (route: string): ReportRow => {
    let r = rows.get(route);
    if (!r) {
      r = { route, requests: 0, timeMs: 0, share: 0, hist: emptyHist(), slow: 0, killed: 0, topFrames: [], incidents: [] };
      rows.set(route, r);
    }
    return r;
  };
  const counted = new Map<string, { slow: number; killed: number }>();
  for (const t of input.stats?.routes ?? []) {
    const r = row(t.route);
    r.requests += t.count;
    r.timeMs += t.sumMs;
    r.maxMs = Math.max(r.maxMs ?? 0, t.maxMs);
    t.hist.forEach((c, i) => { if (i < r.hist.length) r.hist[i]! += c; });
    counted.set(t.route, { slow: t.slow, killed: t.killed });
  }
  const fromDumps = new Map<string, { slow: number; killed: number; frames: Map<string, number> }>();
  incidents.forEach((inc, i) => {
    if (inc.route === undefined) return;
    const r = row(inc.route);
    r.incidents.push(i);
    let f = fromDumps.get(inc.route);
    if (!f) fromDumps.set(inc.route, (f = { slow: 0, killed: 0, frames: new Map() }));
    if (inc.kind === 'killed') {
      f.killed++;
      // A killed request never finishes, so the stats never see it; its age at the kill is time it took.
      r.timeMs += inc.dump.dump.request?.ageMs ?? 0;
    }
    if (inc.dump.dump.reason === 'slow') f.slow++;
    f.frames.set(inc.where, (f.frames.get(inc.where) ?? 0) + 1);
  });
  for (const r of rows.values()) {
    const c = counted.get(r.route);
    const f = fromDumps.get(r.route);
    // Both count the same incidents when the master's counters are wired; the dumps alone are rotated away
    // (dump_keep), the counters alone miss dumps older than the stats file. The larger is the better floor.
    r.slow = Math.max(c?.slow ?? 0, f?.slow ?? 0);
    r.killed = Math.max(c?.killed ?? 0, f?.killed ?? 0);
    r.topFrames = [...(f?.frames ?? new Map<string, number>())].map(([where, count]) => ({ where, count }))
      .sort((a, b) => b.count - a.count || a.where.localeCompare(b.where)).slice(0, 3);
    if (r.requests > 0) {
      r.p50 = histogramQuantile(r.hist, 0.5, r.maxMs);
      r.p95 = histogramQuantile(r.hist, 0.95, r.maxMs);
      r.p99 = histogramQuantile(r.hist, 0.99, r.maxMs);
    } else {
      r.maxMs = undefined;
    }
  }
  const totalMs = [...rows.values()].reduce((a, r) => a + r.timeMs, 0);
  for (const r of rows.values()) r.share = totalMs > 0 ? r.timeMs / totalMs : 0;
  const ranked = [...rows.values()].sort((a, b) =>
    b.timeMs - a.timeMs || b.killed - a.killed || b.slow - a.slow || a.route.localeCompare(b.route));

  const notes = [
    'p50/p95/p99 are estimated from latency histograms (buckets ≤5 ms … >60 s) by linear interpolation inside the bucket, capped at the route\'s max.',
    'TIME is the time of finished requests plus, for killed requests (which never finish), their age when killed.',
  ];
  const stats = input.stats;
  if (!stats || stats.files.length === 0) {
    notes.push(`no route stats file in ${input.dir} (the master writes .superv-routes-NAME.json there): requests, TIME and percentiles cover only dumped requests.`);
  }
  for (const p of stats?.problems ?? []) notes.push(`route stats: ${p}`);
  return {
    generatedAt: input.now ?? Date.now(), dir: input.dir, name: input.name,
    statsFiles: stats?.files ?? [], statsFrom: stats?.from, statsTo: stats?.to,
    dumpsFrom: incidents[0]?.time, dumpsTo: incidents[incidents.length - 1]?.time,
    totalMs, totalRequests: ranked.reduce((a, r) => a + r.requests, 0),
    rows: ranked, incidents, hours: stats?.hours ?? [], notes,
  };
}

/** Report.rows without the dumps themselves: what `superv report --json` prints. */
export function reportJson(r: Report): unknown {
  return {
    generatedAt: new Date(r.generatedAt).toISOString(), dir: r.dir, name: r.name, statsFiles: r.statsFiles,
    statsFrom: r.statsFrom && new Date(r.statsFrom).toISOString(), statsTo: r.statsTo && new Date(r.statsTo).toISOString(),
    totalMs: r.totalMs, totalRequests: r.totalRequests,
    routes: r.rows.map((x) => ({
      route: x.route, requests: x.requests, timeMs: x.timeMs, share: x.share, p50Ms: x.p50, p95Ms: x.p95, p99Ms: x.p99,
      maxMs: x.maxMs, hist: x.hist, slow: x.slow, killed: x.killed, topFrames: x.topFrames,
      dumps: x.incidents.map((i) => r.incidents[i]!.dump.path),
    })),
    bucketsMs: LATENCY_BUCKETS_MS,
    notes: r.notes,
  };
}

function span(from: number | undefined, to: number | undefined): string {
  return from === undefined ? 'none' : `${localTime(from)} – ${localTime(to ?? from)}`;
}

const approx = (v: number | undefined) => (v === undefined ? '-' : `≈${duration(v)}`);

export function renderReportText(r: Report, s: Style): string {
  const head = [
    s.bold(`superv report${r.name ? ` for ${clean(r.name, 64)}` : ''}`) + s.dim(` · ${clean(r.dir, 200)}`),
    `requests: ${r.totalRequests} finished, ${duration(r.totalMs)} in total · route stats ${span(r.statsFrom, r.statsTo)}`,
    `dumps: ${r.incidents.length} (${r.incidents.filter((i) => i.kind === 'killed').length} killed, ` +
      `${r.incidents.filter((i) => i.kind === 'slow').length} slow) · ${span(r.dumpsFrom, r.dumpsTo)}`,
    '',
  ];
  const table = [['#', 'ROUTE', 'REQUESTS', 'TIME', 'SHARE', 'p50', 'p95', 'p99', 'MAX', 'SLOW', 'KILLED', 'WHERE (dumps)'].map((h) => s.dim(h))];
  r.rows.forEach((x, i) => {
    table.push([String(i + 1), s.bold(clean(x.route, 60)), String(x.requests), duration(x.timeMs), percent(x.timeMs, r.totalMs),
      approx(x.p50), approx(x.p95), approx(x.p99), x.maxMs === undefined ? '-' : duration(x.maxMs),
      x.slow ? s.yellow(String(x.slow)) : '0', x.killed ? s.red(String(x.killed)) : '0',
      x.topFrames.map((f) => `${clean(f.where, 60)} ×${f.count}`).join(', ') || '-']);
  });
  const body = r.rows.length ? columns(table, new Set([0, 2, 3, 4, 5, 6, 7, 8, 9, 10])) : 'no requests and no dumps yet\n';
  return head.join('\n') + '\n' + body + '\n' + r.notes.map((n) => s.dim(`note: ${n}`)).join('\n') + '\n';
}
