// Turns the tracker's ring of finished requests into per-route histograms, once per heartbeat.

import { RouteCache } from '../forensics/route';
import { LATENCY_BUCKETS_MS, type RouteStats } from '../protocol';
import type { RequestTracker } from './tracker';

/** Routes per heartbeat; the rest fold into `(other)` so a crawler cannot flood the master. */
const MAX_ROUTES = 100;

export function bucketOf(ms: number): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]!) return i;
  return LATENCY_BUCKETS_MS.length;
}

export function collectRoutes(t: RequestTracker, cache: RouteCache): RouteStats[] {
  const n = t.doneCount;
  const scale = n > 0 ? t.doneTotal / n : 1;
  const byRoute = new Map<string, RouteStats>();
  for (let i = 0; i < n; i++) {
    const url = t.doneUrls[i];
    t.doneUrls[i] = undefined;
    let route = url === undefined ? '(other)' : cache.route(url);
    if (!byRoute.has(route) && byRoute.size >= MAX_ROUTES) route = '(other)';
    let r = byRoute.get(route);
    if (!r) {
      r = { route, count: 0, sumMs: 0, maxMs: 0, hist: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) };
      byRoute.set(route, r);
    }
    const ms = t.doneMs[i]!;
    r.count++;
    r.sumMs += ms;
    if (ms > r.maxMs) r.maxMs = ms;
    r.hist[bucketOf(ms)]!++;
  }
  t.doneCount = 0;
  t.doneTotal = 0;
  const out = [...byRoute.values()];
  if (scale > 1) {
    // More requests finished than the ring holds: the sample stands for all of them.
    for (const r of out) {
      r.count = Math.round(r.count * scale);
      r.sumMs = Math.round(r.sumMs * scale);
      r.hist = r.hist.map((c) => Math.round(c * scale));
    }
  }
  return out;
}
