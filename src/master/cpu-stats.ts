// Per-route CPU, kept by the master from the workers' sample windows (worker/cpu-sampler.ts) and written next to
// the dumps as `.superv-cpu-<name>.json` (0600, atomic rename) every few seconds and at exit, so `superv report`
// shows it live, after a restart, for a stopped supervisor and for a directory copied from another host.
// A file a previous master wrote is merged in at start: the totals run from the file's `since`.
//
// Bounded whatever the traffic: routes are capped like the route stats (the rest fold into `(other)`), folded
// stacks at MAX_STACKS (a new stack past it counts for its route only), and each worker's recent windows (for
// the hottest functions of a timeout dump) at RECENT_MS.
//
// Frames are source-mapped (cpu-frame-map.ts): a window's frames are translated as they arrive, those not read
// yet stay generated, and what is output (the file, snapshot(), recentFunctions) is first re-keyed when more
// became mapped since, merging the stacks that became identical: a function never shows twice, raw and mapped.

import { promises as fs, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { functionsOf, IDLE_ROUTE, type CpuTotals, type CpuWindow, type FrameKey } from '../dump/cpu';
import { CpuFrameMap } from './cpu-frame-map';
import type { DumpCpu } from '../dump/types';
import { cappedRoute, ROUTE_CAPS } from '../dump/route';
import type { RouteStats } from '../protocol';
import { StatsFileWriter, statsFilePath } from './stats-file';

export const CPU_STATS_VERSION = 1;
const FILE_NAME = /^\.superv-cpu-(.+)\.json$/;
/** Folded stacks kept over the file's life. */
const MAX_STACKS = 5000;
/** Frames per stack (the sampler sends at most CPU_SAMPLE_FRAMES; a file from elsewhere may not). */
const MAX_DEPTH = 128;
/** How much of each worker's recent samples a timeout dump can show. */
export const RECENT_MS = 10_000;

export function cpuStatsFile(dumpDir: string, name: string): string {
  return statsFilePath(dumpDir, 'cpu', name);
}

interface CpuFile extends CpuTotals {
  version: number;
  name: string;
}

// Numbers come over the pipe from workers running app code: keep only finite, non-negative ones.
const n = (u: unknown): number => (typeof u === 'number' && Number.isFinite(u) && u > 0 ? u : 0);

interface Stack { route: string; frames: FrameKey[]; ms: number }

/** The one key of a folded stack (a bare route, `route\n`, holds the stacks past MAX_STACKS). */
export function stackKey(route: string, frames: readonly FrameKey[]): string {
  return `${route}\n${frames.join('\n')}`;
}

/**
 * The stacks with their frames translated, those that became identical merged (their ms summed), in first-seen
 * order. Pure: the store re-keys with it when frames became source-mapped.
 */
export function remapStacks(stacks: Iterable<Stack>, translate: (key: FrameKey) => FrameKey): Map<string, Stack> {
  const out = new Map<string, Stack>();
  for (const s of stacks) {
    const frames = s.frames.map(translate);
    const key = stackKey(s.route, frames);
    const t = out.get(key);
    if (t === undefined) out.set(key, { route: s.route, frames, ms: s.ms });
    else t.ms += s.ms;
  }
  return out;
}

/** What the store needs of the frame map (cpu-frame-map.ts); a test can give its own. */
export type FrameMapper = Pick<CpuFrameMap, 'translate' | 'note' | 'generation' | 'settled' | 'revalidate'>;

export interface CpuStatsOptions {
  onError?: (err: Error) => void;
  now?: () => number;
  frames?: FrameMapper;
}

export class CpuStatsStore {
  private readonly routes = new Map<string, { cpuMs: number; requests: number }>();
  private stacks = new Map<string, Stack>();
  private readonly recent = new Map<number, Array<{ at: number; stacks: Array<{ frames: FrameKey[]; ms: number }> }>>();
  private since: number;
  private to = 0;
  private readonly out: StatsFileWriter;
  private readonly now: () => number;
  private readonly frames: FrameMapper;
  /** The frame map's generation the stored stacks were last re-keyed at. */
  private mappedAt = 0;

  constructor(readonly file: string, private readonly name: string, opts: CpuStatsOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.frames = opts.frames ?? new CpuFrameMap();
    this.since = this.now();
    this.out = new StatsFileWriter(file, 'CPU stats', () => JSON.stringify(this.toFile()) + '\n', opts.onError ?? (() => undefined));
    this.load();
  }

  /** One worker's window: cheap, no I/O. Returns the ms added per route (for the metrics counter). */
  addWindow(worker: number, w: CpuWindow): Map<string, number> {
    const added = new Map<string, number>();
    if (!Array.isArray(w?.stacks) || !Array.isArray(w.frames)) return added;
    const now = this.now();
    // Each distinct frame of the window once: known ones are translated now, the others queued for reading.
    this.frames.note(w.frames);
    const table = w.frames.map((f) => (typeof f === 'string' ? this.frames.translate(f) : undefined));
    const recent: Array<{ frames: FrameKey[]; ms: number }> = [];
    for (const s of w.stacks) {
      if (!Array.isArray(s) || typeof s[0] !== 'string' || !Array.isArray(s[1])) continue;
      const ms = n(s[2]);
      const route = this.route(s[0]);
      const frames = s[1].slice(-MAX_DEPTH).map((i) => table[i as number]).filter((f): f is string => typeof f === 'string');
      this.routes.get(route)!.cpuMs += ms;
      added.set(route, (added.get(route) ?? 0) + ms);
      this.addStack(route, frames, ms);
      if (route !== IDLE_ROUTE) recent.push({ frames, ms });
    }
    const list = this.recent.get(worker) ?? [];
    list.push({ at: now, stacks: recent });
    this.recent.set(worker, list);
    // Also forgets the workers that are gone: nothing of theirs is newer than RECENT_MS.
    for (const [w, l] of this.recent) {
      while (l.length > 0 && l[0]!.at < now - RECENT_MS) l.shift();
      if (l.length === 0) this.recent.delete(w);
    }
    this.to = now;
    this.out.changed();
    return added;
  }

  /** A heartbeat's finished requests: the denominator of CPU per request, over the same period as the CPU. */
  addRequests(routes: readonly RouteStats[]): void {
    if (!Array.isArray(routes)) return;
    for (const r of routes) {
      if (typeof r?.route !== 'string') continue;
      this.routes.get(this.route(r.route))!.requests += n(r.count);
    }
    this.out.changed();
  }

  /** The hottest functions of one worker over its last `ms` of samples (a timeout dump's). */
  recentFunctions(worker: number, ms = RECENT_MS): DumpCpu | undefined {
    this.remap();
    const from = this.now() - ms;
    const windows = (this.recent.get(worker) ?? []).filter((x) => x.at >= from);
    if (windows.length === 0) return undefined;
    const stacks = windows.flatMap((x) => x.stacks);
    return { windowMs: ms, cpuMs: Math.round(stacks.reduce((a, s) => a + s.ms, 0)), functions: functionsOf(stacks, 10) };
  }

  snapshot(): CpuTotals {
    return this.toFile();
  }

  /** Waits up to `ms` for the frames queued for source-mapping: a live report right after a window then has them. */
  settled(ms: number): Promise<void> {
    return this.frames.settled(ms);
  }

  /** Writes the file if anything changed (stats-file.ts), frames newly mapped included; never rejects. */
  flush(): Promise<void> {
    void this.frames.revalidate().catch(() => undefined);
    if (this.frames.generation !== this.mappedAt) this.out.changed();
    return this.out.flush();
  }

  private route(r: string): string {
    const route = cappedRoute(this.routes, r, ROUTE_CAPS.statsFile);
    if (!this.routes.has(route)) this.routes.set(route, { cpuMs: 0, requests: 0 });
    return route;
  }

  private addStack(route: string, frames: FrameKey[], ms: number): void {
    const key = stackKey(route, frames);
    let s = this.stacks.get(key);
    if (s === undefined) {
      const bare = stackKey(route, []);
      if (this.stacks.size >= MAX_STACKS) s = this.stacks.get(bare) ?? { route, frames: [], ms: 0 };
      else s = { route, frames, ms: 0 };
      this.stacks.set(s.frames.length === 0 ? bare : key, s);
    }
    s.ms += ms;
  }

  /** Re-keys the stored stacks and recent windows when frames became mapped since the last time. */
  private remap(): void {
    const gen = this.frames.generation;
    if (gen === this.mappedAt) return;
    this.mappedAt = gen;
    const translate = (key: FrameKey) => this.frames.translate(key);
    this.stacks = remapStacks(this.stacks.values(), translate);
    for (const list of this.recent.values()) for (const w of list) for (const s of w.stacks) s.frames = s.frames.map(translate);
  }

  private toFile(): CpuFile {
    this.remap();
    const round = (x: number) => Math.round(x * 100) / 100;
    return {
      version: CPU_STATS_VERSION, name: this.name, since: this.since, to: this.to || this.since,
      routes: [...this.routes].map(([route, r]) => ({ route, cpuMs: round(r.cpuMs), requests: r.requests })),
      stacks: [...this.stacks.values()].map((s) => ({ route: s.route, frames: s.frames, ms: round(s.ms) })),
    };
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return; // a first start: writing will say if the dir is unusable
    }
    try {
      const f = parseCpuFile(text);
      this.since = Math.min(this.since, f.since);
      this.to = f.to;
      for (const r of f.routes) {
        const t = this.routes.get(this.route(r.route))!;
        t.cpuMs += r.cpuMs;
        t.requests += r.requests;
      }
      // A file written before its frames were mapped (or by an older superv) is mapped as it is read: its
      // stacks are re-keyed at the next output.
      for (const s of f.stacks) {
        this.frames.note(s.frames);
        this.addStack(this.route(s.route), s.frames.map((k) => this.frames.translate(k)), s.ms);
      }
    } catch (e) {
      this.out.report(new Error(`ignoring CPU stats ${this.file}: ${(e as Error).message}`));
    }
  }
}

function obj(u: unknown): Record<string, unknown> {
  if (typeof u !== 'object' || u === null || Array.isArray(u)) throw new Error('malformed');
  return u as Record<string, unknown>;
}

/** Validates a CPU stats file; throws when it is not one. */
export function parseCpuFile(text: string): CpuFile {
  const o = obj(JSON.parse(text));
  if (o.version !== CPU_STATS_VERSION) throw new Error(`version ${String(o.version)}, expected ${CPU_STATS_VERSION}`);
  const routes = (Array.isArray(o.routes) ? o.routes : []).map((u) => {
    const r = obj(u);
    return { route: String(r.route), cpuMs: n(r.cpuMs), requests: n(r.requests) };
  });
  const stacks = (Array.isArray(o.stacks) ? o.stacks : []).map((u) => {
    const s = obj(u);
    const frames = (Array.isArray(s.frames) ? s.frames : []).filter((f): f is string => typeof f === 'string').slice(-MAX_DEPTH);
    return { route: String(s.route), frames, ms: n(s.ms) };
  });
  return { version: CPU_STATS_VERSION, name: typeof o.name === 'string' ? o.name : '', since: n(o.since), to: n(o.to), routes, stacks };
}

/**
 * The CPU stats files in `dumpDirs` (those of supervisor `name` when given), merged, with a problem line per file
 * it could not read. Identical files (a dir copied twice, or given twice) count once, as dumps do. Undefined
 * when there is none.
 */
export async function readCpuStats(dumpDirs: string | readonly string[], name?: string): Promise<{ totals?: CpuTotals; files: string[]; problems: string[] }> {
  const dirs = typeof dumpDirs === 'string' ? [dumpDirs] : dumpDirs;
  const problems: string[] = [];
  const files: string[] = [];
  const seen = new Set<string>();
  const routes = new Map<string, { cpuMs: number; requests: number }>();
  const stacks = new Map<string, { route: string; frames: FrameKey[]; ms: number }>();
  let since = Infinity;
  let to = 0;
  for (const dumpDir of dirs) {
    const names = await fs.readdir(dumpDir).catch(() => [] as string[]);
    for (const f of names.filter((x) => FILE_NAME.test(x)).sort()) {
      try {
        const text = await fs.readFile(join(dumpDir, f), 'utf8');
        if (seen.has(text)) continue;
        seen.add(text);
        const parsed = parseCpuFile(text);
        if (name !== undefined && parsed.name !== name) continue;
        files.push(dirs.length > 1 ? join(dumpDir, f) : basename(f));
        since = Math.min(since, parsed.since);
        to = Math.max(to, parsed.to);
        for (const r of parsed.routes) {
          const t = routes.get(r.route) ?? { cpuMs: 0, requests: 0 };
          t.cpuMs += r.cpuMs;
          t.requests += r.requests;
          routes.set(r.route, t);
        }
        for (const st of parsed.stacks) {
          const key = stackKey(st.route, st.frames);
          const t = stacks.get(key) ?? { route: st.route, frames: st.frames, ms: 0 };
          t.ms += st.ms;
          stacks.set(key, t);
        }
      } catch (e) {
        problems.push(`${f}: ${(e as Error).message}`);
      }
    }
  }
  if (files.length === 0) return { files, problems };
  return {
    files, problems,
    totals: { since, to, routes: [...routes].map(([route, r]) => ({ route, ...r })), stacks: [...stacks.values()] },
  };
}
