// Messages between the master, a worker's main thread and its watchdog thread: one discriminated union
// per channel. IPC messages carry `cmd: 'superv'` so they never reach the app's own `message` listeners
// (the app can use process.send for itself).

import type { Capture, DumpReason, RequestInfo } from './forensics/types';

export const IPC_CMD = 'superv';

/**
 * Upper bounds (ms) of the latency histogram buckets; one more bucket counts everything slower.
 * Shared by the worker's per-route histograms, the master's stats file, metrics and `superv report`.
 */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] as const;

/** Requests finished on one normalized route (`/users/:id`) since the previous heartbeat. */
export interface RouteStats {
  route: string;
  count: number;
  sumMs: number;
  maxMs: number;
  /** Counts per LATENCY_BUCKETS_MS bucket, plus the last one for slower requests. */
  hist: number[];
}

/** Every heartbeat: what the master keeps per worker (this is how it tracks each worker's requests). */
export interface Heartbeat {
  /** Finished requests by route since the last heartbeat (bounded: rare routes fold into `(other)`). */
  routes: RouteStats[];
  inflight: number;
  /** The oldest in-flight requests, URLs already redacted. */
  oldest: RequestInfo[];
  served: number;
  eventLoopDelay: { meanMs: number; p99Ms: number; maxMs: number };
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
}

export type WorkerToMaster =
  | { cmd: typeof IPC_CMD; act: 'heartbeat'; hb: Heartbeat }
  /** The operator sent SIGUSR2 to the worker: the master runs the one dump path for it. */
  | { cmd: typeof IPC_CMD; act: 'dump-me'; reason: DumpReason }
  /** The worker stopped accepting and is waiting for in-flight requests. */
  | { cmd: typeof IPC_CMD; act: 'draining'; inflight: number };

export type MasterToWorker =
  | { cmd: typeof IPC_CMD; act: 'drain' };

/** Master → watchdog, one JSON object per line on the private pipe (fd 4). */
export type MasterToWatchdog =
  | { act: 'capture'; id: number; reason: DumpReason; budgetMs: number; requestId?: number }
  /** How long has the main thread been blocked? Asked before a timeout kill, answered from shared memory. */
  | { act: 'loop'; id: number };

/** Watchdog → master, one JSON object per line on the private pipe. */
export type WatchdogToMaster =
  | { act: 'hello'; pid: number }
  | { act: 'capture'; id: number; capture: Capture }
  | { act: 'loop'; id: number; blockedForMs: number }
  /** The watchdog saw a request pass the `slow` threshold and captured on its own. */
  | { act: 'slow'; requestId: number; capture: Capture };

/** The fd of the private master ↔ watchdog pipe in every worker (stdio index). */
export const WATCHDOG_FD = 4;

/** Exit codes of a worker, a protocol like gunicorn's WORKER_BOOT_ERROR / APP_LOAD_ERROR. */
export const EXIT = {
  /** The app threw while loading: the master halts on the first start. */
  APP_LOAD_ERROR: 4,
  /** The master went away: the watchdog ended the orphan. */
  ORPHANED: 5,
} as const;

export function isWorkerMessage(m: unknown): m is WorkerToMaster {
  return typeof m === 'object' && m !== null && (m as { cmd?: unknown }).cmd === IPC_CMD;
}

/** The env var that carries WorkerOptions; the bootstrap removes it before the app loads. */
export const WORKER_OPTIONS_ENV = 'SUPERV_WORKER_OPTIONS';
/** Set by `--daemon` on the detached copy of superv it starts, so that copy runs in the foreground. */
export const DAEMON_CHILD_ENV = 'SUPERV_DAEMON_CHILD';

/** Everything a worker needs to know from the master, as plain JSON. */
export interface WorkerOptions {
  app: string;
  name: string;
  masterPid: number;
  heartbeatInterval: number;
  slow: number;
  dumpTimeout: number;
  instrument: boolean;
  recordSqlValues: boolean;
}

/** Where the worker's probe function lives on the main thread: a Symbol.for key keeps it out of the app's way. */
export const PROBE_SYMBOL = 'superv.probe';
/** What the watchdog evaluates on the main thread (worker/probe.ts defines the function). */
export const PROBE_EXPRESSION = `globalThis[Symbol.for(${JSON.stringify(PROBE_SYMBOL)})]()`;
