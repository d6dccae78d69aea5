// The worker's heartbeat over cluster IPC: a few numbers and the oldest requests, once per interval.
// Its absence is how the master knows the event loop is blocked. It respects IPC back-pressure: a
// heartbeat is skipped while the previous one is unsent, rather than buffered without bound.

import { createHistogram, performance } from 'node:perf_hooks';
import { redactUrl } from '../dump/redact';
import { RouteCache } from '../dump/route';
import { dbSessions } from './instrument/db-sessions';
import { collectRoutes } from './latency';
import { IPC_CMD, type Heartbeat, type WorkerToMaster } from '../protocol';
import type { RequestTracker } from './tracker';
import { guarded, reportOwnError, supervErrors } from './guard';

const OLDEST_REPORTED = 5;
/** An idle worker sends at most every this many intervals (its liveness stamp still comes every interval). */
const PARKED_SEND_MAX = 5;

/**
 * Beats per sent heartbeat while the worker is parked (liveness.ts): nothing changes then, and each sent one
 * costs ~0.5 ms of the worker's CPU and ~0.3 ms of the master's. Sparse, but always within half of `timeout`,
 * so the master never mistakes an idle worker's silence for a block (it asks the watchdog past `timeout`).
 */
export function parkedBeatEvery(intervalMs: number, timeoutMs: number): number {
  if (timeoutMs <= 0) return PARKED_SEND_MAX;
  return Math.max(1, Math.min(PARKED_SEND_MAX, Math.floor(timeoutMs / 2 / intervalMs)));
}

export interface LoopDelay {
  read(): Heartbeat['eventLoopDelay'];
  /** Starts a new window: each heartbeat reports the delay since the last one. */
  reset(): void;
  /** Called by the main thread's liveness stamp: records how late it came. */
  sample(): void;
  /** The stamp's interval from now on (the liveness mode changed): the next sample counts from here. */
  expect(intervalMs: number): void;
}

/**
 * Event-loop delay, measured by the main thread's liveness stamps (liveness.ts) rather than by
 * monitorEventLoopDelay: how late an interval timer fires is exactly what that monitor measures (with its own
 * libuv timer), so one timer does both jobs. On this VM each wake-up of an idle worker costs ~0.1–0.2 ms of
 * CPU; the monitor's 20 ms timer alone was ~4 ms of CPU per second per idle worker. At the serving 50 ms tick
 * there are 20 samples a second, so a heartbeat's p99 is close to its max; a blocked loop shows as one sample
 * as long as the block. A parked worker samples once per heartbeat.
 */
export function tickLoopDelay(): LoopDelay {
  const h = createHistogram();
  let intervalMs = 0;
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
    expect: (ms) => {
      intervalMs = ms;
      last = performance.now();
    },
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/**
 * `onBeat` runs first at every beat (the parked liveness stamp) and says whether the worker is parked; a
 * parked worker sends one beat in `parkedEvery`, the first one included (it announces the longer wait).
 * `quarantined`: the requests the quarantine answered since the last beat (worker/quarantine.ts).
 */
export function startHeartbeat(tracker: RequestTracker, intervalMs: number, eld: LoopDelay, onBeat: () => boolean, parkedEvery: number,
  quarantined?: () => Heartbeat['quarantined']): NodeJS.Timeout {
  let sending = false;
  let quietBeats = 0;
  const routes = new RouteCache();
  let mem: Heartbeat['memory'] = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 };
  const beat = guarded('the heartbeat', () => {
    const parked = onBeat();
    if (!parked) quietBeats = 0;
    else if (quietBeats++ % parkedEvery !== 0) return;
    if (sending || !process.connected || !process.send) return;
    // memoryUsage() opens /proc/self/stat: at the fd limit it throws EMFILE. The heartbeat then carries the
    // last memory figures it had; it must go out, or the master takes the worker for stuck.
    try {
      mem = process.memoryUsage();
    } catch (err) {
      reportOwnError('reading memory usage', err);
    }
    const hb: Heartbeat = {
      routes: collectRoutes(tracker, routes),
      inflight: tracker.inflight,
      upgraded: tracker.upgraded,
      oldest: tracker.list(OLDEST_REPORTED, false).map((r) => ({ ...r, url: redactUrl(r.url) })),
      served: tracker.served,
      eventLoopDelay: eld.read(),
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external },
      supervErrors: supervErrors(),
      nextWithinMs: parked ? parkedEvery * intervalMs : intervalMs,
      quarantined: quarantined?.(),
    };
    const db = dbSessions();
    if (db !== undefined) hb.db = db;
    eld.reset();
    sending = true;
    const msg: WorkerToMaster = { cmd: IPC_CMD, act: 'heartbeat', hb };
    try {
      process.send(msg, undefined, {}, () => { sending = false; });
    } catch (err) {
      sending = false;
      throw err;
    }
  });
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  setImmediate(beat);
  return timer;
}
