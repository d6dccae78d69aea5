// Answers a quarantined route with 503 and Retry-After before the app's handler runs (the master decides
// which routes: master/poison-routes.ts). The route is matched with the same normalizeRoute() the report
// and metrics use, so what `superv report` names is what is quarantined.
//
// Free when nothing is quarantined: the check wraps the `emit` of the app's servers only while the list is
// non-empty, and puts the original back when it empties, so the usual request path is untouched.

import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:net';
import { normalizeRoute, RouteCache } from '../dump/route';
import type { QuarantinedRoute } from '../protocol';

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

export class Quarantine {
  private readonly servers = new Set<Server>();
  private routes = new Map<string, QuarantinedRoute>();
  /** Trial routes this worker already let one request of through. */
  private readonly tried = new Set<string>();
  private readonly counts = new Map<string, number>();
  private readonly originals = new Map<Server, Emit>();
  private readonly cache = new RouteCache(500);

  install(): void {
    subscribe('tracing:net.server.listen:asyncEnd', (m) => {
      const server = (m as { server: Server }).server;
      if (this.servers.has(server)) return;
      this.servers.add(server);
      if (this.routes.size > 0) this.wrap(server);
    });
  }

  /** The master's whole list. */
  set(routes: readonly QuarantinedRoute[]): void {
    const next = new Map(routes.map((r) => [normalizeRoute(r.route), r] as const));
    for (const route of this.tried) if (next.get(route)?.mode !== 'trial') this.tried.delete(route);
    this.routes = next;
    for (const s of this.servers) {
      if (next.size > 0) this.wrap(s); else this.unwrap(s);
    }
  }

  /** Requests answered 503 since the last call, by route (for the heartbeat). */
  take(): Array<{ route: string; count: number }> | undefined {
    if (this.counts.size === 0) return undefined;
    const out = [...this.counts].map(([route, count]) => ({ route, count }));
    this.counts.clear();
    return out;
  }

  private wrap(server: Server): void {
    if (this.originals.has(server)) return;
    const original = server.emit as Emit;
    this.originals.set(server, original);
    const self = this;
    server.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'request' && self.refuse(args[0] as IncomingMessage, args[1] as ServerResponse)) return true;
      return original.call(this, event, ...args);
    } as Server['emit'];
  }

  private unwrap(server: Server): void {
    const original = this.originals.get(server);
    if (!original) return;
    this.originals.delete(server);
    server.emit = original as Server['emit'];
  }

  /** Whether the request was answered here (503), not by the app. */
  private refuse(req: IncomingMessage, res: ServerResponse): boolean {
    if (!req || !res || typeof req.url !== 'string') return false;
    const route = this.cache.route(req.url);
    const q = this.routes.get(route);
    if (!q) return false;
    if (q.mode === 'trial' && !this.tried.has(route)) {
      this.tried.add(route);
      return false;
    }
    this.counts.set(route, (this.counts.get(route) ?? 0) + 1);
    const retryAfterS = Math.max(1, Math.ceil(((q.mode === 'closed' ? q.until : Date.now() + 1000) - Date.now()) / 1000));
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': String(retryAfterS), 'X-Superv-Quarantine': route });
    res.end(`503 Service Unavailable: ${route} is quarantined by superv (its requests got workers killed); retry after ${retryAfterS} s\n`);
    return true;
  }
}
