// Normalizes a request URL to a route with bounded cardinality: `/users/42/orders?x=1` → `/users/:id/orders`.
// Used for per-route latency (report, metrics), never on the per-request path: the worker normalizes a
// batch once per heartbeat.

import type { InflightMore } from './types';

const MAX_ROUTE_LENGTH = 120;

/** Where routes beyond a cap are counted, in every table that keeps routes. */
export const OTHER_ROUTE = '(other)';

/**
 * How many distinct routes each table keeps, in one place. A crawler hitting random URLs must not grow any of
 * them without bound; the caps grow down the flow, since each stage sees more history than the one before it.
 */
export const ROUTE_CAPS = {
  /** Routes in one worker heartbeat (the rest fold into OTHER_ROUTE). */
  heartbeat: 100,
  /** Route label values in Prometheus (each is a time series in the user's monitoring). */
  metrics: 200,
  /** Routes in the master's stats file (the least-used one is evicted for a new one). */
  statsFile: 500,
} as const;

/** `route`, or OTHER_ROUTE when `known` is full and does not hold it yet. */
export function cappedRoute(known: ReadonlyMap<string, unknown>, route: string, cap: number): string {
  return known.has(route) || known.size < cap ? route : OTHER_ROUTE;
}
const MAX_SEGMENTS = 8;

function segment(s: string): string {
  if (s === '') return s;
  if (/^\d+$/.test(s)) return ':id';
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)) return ':uuid';
  if (/^[0-9a-f]{16,}$/i.test(s)) return ':hash';
  // Long mixed tokens (slugs with ids, base64, session ids) would make every URL its own route.
  if (s.length >= 20 && /\d/.test(s) && /^[A-Za-z0-9_=.+~-]+$/.test(s)) return ':token';
  if (s.length > 40) return ':long';
  return s;
}

export function normalizeRoute(url: string): string {
  let path = url;
  const q = path.search(/[?#]/);
  if (q >= 0) path = path.slice(0, q);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    // An absolute-form request target (proxies): keep only the path.
    const slash = path.indexOf('/', path.indexOf('//') + 2);
    path = slash >= 0 ? path.slice(slash) : '/';
  }
  if (!path.startsWith('/')) return OTHER_ROUTE;
  const parts = path.split('/').slice(1);
  const kept = parts.slice(0, MAX_SEGMENTS).map(segment);
  let route = '/' + kept.join('/');
  if (parts.length > MAX_SEGMENTS) route += '/…';
  return route.length > MAX_ROUTE_LENGTH ? route.slice(0, MAX_ROUTE_LENGTH) + '…' : route;
}

/** A bounded memo of url path → route, so a busy route is normalized once, not per request. */
export class RouteCache {
  private readonly map = new Map<string, string>();
  constructor(private readonly max = 2000) {}

  route(url: string): string {
    let r = this.map.get(url);
    if (r === undefined) {
      r = normalizeRoute(url);
      if (this.map.size >= this.max) this.map.clear();
      this.map.set(url, r);
    }
    return r;
  }
}

/** Routes a dump names in its "N more" line; the rest fold into `(other)`, so the line stays one line. */
export const MORE_ROUTES = 10;

/**
 * Counts per route of the in-flight requests a dump does not list (`4,812 more: /poll 4,800, / 12`).
 * `count` may exceed what was added: requests counted without a record (their route unknown) show as
 * `(no record)`.
 */
export function tallyRoutes(urls: readonly string[], count: number): InflightMore {
  // Paths first (long-polls differ by query only), each distinct path normalized once: 10,000 URLs through
  // normalizeRoute one by one took 160-370 ms, which a dump of a blocked worker spends out of its budget.
  const byPath = new Map<string, number>();
  for (const u of urls) {
    const q = u.search(/[?#]/);
    const p = q >= 0 ? u.slice(0, q) : u;
    byPath.set(p, (byPath.get(p) ?? 0) + 1);
  }
  const by = new Map<string, number>();
  for (const [p, n] of byPath) {
    const r = normalizeRoute(p);
    by.set(r, (by.get(r) ?? 0) + n);
  }
  const sorted = [...by].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const byRoute = sorted.slice(0, MORE_ROUTES).map(([route, n]) => ({ route, count: n }));
  const rest = sorted.slice(MORE_ROUTES).reduce((n, [, c]) => n + c, 0);
  if (rest > 0) byRoute.push({ route: '(other)', count: rest });
  const unknown = count - urls.length;
  if (unknown > 0) byRoute.push({ route: '(no record)', count: unknown });
  return { count: Math.max(count, urls.length), byRoute };
}
