// `superv status`: what the master knows of itself and each worker, plus CPU and RSS read now.

import pidusage from 'pidusage';
import type { RequestInfo } from '../dump/types';
import { redactUrl } from '../dump/redact';
import type { WorkerHandle, WorkerState } from './worker-handle';
import type { PoisonRouteStatus } from './poison-routes';

export interface WorkerStatus {
  id: number;
  /** Its stable instance index (NODE_APP_INSTANCE). */
  index: number;
  kind: 'http' | 'background';
  pid: number;
  state: WorkerState | 'stalled';
  uptimeMs: number;
  served: number;
  inflight: number;
  /** Upgraded connections (WebSocket) open: not requests, so not in `inflight`. */
  upgraded: number;
  oldest?: Pick<RequestInfo, 'method' | 'url' | 'ageMs'>;
  loopDelayP99Ms?: number;
  cpuPercent?: number;
  rss?: number;
  lastDump?: string;
  /**
   * Where `inflight` and `oldest` come from: the last heartbeat, or, for a stalled worker, its watchdog's read of
   * shared memory now. `dataAgeMs`: how old the heartbeat's figures are, when the watchdog did not answer.
   */
  inflightFrom: 'heartbeat' | 'watchdog';
  dataAgeMs?: number;
  /** Errors superv's own code caught inside this worker (worker/guard.ts): not 0 means superv degraded, not the app. */
  supervErrors?: number;
}

export interface MasterStatus {
  name: string;
  pid: number;
  app: string;
  uptimeMs: number;
  phase: string;
  workersWanted: number;
  restarts: number;
  configFile?: string;
  dumpDir: string;
  metrics?: string;
  /** The master's own memory: RSS and V8 heap, to see it stay flat. */
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; heapSpaces?: Record<string, number> };
  workers: WorkerStatus[];
  /** Routes flagged poison or quarantined (master/poison-routes.ts). */
  poisonRoutes?: PoisonRouteStatus[];
  /** A daemon's log file (`superv logs` reads it); absent in the foreground. */
  logFile?: string;
  /** How this master was started, for `superv startup`: absolute node and CLI paths, its arguments, its directory. */
  start?: { node: string; cli: string; argv: string[]; cwd: string; runDir: string; gracefulTimeoutMs: number };
}

/** A ready worker silent for more than this many heartbeats is shown as stalled. */
const STALLED_AFTER_BEATS = 3;
/** How long `status` waits for a stalled worker's watchdog (it answers from shared memory, at once). */
const WATCHDOG_READ_MS = 300;

export async function workerStatuses(workers: WorkerHandle[], heartbeatMs: number): Promise<WorkerStatus[]> {
  const now = Date.now();
  const pids = workers.map((h) => h.pid).filter((p) => p > 0);
  let usage: Record<string, { cpu: number; memory: number }> = {};
  try {
    usage = pids.length ? await pidusage(pids) : {};
  } catch {
    // a worker exited between the list and the read: show the rest without CPU/RSS
  }
  const isStalled = (h: WorkerHandle) => h.state === 'ready' && now - h.lastHeartbeatAt > STALLED_AFTER_BEATS * Math.max(heartbeatMs, h.heartbeatWithinMs);
  // A stalled worker's last heartbeat is from before the stall (often `0 in flight`): its watchdog reads the truth.
  const fresh = await Promise.all(workers.map((h) => isStalled(h) && h.channel ? h.channel.inflight(WATCHDOG_READ_MS) : Promise.resolve(undefined)));
  return workers.map((h, i) => {
    const hb = h.heartbeat;
    const stalled = isStalled(h);
    const u = usage[String(h.pid)];
    const now2 = fresh[i];
    const redactedOldest = now2?.oldest[0] ? { ...now2.oldest[0], url: redactUrl(now2.oldest[0].url) } : undefined;
    const oldest = now2 ? redactedOldest
      : hb?.oldest[0] ? { ...hb.oldest[0], ageMs: hb.oldest[0].ageMs + (now - h.lastHeartbeatAt) } : undefined;
    return {
      id: h.id,
      index: h.index,
      kind: h.kind,
      pid: h.pid,
      state: stalled ? 'stalled' : h.state,
      uptimeMs: now - h.spawnedAt,
      served: hb?.served ?? 0,
      inflight: now2?.inflight ?? hb?.inflight ?? 0,
      inflightFrom: now2 ? 'watchdog' : 'heartbeat',
      dataAgeMs: stalled && !now2 ? now - h.lastHeartbeatAt : undefined,
      upgraded: hb?.upgraded ?? 0,
      oldest: oldest ? { method: oldest.method, url: oldest.url, ageMs: oldest.ageMs } : undefined,
      loopDelayP99Ms: hb?.eventLoopDelay.p99Ms,
      cpuPercent: u ? Math.round(u.cpu * 10) / 10 : undefined,
      rss: u?.memory,
      lastDump: h.lastDump,
      supervErrors: hb?.supervErrors,
    };
  });
}
