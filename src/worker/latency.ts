// Turns the tracker's ring of finished requests into per-route histograms, once per heartbeat, and sets
// the sampling rate for the next interval (see RequestTracker.doneUrls).

import { cappedRoute, OTHER_ROUTE, ROUTE_CAPS, RouteCache } from '../dump/route';
import { LATENCY_BUCKETS_MS } from '../dump/stats';
import type { RouteStats } from '../protocol';
import { SAMPLE_TARGET } from './tracker';

export function bucketOf(ms: number): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]!) return i;
  return LATENCY_BUCKETS_MS.length;
}

/** 2^k - 1 for the smallest k that keeps `finished` requests per interval near SAMPLE_TARGET samples. */
export function sampleMaskFor(finished: number): number {
  let stride = 1;
  while (finished / stride > SAMPLE_TARGET && stride < 1 << 20) stride *= 2;
  return stride - 1;
}

/** What collectRoutes reads: the tracker's ring, or a test's. */
export interface FinishedRequests {
  doneUrls: Array<string | undefined>;
  doneMs: Float64Array;
  doneLong: Uint8Array;
  doneCount: number;
  doneTotal: number;
  quickRecorded: number;
  sampleMask: number;
}

export function collectRoutes(t: FinishedRequests, cache: RouteCache): RouteStats[] {
  const n = t.doneCount;
  const longRecorded = n - t.quickRecorded;
  // Each recorded quick request stands for this many (1 when all were recorded); long ones for one.
  const weight = t.quickRecorded > 0 ? (t.doneTotal - longRecorded) / t.quickRecorded : 1;
  const byRoute = new Map<string, RouteStats>();
  for (let i = 0; i < n; i++) {
    const url = t.doneUrls[i];
    t.doneUrls[i] = undefined;
    const route = url === undefined ? OTHER_ROUTE : cappedRoute(byRoute, cache.route(url), ROUTE_CAPS.heartbeat);
    let r = byRoute.get(route);
    if (!r) {
      r = { route, count: 0, sumMs: 0, maxMs: 0, hist: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) };
      byRoute.set(route, r);
    }
    const ms = t.doneMs[i]!;
    const w = t.doneLong[i] === 1 ? 1 : weight;
    r.count += w;
    r.sumMs += ms * w;
    if (ms > r.maxMs) r.maxMs = ms;
    r.hist[bucketOf(ms)]! += w;
  }
  t.sampleMask = sampleMaskFor(t.doneTotal);
  t.doneCount = 0;
  t.doneTotal = 0;
  t.quickRecorded = 0;
  const out = [...byRoute.values()];
  if (weight !== 1) {
    for (const r of out) {
      r.count = Math.round(r.count);
      r.sumMs = Math.round(r.sumMs);
      r.hist = r.hist.map((c) => Math.round(c));
    }
  }
  return out;
}
