// The worker's heartbeat over cluster IPC: a few numbers and the oldest requests, once per interval.
// Its absence is how the master knows the event loop is blocked. It respects IPC back-pressure: a
// heartbeat is skipped while the previous one is unsent, rather than buffered without bound.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { redactUrl } from '../forensics/redact';
import { RouteCache } from '../forensics/route';
import { collectRoutes } from './latency';
import { IPC_CMD, type Heartbeat, type WorkerToMaster } from '../protocol';
import type { RequestTracker } from './tracker';

const OLDEST_REPORTED = 5;

export interface LoopDelay {
  read(): Heartbeat['eventLoopDelay'];
  /** Starts a new window: each heartbeat reports the delay since the last one. */
  reset(): void;
}

export function eventLoopDelayMonitor(): LoopDelay {
  const h = monitorEventLoopDelay({ resolution: 20 });
  h.enable();
  return {
    read: () => {
      const r = { meanMs: round(h.mean / 1e6), p99Ms: round(h.percentile(99) / 1e6), maxMs: round(h.max / 1e6) };
      return Number.isNaN(r.meanMs) ? { meanMs: 0, p99Ms: 0, maxMs: 0 } : r;
    },
    reset: () => h.reset(),
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

export function startHeartbeat(tracker: RequestTracker, intervalMs: number, eld: LoopDelay): NodeJS.Timeout {
  let sending = false;
  const routes = new RouteCache();
  const beat = () => {
    tracker.sweep();
    if (sending || !process.connected || !process.send) return;
    const mem = process.memoryUsage();
    const hb: Heartbeat = {
      routes: collectRoutes(tracker, routes),
      inflight: tracker.inflight,
      oldest: tracker.list(OLDEST_REPORTED, false).map((r) => ({ ...r, url: redactUrl(r.url) })),
      served: tracker.served,
      eventLoopDelay: eld.read(),
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external },
    };
    eld.reset();
    sending = true;
    const msg: WorkerToMaster = { cmd: IPC_CMD, act: 'heartbeat', hb };
    process.send(msg, undefined, {}, () => { sending = false; });
  };
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  setImmediate(beat);
  return timer;
}
