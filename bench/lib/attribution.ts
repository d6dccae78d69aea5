// Attribution error: how much CPU a profiler credits to each route, against what the route is known to burn.
// The app is test/fixtures/cpu-routes.js (also the attribution test's), whose routes burn a known CPU time per
// request; the bench sends each a known number of times, interleaved over a few keep-alive connections, and reads
// each profiler's per-route CPU: superv's from `superv report NAME --json` (cpu.routes), @datadog/pprof's from the
// totals its preload folds out of its profiles (bench/fixtures/pprof-preload.js).

import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep } from './proc';
import { REPO, SUPERV_CLI } from './paths';

const run = promisify(execFile);

export const ATTRIB_APP = join(REPO, 'test', 'fixtures', 'cpu-routes.js');

export interface KnownRoute {
  path: string;
  /** The route's key in both profilers' output (the path without its query). */
  route: string;
  /** CPU ms each request burns (its own HTTP parsing and writing aside). */
  ms: number;
  /** Part of the pass/fail check: /after is not (on Node 20 superv credits an await's continuation to no request, by design). */
  checked: boolean;
}

export const KNOWN_ROUTES: readonly KnownRoute[] = [
  { path: '/burn?ms=10', route: '/burn', ms: 10, checked: true },
  { path: '/burn4?ms=4', route: '/burn4', ms: 4, checked: true },
  { path: '/io', route: '/io', ms: 0, checked: true },
  { path: '/after?ms=5', route: '/after', ms: 5, checked: false },
];

/** The attribution test's bounds (test/cpu-e2e.test.ts): burn routes within 25 %, the await-only route under 0.5 ms. */
export const BURN_TOLERANCE = 0.25;
export const IO_LIMIT_MS = 0.5;

/** Every path `perPath` times, interleaved, over `connections` keep-alive connections; rejects on a non-200. */
export async function driveInterleaved(port: number, paths: readonly string[], perPath: number, connections: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let i = 0;
  const one = (path: string) => new Promise<void>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${path}: ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer in 30 s`)));
    req.on('error', reject);
  });
  try {
    await Promise.all(Array.from({ length: connections }, async () => {
      while (i < perPath * paths.length) await one(paths[i++ % paths.length]!);
    }));
  } finally {
    agent.destroy();
  }
}

/** superv's CPU ms per route, from the running master (live report). */
export async function supervRouteCpu(runDir: string, name: string): Promise<Map<string, number>> {
  const { stdout } = await run(process.execPath, [SUPERV_CLI, 'report', name, '--json'],
    { env: { ...process.env, SUPERV_RUN_DIR: runDir }, maxBuffer: 64 * 2 ** 20, timeout: 30_000 });
  const cpu = (JSON.parse(stdout) as { cpu?: { routes?: Array<{ route: string; cpuMs: number }> } | null }).cpu;
  if (!cpu?.routes) throw new Error(`superv report ${name} --json has no cpu section`);
  return new Map(cpu.routes.map((r) => [r.route, r.cpuMs]));
}

export interface PprofRoute {
  samples: number;
  wallNs: number;
  cpuNs: number;
}

export interface PprofTotals {
  routes: Map<string, PprofRoute>;
  /** How the label followed the request: AsyncContextFrame (Node 24) or an async hook (Node 20). */
  useCPED: boolean;
  /** Profiles V8 returned empty (its profiler's event processor stuck), summed over the workers. */
  stuck: number;
}

/**
 * Asks each worker's preload for its totals (a `collect-N` file in its dir) and sums them; fails when a worker
 * does not answer within `timeoutMs` (no profiler loaded, or the preload failed: its stderr says why).
 */
export async function pprofRouteCpu(dir: string, pids: readonly number[], seq: number, timeoutMs = 15_000): Promise<PprofTotals> {
  writeFileSync(join(dir, `collect-${seq}`), '');
  const files = pids.map((p) => join(dir, `pprof-${p}-${seq}.json`));
  const deadline = Date.now() + timeoutMs;
  while (!files.every((f) => existsSync(f))) {
    if (Date.now() > deadline) throw new Error(`no @datadog/pprof totals from worker(s) ${pids.filter((_, i) => !existsSync(files[i]!)).join(', ')} in ${timeoutMs} ms`);
    await sleep(100);
  }
  const routes = new Map<string, PprofRoute>();
  let useCPED = false;
  let stuck = 0;
  for (const f of files) {
    const t = JSON.parse(readFileSync(f, 'utf8')) as { useCPED: boolean; stuck: number; routes: Record<string, PprofRoute> };
    useCPED = t.useCPED;
    stuck += t.stuck;
    for (const [route, v] of Object.entries(t.routes)) {
      const sum = routes.get(route) ?? { samples: 0, wallNs: 0, cpuNs: 0 };
      routes.set(route, { samples: sum.samples + v.samples, wallNs: sum.wallNs + v.wallNs, cpuNs: sum.cpuNs + v.cpuNs });
    }
  }
  return { routes, useCPED, stuck };
}

/** Relative error of a burn route, absolute ms for a route that burns nothing. */
export function routeError(r: KnownRoute, msPerRequest: number): number {
  return r.ms > 0 ? msPerRequest / r.ms - 1 : msPerRequest;
}

/** Within the attribution test's bounds, on the checked routes. */
export function withinBounds(measured: ReadonlyMap<string, number>): boolean {
  return KNOWN_ROUTES.filter((r) => r.checked).every((r) => {
    const m = measured.get(r.route);
    if (m === undefined || !Number.isFinite(m)) return r.ms === 0;
    return r.ms > 0 ? Math.abs(routeError(r, m)) <= BURN_TOLERANCE : m < IO_LIMIT_MS;
  });
}
