// `superv report`: which routes consume the time, and which get slow or killed, from two sources:
//   - the master's route stats file (every finished request, as per-route latency histograms), and
//   - the dumps on disk (every slow request and every kill, with the frame that was running).
// Pure: the command loads both and hands them here; the text and HTML renderers read the Report.

import { LATENCY_BUCKETS_MS, type HourTotals, type RouteStatsData, type RouteTotals } from '../dump/stats';
import { chainHead } from '../dump/locks';
export type { HourTotals, RouteStatsData, RouteTotals };
import type { Dump, TraceIds } from '../dump/types';
import { normalizeRoute } from '../dump/route';
import { groupDeaths, renderDeathGroups, type DeathGroup } from './deaths';
import { blockedIn, dumpRoute, holderGroup, lockWaits, siteText } from './facts';
import { clean, columns, duration, localTime, percent, type Style } from './format';
import type { LoadedDump } from './load';
import { traceTemplate, traceUrlOf, tracedRequests } from './trace';

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
  /** This route's requests that died as collateral, in flight on a worker killed for another request. */
  collateral: number;
  /** For a route whose requests got workers killed: the other requests that died with them, by route. */
  tookWith: { requests: number; routes: Array<{ route: string; count: number }> };
  /** Requests answered 503 while the route was quarantined (route stats). */
  quarantined: number;
  /** The most frequent "where" across this route's dumps, most frequent first. */
  topFrames: Array<{ where: string; count: number }>;
  /** Indexes into Report.incidents. */
  incidents: number[];
}

/** One (waiting statement, holder) pair of the lock-contention section, over all dumps. */
export interface ContentionRow {
  /** The waiting statement, one line, cut. */
  statement: string;
  /** The app frame that issued it. */
  site?: string;
  /** Who held the lock, grouped: `GET /hold (a request of ours)` or `application psql` / `client 10.0.0.7 (user batch)`. */
  holder: string;
  /** Whether the holder was one of our requests. */
  ours: boolean;
  /** Dumps that caught a statement waiting on this holder. */
  count: number;
  totalMs: number;
  maxMs: number;
  /** Indexes into Report.incidents. */
  incidents: number[];
}

/** A request with a trace id in one of the dumps: the way from a tracing system to the dump, and back. */
export interface TraceRow {
  /** Index into Report.incidents. */
  incident: number;
  host: string;
  /** `request`: the one the dump is about; `in flight`: another request on the worker at the time. */
  role: 'request' | 'in flight';
  method: string;
  url: string;
  trace: TraceIds;
  link?: string;
}

export interface Report {
  generatedAt: number;
  /** The dump dirs read, joined for display. */
  dir: string;
  /** Dumps per host, most first: more than one when dump dirs of several machines were merged. */
  hosts: Array<{ host: string; dumps: number }>;
  /** Every traced request in the dumps, in dump order. */
  traces: TraceRow[];
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
  /** Lock contention from the dumps' look-ups, longest total wait first. */
  contention: ContentionRow[];
  /** Workers that died on their own, grouped by crash signature. */
  deaths: DeathGroup[];
  notes: string[];
}

function kindOf(d: Dump): IncidentKind {
  return d.action === 'killed' ? 'killed' : d.reason === 'slow' ? 'slow' : 'other';
}

const emptyHist = () => new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);

export interface ReportInput {
  dir: string;
  /** A trace_url template that wins over the ones the dumps were written with. */
  traceUrl?: string;
  name?: string;
  stats?: RouteStatsData;
  dumps: LoadedDump[];
  now?: number;
}

function oneLine(sql: string, max: number): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Which statements waited on which holders (the chain's head: whom everyone waits for in the end). */
export function contentionOf(incidents: Incident[]): ContentionRow[] {
  const rows = new Map<string, ContentionRow>();
  incidents.forEach((inc, i) => {
    const d = inc.dump.dump;
    for (const w of lockWaits(d)) {
      if (w.chain.length === 0) continue;
      const statement = oneLine(w.sql ?? '?', 200);
      const site = siteText(w.site, d.supervisor.app);
      const g = holderGroup(chainHead(w));
      const key = `${statement}\u0000${site ?? ''}\u0000${g.label}`;
      let r = rows.get(key);
      if (r === undefined) rows.set(key, r = { statement, site, holder: g.label, ours: g.ours, count: 0, totalMs: 0, maxMs: 0, incidents: [] });
      r.count++;
      r.totalMs += w.waitedMs ?? 0;
      r.maxMs = Math.max(r.maxMs, w.waitedMs ?? 0);
      if (!r.incidents.includes(i)) r.incidents.push(i);
    }
  });
  return [...rows.values()].sort((a, b) => b.totalMs - a.totalMs || b.count - a.count || a.statement.localeCompare(b.statement));
}

export function buildReport(input: ReportInput): Report {
  const incidents: Incident[] = input.dumps.map((d) => ({
    dump: d, kind: kindOf(d.dump), route: dumpRoute(d.dump), where: blockedIn(d.dump, true), time: Date.parse(d.dump.time),
  })).sort((a, b) => a.time - b.time);

  const rows = new Map<string, ReportRow>();
  const row = (route: string): ReportRow => {
    let r = rows.get(route);
    if (!r) {
      r = { route, requests: 0, timeMs: 0, share: 0, hist: emptyHist(), slow: 0, killed: 0, collateral: 0, tookWith: { requests: 0, routes: [] }, quarantined: 0, topFrames: [], incidents: [] };
      rows.set(route, r);
    }
    return r;
  };
  const counted = new Map<string, { slow: number; killed: number; collateral: number; caused: number; quarantined: number }>();
  for (const t of input.stats?.routes ?? []) {
    const r = row(t.route);
    r.requests += t.count;
    r.timeMs += t.sumMs;
    r.maxMs = Math.max(r.maxMs ?? 0, t.maxMs);
    t.hist.forEach((c, i) => { if (i < r.hist.length) r.hist[i]! += c; });
    counted.set(t.route, { slow: t.slow, killed: t.killed, collateral: t.collateral ?? 0, caused: t.collateralCaused ?? 0, quarantined: t.quarantined ?? 0 });
  }
  const fromDumps = new Map<string, { slow: number; killed: number; frames: Map<string, number>; victims: Map<string, number> }>();
  const victimsSeen = new Map<string, number>();
  incidents.forEach((inc, i) => {
    if (inc.route === undefined) return;
    const r = row(inc.route);
    r.incidents.push(i);
    let f = fromDumps.get(inc.route);
    if (!f) fromDumps.set(inc.route, (f = { slow: 0, killed: 0, frames: new Map(), victims: new Map() }));
    if (inc.kind === 'killed') {
      f.killed++;
      for (const c of inc.dump.dump.collateral ?? []) {
        const v = normalizeRoute(c.url);
        f.victims.set(v, (f.victims.get(v) ?? 0) + 1);
        victimsSeen.set(v, (victimsSeen.get(v) ?? 0) + 1);
      }
      // A killed request never finishes, so the stats never see it; its age at the kill is time it took.
      r.timeMs += inc.dump.dump.request?.ageMs ?? 0;
    }
    if (inc.dump.dump.reason === 'slow') f.slow++;
    f.frames.set(inc.where, (f.frames.get(inc.where) ?? 0) + 1);
  });
  // A route whose requests only ever died as collateral still gets its row.
  for (const v of victimsSeen.keys()) row(v);
  for (const r of rows.values()) {
    const c = counted.get(r.route);
    const f = fromDumps.get(r.route);
    // Both count the same incidents when the master's counters are wired; the dumps alone are rotated away
    // (dump_keep), the counters alone miss dumps older than the stats file. The larger is the better floor.
    r.slow = Math.max(c?.slow ?? 0, f?.slow ?? 0);
    r.killed = Math.max(c?.killed ?? 0, f?.killed ?? 0);
    r.collateral = Math.max(c?.collateral ?? 0, victimsSeen.get(r.route) ?? 0);
    r.quarantined = c?.quarantined ?? 0;
    const victims = [...(f?.victims ?? new Map<string, number>())].map(([route, count]) => ({ route, count }))
      .sort((a, b) => b.count - a.count || a.route.localeCompare(b.route));
    r.tookWith = { requests: Math.max(c?.caused ?? 0, victims.reduce((a, v) => a + v.count, 0)), routes: victims };
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
    rows: ranked, incidents, hours: stats?.hours ?? [], contention: contentionOf(incidents), deaths: groupDeaths(input.dumps), notes,
    hosts: hostsOf(incidents), traces: tracesOf(incidents, input.traceUrl),
  };
}

function hostsOf(incidents: Incident[]): Report['hosts'] {
  const n = new Map<string, number>();
  for (const i of incidents) n.set(i.dump.dump.supervisor.host || '?', (n.get(i.dump.dump.supervisor.host || '?') ?? 0) + 1);
  return [...n].map(([host, dumps]) => ({ host, dumps })).sort((a, b) => b.dumps - a.dumps || a.host.localeCompare(b.host));
}

function tracesOf(incidents: Incident[], override: string | undefined): TraceRow[] {
  const out: TraceRow[] = [];
  incidents.forEach((inc, i) => {
    const x = inc.dump.dump;
    const template = traceTemplate(x, override);
    for (const r of tracedRequests(x)) {
      out.push({
        incident: i, host: x.supervisor.host || '?', role: r.id === x.request?.id ? 'request' : 'in flight', method: r.method, url: r.url,
        trace: r.trace!, link: traceUrlOf(r.trace!, template),
      });
    }
  });
  return out;
}

/** Report.rows without the dumps themselves: what `superv report --json` prints. */
export function reportJson(r: Report): unknown {
  return {
    generatedAt: new Date(r.generatedAt).toISOString(), dir: r.dir, name: r.name, statsFiles: r.statsFiles,
    statsFrom: r.statsFrom && new Date(r.statsFrom).toISOString(), statsTo: r.statsTo && new Date(r.statsTo).toISOString(),
    totalMs: r.totalMs, totalRequests: r.totalRequests,
    routes: r.rows.map((x) => ({
      route: x.route, requests: x.requests, timeMs: x.timeMs, share: x.share, p50Ms: x.p50, p95Ms: x.p95, p99Ms: x.p99,
      maxMs: x.maxMs, hist: x.hist, slow: x.slow, killed: x.killed, collateral: x.collateral, tookWith: x.tookWith, quarantined: x.quarantined, topFrames: x.topFrames,
      dumps: x.incidents.map((i) => r.incidents[i]!.dump.path),
    })),
    bucketsMs: LATENCY_BUCKETS_MS,
    lockContention: r.contention.map((c) => ({
      statement: c.statement, site: c.site, holder: c.holder, ours: c.ours, count: c.count, totalMs: c.totalMs, maxMs: c.maxMs,
      dumps: c.incidents.map((i) => r.incidents[i]!.dump.path),
    })),
    deaths: r.deaths,
    hosts: r.hosts,
    traces: r.traces.map((t) => ({
      dump: r.incidents[t.incident]!.dump.path, host: t.host, role: t.role, method: t.method, url: t.url,
      traceId: t.trace.traceId, spanId: t.trace.spanId, from: t.trace.from, link: t.link,
    })),
    notes: r.notes,
  };
}

/** "/leaderboard killed 4 workers, taking 17 other requests with them: / ×12, /cheap ×5": one line per killing route. */
export function collateralLines(r: Report): string[] {
  const quarantined = r.rows.filter((x) => x.quarantined > 0)
    .map((x) => `${clean(x.route, 60)} was quarantined: ${x.quarantined} request${x.quarantined === 1 ? '' : 's'} answered 503 without running the app`);
  return quarantined.concat(r.rows.filter((x) => x.killed > 0 && x.tookWith.requests > 0).map((x) => {
    const routes = x.tookWith.routes.slice(0, 5).map((v) => `${clean(v.route, 60)} ×${v.count}`);
    const more = x.tookWith.routes.length > 5 ? ' …' : '';
    return `${clean(x.route, 60)} killed ${x.killed} worker${x.killed === 1 ? '' : 's'}, taking ${x.tookWith.requests} other ` +
      `request${x.tookWith.requests === 1 ? '' : 's'} with them${routes.length ? `: ${routes.join(', ')}${more}` : ''}`;
  }));
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
    ...(r.hosts.length ? [`hosts: ${r.hosts.map((x) => `${clean(x.host, 60)} (${x.dumps})`).join(', ')}`] : []),
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
  const deaths = renderDeathGroups(r.deaths, s);
  const kills = collateralLines(r).map((l) => s.red(l));
  return head.join('\n') + '\n' + body + (kills.length ? '\n' + kills.join('\n') + '\n' : '') + contentionText(r, s) + tracesText(r, s) + '\n' +
    (deaths ? `${deaths}\n` : '') + r.notes.map((n) => s.dim(`note: ${n}`)).join('\n') + '\n';
}

/** Past this many traced requests the text report stops listing them (the HTML and --json have them all). */
const TRACES_LISTED = 50;

function tracesText(r: Report, s: Style): string {
  if (r.traces.length === 0) return '';
  const table = [['TIME', 'HOST', 'REASON', 'REQUEST', 'TRACE', 'LINK'].map((h) => s.dim(h))];
  for (const t of r.traces.slice(0, TRACES_LISTED)) {
    const x = r.incidents[t.incident]!.dump.dump;
    table.push([localTime(x.time), clean(t.host, 40), t.role === 'request' ? x.reason : s.dim(`${x.reason}, in flight`),
      `${clean(t.method, 10)} ${clean(t.url, 60)}`, t.trace.traceId, t.link ? clean(t.link, 200) : '']);
  }
  const more = r.traces.length > TRACES_LISTED ? s.dim(`(${r.traces.length - TRACES_LISTED} more: --json or --html lists them all)\n`) : '';
  return `\n${s.bold('traced requests')} ${s.dim('(requests in the dumps that carried a trace id)')}\n` + columns(table) + more;
}

function contentionText(r: Report, s: Style): string {
  if (r.contention.length === 0) return '';
  const table = [['STATEMENT', 'ISSUED AT', 'HELD BY', 'TIMES', 'WAITED', 'MAX'].map((h) => s.dim(h))];
  for (const c of r.contention) {
    table.push([clean(c.statement, 70), clean(c.site ?? '-', 50), c.ours ? s.bold(clean(c.holder, 60)) : s.yellow(clean(c.holder, 60)),
      String(c.count), duration(c.totalMs), duration(c.maxMs)]);
  }
  return `\n${s.bold('lock contention')} ${s.dim('(statements that waited on a lock, by holder: our route, or the outside application)')}\n` +
    columns(table, new Set([3, 4, 5]));
}
