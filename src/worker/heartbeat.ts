// The worker's heartbeat over cluster IPC: a few numbers and the oldest requests, once per interval.
// Its absence is how the master knows the event loop is blocked. It respects IPC back-pressure: a
// heartbeat is skipped while the previous one is unsent, rather than buffered without bound.

import { createHistogram, performance } from 'node:perf_hooks';
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
  /** Called by the main thread's liveness tick, an `intervalMs` timer: records how late it fired. */
  sample(): void;
}

/**
 * Event-loop delay, measured by the main thread's liveness tick rather than by monitorEventLoopDelay: how late
 * an interval timer fires is exactly what that monitor measures (with its own libuv timer), so one timer does
 * both jobs. On this VM each wake-up of an idle worker costs ~0.1–0.2 ms of CPU; the monitor's 20 ms timer
 * alone was ~4 ms of CPU per second per idle worker. At a 50 ms tick there are 20 samples a second, so a
 * heartbeat's p99 is close to its max; a blocked loop shows as one sample as long as the block.
 */
export function tickLoopDelay(intervalMs: number): LoopDelay {
  const h = createHistogram();
  let last = performance.now();
  return {
    read: () => {
      const r = { meanMs: round(h.mean / 1e6), p99Ms: round(h.percentile(99) / 1e6), maxMs: round(h.max / 1e6) };
      return Number.isNaN(r.meanMs) ? { meanMs: 0, p99Ms: 0, maxMs: 0 } : r;
    },
    reset: () => h.reset(),
    sample: () => {
      const now = performance.now();
      const lateNs = Math.round((now - last - intervalMs) * 1e6);
      last = now;
      // The histogram takes integers ≥ 1; a timer that fired on time (or a hair early, by clock rounding) is 1 ns late.
      h.record(lateNs >= 1 ? lateNs : 1);
    },
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
