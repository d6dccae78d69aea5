// Prometheus metrics and a health check, served by the master only when --metrics-port is set (superv
// opens no port on its own). prom-client holds the counters and gauges; the request-duration histogram
// arrives pre-bucketed in heartbeats, which prom-client cannot ingest, so it is rendered here in the
// same text format.

import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { LATENCY_BUCKETS_MS } from '../dump/stats';
import type { RouteStats } from '../protocol';
import type { Logger } from './logger';
import { cappedRoute, normalizeRoute, ROUTE_CAPS } from '../dump/route';

/** Routes exported; the rest fold into `(other)` so label cardinality stays bounded. */

export interface MetricsSource {
  workersByState(): Record<string, number>;
  inflight(): number;
  upgraded(): number;
  loopDelays(): Array<{ worker: number; p99Ms: number }>;
  readyCount(): number;
}

interface RouteHist { count: number; sumMs: number; buckets: number[] }

export class Metrics {
  readonly registry = new Registry();
  private readonly restarts: Counter<'reason'>;
  private readonly kills: Counter<'reason'>;
  private readonly dumps: Counter<'reason'>;
  private readonly deaths: Counter<'kind'>;
  private readonly collateral: Counter<'route'>;
  private readonly poisonDetections: Counter<'route'>;
  private readonly quarantined: Counter<'route'>;
  private readonly routeCpu: Counter<'route'>;
  /** Route label values the CPU counter has, capped like the histogram's. */
  private readonly cpuRoutes = new Map<string, true>();
  /** The poison routes now (master/poison-routes.ts sets it). */
  poisonRoutes: () => ReadonlyArray<{ route: string; state: string }> = () => [];
  /** Route label values the collateral counter has, capped like the histogram's. */
  private readonly collateralRoutes = new Map<string, true>();
  private readonly routes = new Map<string, RouteHist>();
  private server: Server | undefined;

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    new Gauge({
      name: 'superv_workers', help: 'Workers by state', labelNames: ['state'], registers,
      collect() {
        this.reset();
        for (const [state, n] of Object.entries(source.workersByState())) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'superv_inflight_requests', help: 'Requests in flight across workers (last heartbeats)', registers,
      collect() { this.set(source.inflight()); },
    });
    new Gauge({
      name: 'superv_upgraded_connections', help: 'Upgraded connections (WebSocket) open across workers, not counted as requests (last heartbeats)',
      registers,
      collect() { this.set(source.upgraded()); },
    });
    new Gauge({
      name: 'superv_event_loop_delay_p99_seconds', help: 'p99 event-loop delay per worker over the last heartbeat',
      labelNames: ['worker'], registers,
      collect() {
        this.reset();
        for (const w of source.loopDelays()) this.set({ worker: String(w.worker) }, w.p99Ms / 1000);
      },
    });
    this.restarts = new Counter({ name: 'superv_worker_restarts_total', help: 'Workers replaced, by reason', labelNames: ['reason'], registers });
    this.kills = new Counter({ name: 'superv_worker_kills_total', help: 'Workers killed by superv, by reason', labelNames: ['reason'], registers });
    this.dumps = new Counter({ name: 'superv_dumps_total', help: 'Dumps written, by reason', labelNames: ['reason'], registers });
    this.deaths = new Counter({
      name: 'superv_worker_deaths_total', help: 'Workers that died on their own (not ended by superv), by crash kind',
      labelNames: ['kind'], registers,
    });
    const self = this;
    new Gauge({
      name: 'superv_poison_routes', help: 'Routes whose requests keep getting workers killed, by state (poison, quarantined, trial)',
      labelNames: ['route', 'state'], registers,
      collect() {
        this.reset();
        for (const r of self.poisonRoutes()) this.set({ route: r.route, state: r.state }, 1);
      },
    });
    this.poisonDetections = new Counter({
      name: 'superv_poison_route_detections_total', help: 'Times a route was found poison (poison_kills kills within poison_window)',
      labelNames: ['route'], registers,
    });
    this.quarantined = new Counter({
      name: 'superv_quarantined_requests_total', help: 'Requests answered 503 because their route was quarantined',
      labelNames: ['route'], registers,
    });
    this.routeCpu = new Counter({
      name: 'superv_route_cpu_seconds_total', labelNames: ['route'], registers,
      help: 'Main-thread CPU of the workers by normalized route, from sampling (cpu_sample_interval); (idle) and (no request) are time outside requests',
    });
    this.collateral = new Counter({
      name: 'superv_collateral_requests_total', labelNames: ['route'], registers,
      help: 'Requests that died with a worker killed for another request, by normalized route',
    });
  }

  restarted(reason: string): void { this.restarts.inc({ reason }); }
  killed(reason: string): void { this.kills.inc({ reason }); }
  dumped(reason: string): void { this.dumps.inc({ reason }); }
  died(kind: string): void { this.deaths.inc({ kind }); }

  poisonDetected(route: string): void { this.poisonDetections.inc({ route }); }
  quarantinedRequests(route: string, n: number): void { if (n > 0) this.quarantined.inc({ route }, n); }

  /** The other requests in flight on a killed worker (Dump.collateral). */
  lostWith(requests: ReadonlyArray<{ url: string }>): void {
    for (const r of requests) {
      const route = cappedRoute(this.collateralRoutes, normalizeRoute(r.url), ROUTE_CAPS.metrics);
      this.collateralRoutes.set(route, true);
      this.collateral.inc({ route });
    }
  }

  /** One worker's CPU window, as ms per route (master/cpu-stats.ts). */
  addCpu(msByRoute: ReadonlyMap<string, number>): void {
    for (const [r, ms] of msByRoute) {
      const route = cappedRoute(this.cpuRoutes, r, ROUTE_CAPS.metrics);
      this.cpuRoutes.set(route, true);
      if (ms > 0) this.routeCpu.inc({ route }, ms / 1000);
    }
  }

  addRoutes(stats: RouteStats[]): void {
    for (const r of stats) {
      const name = cappedRoute(this.routes, r.route, ROUTE_CAPS.metrics);
      let h = this.routes.get(name);
      if (!h) {
        h = { count: 0, sumMs: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) };
        this.routes.set(name, h);
      }
      h.count += r.count;
      h.sumMs += r.sumMs;
      r.hist.forEach((c, i) => { h!.buckets[i] = (h!.buckets[i] ?? 0) + c; });
    }
  }

  private histogramText(): string {
    const name = 'superv_request_duration_seconds';
    const lines = [`# HELP ${name} Request duration by normalized route`, `# TYPE ${name} histogram`];
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    for (const [route, h] of this.routes) {
      let cum = 0;
      LATENCY_BUCKETS_MS.forEach((le, i) => {
        cum += h.buckets[i] ?? 0;
        lines.push(`${name}_bucket{route="${esc(route)}",le="${le / 1000}"} ${cum}`);
      });
      lines.push(`${name}_bucket{route="${esc(route)}",le="+Inf"} ${h.count}`);
      lines.push(`${name}_sum{route="${esc(route)}"} ${h.sumMs / 1000}`);
      lines.push(`${name}_count{route="${esc(route)}"} ${h.count}`);
    }
    return lines.join('\n') + '\n';
  }

  async text(): Promise<string> {
    return (await this.registry.metrics()) + this.histogramText();
  }

  listen(port: number, host: string, log: Logger): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.url === '/metrics') {
        this.text().then((body) => {
          res.setHeader('Content-Type', this.registry.contentType);
          res.end(body);
        }, (err: Error) => { res.statusCode = 500; res.end(err.message); });
      } else if (req.url === '/healthz') {
        const ready = this.source.readyCount();
        res.statusCode = ready > 0 ? 200 : 503;
        res.end(ready > 0 ? `ok: ${ready} worker(s) ready\n` : 'no worker ready\n');
      } else {
        res.statusCode = 404;
        res.end('superv: /metrics or /healthz\n');
      }
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => {
        log.info({ event: 'metrics-listening', host, port }, `metrics on http://${host}:${port}/metrics`);
        resolve();
      });
    });
  }

  close(): void {
    this.server?.close();
    this.server?.closeAllConnections();
  }
}
