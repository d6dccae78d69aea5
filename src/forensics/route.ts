// Normalizes a request URL to a route with bounded cardinality: `/users/42/orders?x=1` → `/users/:id/orders`.
// Used for per-route latency (report, metrics), never on the per-request path: the worker normalizes a
// batch once per heartbeat.

const MAX_ROUTE_LENGTH = 120;
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
  if (!path.startsWith('/')) return '(other)';
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
