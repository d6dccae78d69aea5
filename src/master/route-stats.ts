// Per-route latency, kept by the master across restarts so `superv report` can say which routes consume
// the time. Workers send each heartbeat's finished requests per route (already bucketed); the master adds
// them here and flushes every few seconds to `<dump dir>/.superv-routes-<name>.json` (0600, atomic rename).
//
// Bounded whatever the traffic: at most `maxRoutes` routes (a new one evicts the route that consumed the
// least time into `(other)`), one bucket per route per UTC day for `keepDays` days, and one global bucket
// per hour for the timeline. Older days age out, so a regression fixed last month stops ranking first.
// The file is per supervisor name, so two supervisors sharing a dump dir never overwrite each other.

import { promises as fs, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { HourTotals, RouteStatsData, RouteTotals } from '../dump/stats';
import { normalizeRoute, OTHER_ROUTE as OTHER, ROUTE_CAPS } from '../dump/route';
import type { Dump } from '../dump/types';
import { LATENCY_BUCKETS_MS } from '../dump/stats';
import type { RouteStats } from '../protocol';
import { StatsFileWriter, statsFilePath } from './stats-file';

export const STATS_VERSION = 1;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const NBUCKETS = LATENCY_BUCKETS_MS.length + 1;
/** `.superv-routes-<name>.json`; pruneDumps() never touches it (not a dump name), and cleans our stale temps. */
const FILE_NAME = /^\.superv-routes-(.+)\.json$/;

export function routeStatsFile(dumpDir: string, name: string): string {
  return statsFilePath(dumpDir, 'routes', name);
}

interface Totals { count: number; sumMs: number; maxMs: number; hist: number[]; slow: number; killed: number; collateral: number; collateralCaused: number; quarantined: number }
interface Day extends Totals { day: number }

/** The file, as written. */
interface StatsFile {
  version: number;
  name: string;
  bucketsMs: number[];
  updatedAt: string;
  routes: Array<{ route: string; days: Day[] }>;
  hours: HourTotals[];
}

export interface RouteStatsOptions {
  /** The supervisor's name, written into the file (the report filters on it). */
  name?: string;
  /** Routes kept; default ROUTE_CAPS.statsFile. */
  maxRoutes?: number;
  /** Days of history kept; default 7. */
  keepDays?: number;
  now?: () => number;
  /** Loading and flushing never throw (statistics must not take the master down); problems come here. */
  onError?: (err: Error) => void;
}

const fresh = (): Totals => ({ count: 0, sumMs: 0, maxMs: 0, hist: new Array<number>(NBUCKETS).fill(0), slow: 0, killed: 0, collateral: 0, collateralCaused: 0, quarantined: 0 });
// Counts come over IPC from workers running app code: keep only finite, non-negative numbers.
const n = (u: unknown): number => (typeof u === 'number' && Number.isFinite(u) && u > 0 ? u : 0);

function addInto(t: Totals, count: number, sumMs: number, maxMs: number, hist: readonly unknown[]): void {
  t.count += n(count);
  t.sumMs += n(sumMs);
  t.maxMs = Math.max(t.maxMs, n(maxMs));
  for (let i = 0; i < NBUCKETS; i++) t.hist[i]! += n(hist[i]);
}

function merge(into: Totals, from: Totals): void {
  addInto(into, from.count, from.sumMs, from.maxMs, from.hist);
  into.slow += from.slow;
  into.killed += from.killed;
  into.collateral += from.collateral;
  into.collateralCaused += from.collateralCaused;
  into.quarantined += from.quarantined;
}

export class RouteStatsStore {
  private readonly routes = new Map<string, Day[]>();
  private hours: HourTotals[] = [];
  private readonly maxRoutes: number;
  private readonly keepDays: number;
  private readonly now: () => number;
  private readonly name: string;
  private readonly out: StatsFileWriter;

  constructor(readonly file: string, opts: RouteStatsOptions = {}) {
    this.name = opts.name ?? (FILE_NAME.exec(basename(file))?.[1] ?? '');
    this.maxRoutes = Math.max(2, opts.maxRoutes ?? ROUTE_CAPS.statsFile);
    this.keepDays = Math.max(1, opts.keepDays ?? 7);
    this.now = opts.now ?? Date.now;
    this.out = new StatsFileWriter(file, 'route stats', () => {
      this.prune(this.now());
      return JSON.stringify(this.toFile()) + '\n';
    }, opts.onError ?? (() => undefined));
    this.load();
  }

  /** One heartbeat's routes. Called for every heartbeat of every worker: cheap, no I/O. */
  add(routes: readonly RouteStats[]): void {
    if (!Array.isArray(routes) || routes.length === 0) return;
    const now = this.now();
    const hour = this.hour(now);
    for (const r of routes) {
      if (typeof r?.route !== 'string' || !(n(r.count) > 0)) continue;
      const hist = Array.isArray(r.hist) ? r.hist : [];
      addInto(this.day(r.route, now), r.count, r.sumMs, r.maxMs, hist);
      hour.count += n(r.count);
      hour.sumMs += n(r.sumMs);
    }
    this.out.changed();
  }

  /** One dump written: counts a slow or killed request on its route, beyond the dumps' rotation. */
  noteDump(dump: Pick<Dump, 'reason' | 'action' | 'request' | 'time' | 'collateral'>): void {
    const killed = dump.action === 'killed';
    const slow = dump.reason === 'slow';
    if (!killed && !slow) return;
    const t = Date.parse(dump.time);
    const now = Number.isFinite(t) ? t : this.now();
    const route = dump.request ? normalizeRoute(dump.request.url) : OTHER;
    const d = this.day(route, now);
    const h = this.hour(now);
    if (killed) { d.killed++; h.killed++; }
    if (slow) { d.slow++; h.slow++; }
    const collateral = killed ? dump.collateral ?? [] : [];
    d.collateralCaused += collateral.length;
    for (const r of collateral) this.day(normalizeRoute(r.url), now).collateral++;
    this.out.changed();
  }

  /** Requests a quarantine answered with 503 (a heartbeat's `quarantined`). */
  noteQuarantined(list: ReadonlyArray<{ route: string; count: number }> | undefined): void {
    if (!Array.isArray(list) || list.length === 0) return;
    const now = this.now();
    for (const q of list) if (typeof q?.route === 'string') this.day(q.route, now).quarantined += n(q.count);
    this.out.changed();
  }

  /** Per-route totals over the kept days: what the report reads. */
  snapshot(): RouteStatsData {
    this.prune(this.now());
    return toData([this.toFile()], [this.file], []);
  }

  /** Writes the file if anything changed (stats-file.ts); never rejects. The master calls it every ~10 s and at exit. */
  flush(): Promise<void> {
    return this.out.flush();
  }

  private day(route: string, now: number): Totals {
    const dayStart = Math.floor(now / DAY_MS) * DAY_MS;
    let days = this.routes.get(route);
    if (!days) {
      while (this.routes.size >= this.maxRoutes && this.evict()) { /* until there is room */ }
      days = this.routes.get(route);
      if (!days) this.routes.set(route, (days = []));
    }
    let d = days.find((x) => x.day === dayStart);
    if (!d) days.push((d = { day: dayStart, ...fresh() }));
    return d;
  }

  /**
   * Folds the route that consumed the least time into `(other)`: its counts stay in the totals, and a crawler
   * that invents routes only ever displaces other rarely-hit routes, never the ones that matter.
   */
  private evict(): boolean {
    let victim: string | undefined;
    let least = Infinity;
    for (const [route, days] of this.routes) {
      if (route === OTHER) continue;
      const ms = days.reduce((a, d) => a + d.sumMs, 0);
      if (ms < least) { least = ms; victim = route; }
    }
    if (victim === undefined) return false;
    const gone = this.routes.get(victim)!;
    this.routes.delete(victim);
    let other = this.routes.get(OTHER);
    if (!other) this.routes.set(OTHER, (other = []));
    for (const d of gone) {
      const into = other.find((x) => x.day === d.day);
      if (into) merge(into, d); else other.push({ ...d, hist: [...d.hist] });
    }
    return true;
  }

  private hour(now: number): HourTotals {
    const start = Math.floor(now / HOUR_MS) * HOUR_MS;
    const last = this.hours[this.hours.length - 1];
    if (last && last.hour === start) return last;
    let h = this.hours.find((x) => x.hour === start);
    if (!h) {
      this.hours.push((h = { hour: start, count: 0, sumMs: 0, slow: 0, killed: 0 }));
      this.hours.sort((a, b) => a.hour - b.hour);
    }
    return h;
  }

  private prune(now: number): void {
    const firstDay = Math.floor(now / DAY_MS) * DAY_MS - (this.keepDays - 1) * DAY_MS;
    for (const [route, days] of this.routes) {
      const kept = days.filter((d) => d.day >= firstDay);
      if (kept.length === 0) this.routes.delete(route);
      else if (kept.length !== days.length) this.routes.set(route, kept);
    }
    const firstHour = now - this.keepDays * DAY_MS;
    this.hours = this.hours.filter((h) => h.hour >= firstHour);
  }

  private toFile(): StatsFile {
    return {
      version: STATS_VERSION, name: this.name, bucketsMs: [...LATENCY_BUCKETS_MS], updatedAt: new Date(this.now()).toISOString(),
      routes: [...this.routes].map(([route, days]) => ({ route, days })), hours: this.hours,
    };
  }

  /** Merges what a previous master wrote, so history survives restarts. */
  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      // No file yet (or no dir yet): a first start. Writing will say if the dir is unusable.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.out.report(new Error(`cannot read route stats ${this.file}: ${(e as Error).message}`));
      return;
    }
    try {
      const f = parseStatsFile(text);
      for (const r of f.routes) {
        for (const d of r.days) {
          const t = this.day(r.route, d.day);
          merge(t, d);
        }
      }
      for (const h of f.hours) {
        const t = this.hour(h.hour);
        t.count += h.count; t.sumMs += h.sumMs; t.slow += h.slow; t.killed += h.killed;
      }
      this.prune(this.now());
    } catch (e) {
      this.out.report(new Error(`ignoring route stats ${this.file}: ${(e as Error).message}`));
    }
  }
}

// ─── reading the files back (the report) ────────────────────────────────────

function obj(u: unknown): Record<string, unknown> {
  if (typeof u !== 'object' || u === null || Array.isArray(u)) throw new Error('malformed');
  return u as Record<string, unknown>;
}

function totals(o: Record<string, unknown>): Totals {
  const t = fresh();
  addInto(t, n(o.count), n(o.sumMs), n(o.maxMs), Array.isArray(o.hist) ? o.hist : []);
  t.slow = n(o.slow);
  t.killed = n(o.killed);
  t.collateral = n(o.collateral);
  t.collateralCaused = n(o.collateralCaused);
  t.quarantined = n(o.quarantined);
  return t;
}

/** Validates a stats file; throws when it cannot be merged (another format, other bucket bounds). */
export function parseStatsFile(text: string): StatsFile {
  const o = obj(JSON.parse(text));
  if (o.version !== STATS_VERSION) throw new Error(`version ${String(o.version)}, expected ${STATS_VERSION}`);
  const b = o.bucketsMs;
  if (!Array.isArray(b) || b.length !== LATENCY_BUCKETS_MS.length || b.some((x, i) => x !== LATENCY_BUCKETS_MS[i])) {
    throw new Error('written with other latency buckets: cannot merge');
  }
  const routes = (Array.isArray(o.routes) ? o.routes : []).map((u) => {
    const r = obj(u);
    const days = (Array.isArray(r.days) ? r.days : []).map((x) => {
      const d = obj(x);
      return { day: n(d.day), ...totals(d) };
    });
    return { route: String(r.route), days };
  });
  const hours = (Array.isArray(o.hours) ? o.hours : []).map((u) => {
    const h = obj(u);
    return { hour: n(h.hour), count: n(h.count), sumMs: n(h.sumMs), slow: n(h.slow), killed: n(h.killed) };
  });
  return { version: STATS_VERSION, name: typeof o.name === 'string' ? o.name : '', bucketsMs: [...LATENCY_BUCKETS_MS], updatedAt: String(o.updatedAt ?? ''), routes, hours };
}

function toData(files: StatsFile[], paths: string[], problems: string[]): RouteStatsData {
  const byRoute = new Map<string, Totals>();
  const byHour = new Map<number, HourTotals>();
  let from = Infinity;
  let to = -Infinity;
  let updated = -Infinity;
  // Hours say when the data starts to the hour; a day bucket only to the day (its midnight would mislead).
  let dayFrom = Infinity;
  for (const f of files) {
    for (const r of f.routes) {
      let t = byRoute.get(r.route);
      if (!t) byRoute.set(r.route, (t = fresh()));
      for (const d of r.days) {
        merge(t, d);
        dayFrom = Math.min(dayFrom, d.day);
        to = Math.max(to, d.day + DAY_MS);
      }
    }
    for (const h of f.hours) {
      const t = byHour.get(h.hour) ?? { hour: h.hour, count: 0, sumMs: 0, slow: 0, killed: 0 };
      t.count += h.count; t.sumMs += h.sumMs; t.slow += h.slow; t.killed += h.killed;
      byHour.set(h.hour, t);
      from = Math.min(from, h.hour);
      to = Math.max(to, h.hour + HOUR_MS);
    }
    // The window ends when the file was last written, not at the end of its last day.
    const u = Date.parse(f.updatedAt);
    if (Number.isFinite(u)) updated = Math.max(updated, u);
  }
  if (Number.isFinite(updated)) to = updated;
  if (!Number.isFinite(from)) from = dayFrom;
  const routes: RouteTotals[] = [...byRoute].map(([route, t]) => ({ route, ...t }));
  return {
    files: paths, routes, hours: [...byHour.values()].sort((a, b) => a.hour - b.hour),
    from: Number.isFinite(from) ? from : undefined, to: Number.isFinite(to) ? to : undefined, problems,
  };
}

/**
 * The route stats files in `dumpDir` (those of supervisor `name` when given), merged: what `superv report`
 * shows. A missing dir or file is no error (the report then says so); a file it cannot read is a problem line.
 */
/**
 * The stats files of one dump dir, or of several merged (the dump dirs of many hosts): a file found twice
 * with the same content (the same host's copy gathered twice) counts once.
 */
export async function readRouteStats(dumpDirs: string | readonly string[], name?: string): Promise<RouteStatsData> {
  const files: StatsFile[] = [];
  const paths: string[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const dumpDir of typeof dumpDirs === 'string' ? [dumpDirs] : dumpDirs) {
    const names = await fs.readdir(dumpDir).catch(() => [] as string[]);
    for (const f of names.filter((x) => FILE_NAME.test(x)).sort()) {
      const path = join(dumpDir, f);
      try {
        const text = await fs.readFile(path, 'utf8');
        if (seen.has(text)) continue;
        seen.add(text);
        const parsed = parseStatsFile(text);
        if (name !== undefined && parsed.name !== name) continue;
        files.push(parsed);
        paths.push(path);
      } catch (e) {
        problems.push(`${f}: ${(e as Error).message}`);
      }
    }
  }
  return toData(files, paths, problems);
}
