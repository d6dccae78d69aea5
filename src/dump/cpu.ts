// CPU samples as they travel and rest: a worker's window of samples (watchdog → master), the master's
// totals (stats file → `superv report`), and the functions table derived from stacks. Pure: no I/O.

/** Samples taken while no JS ran: the loop was waiting for I/O or timers. */
export const IDLE_ROUTE = '(idle)';
/** Samples of JS running outside any request: timers, startup, background work. */
export const NO_REQUEST_ROUTE = '(no request)';

/** One frame: `function \t file \t line` (line 1-based; the function is '' when anonymous). */
export type FrameKey = string;

/** One worker's samples over about a second, aggregated by route and stack. */
export interface CpuWindow {
  /** Wall ms the window covers (from its first sample's start to its last). */
  ms: number;
  samples: number;
  /** Frames referenced by `stacks`, by index. */
  frames: FrameKey[];
  /** [route, frame indexes outermost first, ms attributed]. An empty stack is a sample whose frames were dropped. */
  stacks: Array<[string, number[], number]>;
}

export interface CpuFunction {
  name: string;
  file: string;
  line: number;
  /** Ms of samples in which it was the innermost frame. */
  selfMs: number;
  /** Ms of samples in which it was on the stack (once per sample, however deep its recursion). */
  totalMs: number;
}

export interface CpuRoute {
  route: string;
  cpuMs: number;
  /** Requests of the route counted over the same period (0 for the idle and no-request rows). */
  requests: number;
}

/** What the stats file keeps and the report reads: per route, and per route and stack (bounded). */
export interface CpuTotals {
  /** Epoch ms the totals start from. */
  since: number;
  /** Epoch ms of the last sample. */
  to: number;
  routes: CpuRoute[];
  /** Folded stacks: frames outermost first, as FrameKeys. */
  stacks: Array<{ route: string; frames: FrameKey[]; ms: number }>;
}

export function parseFrame(key: FrameKey): { name: string; file: string; line: number } {
  const [name = '', file = '', line = '0'] = key.split('\t');
  return { name, file, line: Number(line) || 0 };
}

/**
 * Self and total ms per function (by name and file: a sample's line is where it was in the function, so one
 * function has many), from folded stacks, heaviest self first; `line` is its line with the most self time.
 */
export function functionsOf(stacks: Iterable<{ frames: readonly FrameKey[]; ms: number }>, limit = 30): CpuFunction[] {
  const fns = new Map<string, { name: string; file: string; selfMs: number; totalMs: number; lines: Map<number, number> }>();
  const fnOf = (key: FrameKey) => {
    const f = parseFrame(key);
    const id = `${f.name}\t${f.file}`;
    let e = fns.get(id);
    if (!e) fns.set(id, (e = { name: f.name, file: f.file, selfMs: 0, totalMs: 0, lines: new Map() }));
    return { e, line: f.line, id };
  };
  for (const s of stacks) {
    if (s.frames.length === 0) continue;
    const leaf = fnOf(s.frames[s.frames.length - 1]!);
    leaf.e.selfMs += s.ms;
    leaf.e.lines.set(leaf.line, (leaf.e.lines.get(leaf.line) ?? 0) + s.ms);
    const seen = new Set<string>();
    for (const key of s.frames) {
      const { e, line, id } = fnOf(key);
      if (!e.lines.has(line)) e.lines.set(line, 0);
      if (seen.has(id)) continue;
      seen.add(id);
      e.totalMs += s.ms;
    }
  }
  return [...fns.values()].map((e) => {
    let line = 0;
    let best = -1;
    for (const [l, ms] of e.lines) if (ms > best) { best = ms; line = l; }
    return { name: e.name, file: e.file, line, selfMs: e.selfMs, totalMs: e.totalMs };
  }).sort((a, b) => b.selfMs - a.selfMs || b.totalMs - a.totalMs).slice(0, limit);
}

/** Whether a route label is one of the sampler's own (idle, no request) rather than a request's route. */
export function isRequestRoute(route: string): boolean {
  return route !== IDLE_ROUTE && route !== NO_REQUEST_ROUTE;
}
