// The per-route latency statistics as they travel and rest: histogram buckets (worker heartbeat → master →
// Prometheus and the stats file), and the totals the master's stats file holds for `superv report`.

/**
 * Upper bounds (ms) of the latency histogram buckets; one more bucket counts everything slower.
 * Shared by the worker's per-route histograms, the master's stats file, metrics and `superv report`.
 */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] as const;

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
  /** Requests of this route that died as collateral: in flight on a worker killed for another request. */
  collateral?: number;
  /** Other requests that died with the workers killed for this route's requests. */
  collateralCaused?: number;
  /** Requests answered 503 while the route was quarantined (master/poison-routes.ts). */
  quarantined?: number;
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
