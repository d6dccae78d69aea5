// `superv status`: what the master knows of itself and each worker, plus CPU and RSS read now.

import pidusage from 'pidusage';
import type { RequestInfo } from '../forensics/types';
import type { WorkerHandle, WorkerState } from './worker-handle';

export interface WorkerStatus {
  id: number;
  pid: number;
  state: WorkerState | 'stalled';
  uptimeMs: number;
  served: number;
  inflight: number;
  oldest?: Pick<RequestInfo, 'method' | 'url' | 'ageMs'>;
  loopDelayP99Ms?: number;
  cpuPercent?: number;
  rss?: number;
  lastDump?: string;
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
  memory: { rss: number; heapUsed: number; heapTotal: number };
  workers: WorkerStatus[];
}

/** A ready worker silent for more than this many heartbeats is shown as stalled. */
const STALLED_AFTER_BEATS = 3;

export async function workerStatuses(workers: WorkerHandle[], heartbeatMs: number): Promise<WorkerStatus[]> {
  const now = Date.now();
  const pids = workers.map((h) => h.pid).filter((p) => p > 0);
  let usage: Record<string, { cpu: number; memory: number }> = {};
  try {
    usage = pids.length ? await pidusage(pids) : {};
  } catch {
    // a worker exited between the list and the read: show the rest without CPU/RSS
  }
  return workers.map((h) => {
    const hb = h.heartbeat;
    const stalled = h.state === 'ready' && now - h.lastHeartbeatAt > STALLED_AFTER_BEATS * heartbeatMs;
    const u = usage[String(h.pid)];
    const oldest = hb?.oldest[0];
    return {
      id: h.id,
      pid: h.pid,
      state: stalled ? 'stalled' : h.state,
      uptimeMs: now - h.spawnedAt,
      served: hb?.served ?? 0,
      inflight: hb?.inflight ?? 0,
      oldest: oldest ? { method: oldest.method, url: oldest.url, ageMs: oldest.ageMs + (now - h.lastHeartbeatAt) } : undefined,
      loopDelayP99Ms: hb?.eventLoopDelay.p99Ms,
      cpuPercent: u ? Math.round(u.cpu * 10) / 10 : undefined,
      rss: u?.memory,
      lastDump: h.lastDump,
    };
  });
}
