// Messages between the master, a worker's main thread and its watchdog thread: one discriminated union
// per channel. IPC messages carry `cmd: 'superv'` so they never reach the app's own `message` listeners
// (the app can use process.send for itself).

import type { DbKind } from './dump/locks';
import type { CpuWindow } from './dump/cpu';
import type { Capture, DumpReason, RequestInfo } from './dump/types';

export const IPC_CMD = 'superv';

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
  /** Requests in flight, exact: each one that started and has not finished, been aborted or lost its socket. */
  inflight: number;
  /** Upgraded connections (WebSocket) open: not requests, so neither in `inflight` nor ever slow. */
  upgraded: number;
  /** The oldest in-flight requests, URLs already redacted. */
  oldest: RequestInfo[];
  served: number;
  eventLoopDelay: { meanMs: number; p99Ms: number; maxMs: number };
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
  /** Errors superv's own code caught in this worker so far (worker/guard.ts); absent from older workers. */
  supervErrors?: number;
  /** The next heartbeat comes within this: the interval, or a few of them while the worker is idle. */
  nextWithinMs: number;
  /** Busy DB sessions (a statement pending or a transaction open): how the master names a lock's holder. */
  db?: DbSession[];
  /** Requests answered 503 by the quarantine since the last heartbeat, by route (absent when none). */
  quarantined?: Array<{ route: string; count: number }>;
}

/** One busy database session of a worker, by the server's id for it. */
export interface DbSession {
  kind: DbKind;
  /** pg backend pid / MySQL connection id. */
  serverId: number;
  requestId?: number;
  method?: string;
  /** Redacted. */
  url?: string;
  startedAt?: number;
  /** Epoch ms its transaction began, when one is open. */
  txSince?: number;
}

/** A route the workers answer with 503 (master/poison-routes.ts decides, worker/quarantine.ts answers). */
export interface QuarantinedRoute {
  /** As normalizeRoute() makes it. */
  route: string;
  /** Epoch ms when the cool-down ends (the Retry-After), for `closed`; 0 for `trial`. */
  until: number;
  /** `closed`: every request is answered 503. `trial`: one request per worker goes through, the rest 503. */
  mode: 'closed' | 'trial';
}

export type WorkerToMaster =
  | { cmd: typeof IPC_CMD; act: 'heartbeat'; hb: Heartbeat }
  /** The operator sent SIGUSR2 to the worker: the master runs the one dump path for it. */
  | { cmd: typeof IPC_CMD; act: 'dump-me'; reason: DumpReason }
  /** The worker stopped accepting and is waiting for in-flight requests. */
  | { cmd: typeof IPC_CMD; act: 'draining'; inflight: number }
  /** The app has loaded (its main module ran; an ESM one was imported): a background worker is ready then. */
  | { cmd: typeof IPC_CMD; act: 'booted' };

export type MasterToWorker =
  | { cmd: typeof IPC_CMD; act: 'drain' }
  /** The whole list of quarantined routes, sent when it changes and to every new worker. */
  | { cmd: typeof IPC_CMD; act: 'quarantine'; routes: QuarantinedRoute[] };

/** Master → watchdog, one JSON object per line on the private pipe (fd 4). */
export type MasterToWatchdog =
  | { act: 'capture'; id: number; reason: DumpReason; budgetMs: number; requestId?: number }
  /** How long has the main thread been blocked? Asked before a timeout kill, answered from shared memory. */
  | { act: 'loop'; id: number }
  /** The requests in flight as shared memory has them now: `superv status` of a worker whose heartbeats stopped. */
  | { act: 'inflight'; id: number }

  /** `superv profile`: a V8 CPU profile of `durationMs` at `intervalUs`, written by the watchdog to `file` (0600). */
  | { act: 'profile'; id: number; durationMs: number; intervalUs: number; file: string }
  /** `superv heap-snapshot`: a V8 heap snapshot written by the watchdog to `file` (0600). */
  | { act: 'heap-snapshot'; id: number; file: string };

/** Watchdog → master, one JSON object per line on the private pipe. */
export type WatchdogToMaster =
  | { act: 'hello'; pid: number }
  | { act: 'capture'; id: number; capture: Capture }
  | { act: 'loop'; id: number; blockedForMs: number }
  | { act: 'inflight'; id: number; inflight: number; oldest: RequestInfo[] }
  /** The watchdog saw a request pass the `slow` threshold and captured on its own. */
  | { act: 'slow'; requestId: number; capture: Capture; request?: RequestInfo }
  /** The watchdog saw the V8 heap pass `heap_warn` of its limit and captured on its own. */
  | { act: 'heap'; usedBytes: number; limitBytes: number; capture: Capture }
  /** CPU samples of the last window (about a second), by route and stack (worker/cpu-sampler.ts). */
  | { act: 'cpu'; window: CpuWindow }
  /** A profile or heap snapshot asked for by `id` is written (`bytes`), or could not be (`error`). */
  | { act: 'written'; id: number; bytes?: number; error?: string };

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
  /** The master's `timeout`: an idle worker's heartbeats stay well inside it. */
  timeout: number;
  slow: number;
  /** Route patterns never dumped as slow, checked at start (util/route-pattern.ts). */
  slowExempt: string[];
  dumpTimeout: number;
  instrument: boolean;
  recordSqlValues: boolean;
  /** Ask the database who blocks a waiting statement at dump time (worker/instrument/lock-lookup.ts). */
  lockLookup: boolean;
  /** Pause on uncaught exceptions for the throwing frames' locals (costly: off by default). */
  crashLocals: boolean;
  /** Percent of heap_size_limit at which the watchdog takes a memory dump (0 = off). */
  heapWarn: number;
  /** Where the worker leaves its crash record and Node's fatal-error report ('' = nowhere writable). */
  crashDir: string;
  /** Mean ms between CPU samples (worker/cpu-sampler.ts); 0 = off. Absent from older masters: off. */
  cpuSampleInterval?: number;
}

/** Where the worker's probe function lives on the main thread: a Symbol.for key keeps it out of the app's way. */
export const PROBE_SYMBOL = 'superv.probe';
/** What the watchdog evaluates on the main thread (worker/probe.ts defines the function). */
export const PROBE_EXPRESSION = `globalThis[Symbol.for(${JSON.stringify(PROBE_SYMBOL)})]()`;
/** Where the CPU sample function lives on the main thread (worker/cpu-probe.ts defines it). */
export const CPU_SAMPLE_SYMBOL = 'superv.cpu-sample';
export const CPU_SAMPLE_EXPRESSION = `globalThis[Symbol.for(${JSON.stringify(CPU_SAMPLE_SYMBOL)})]?.()`;
/** Frames kept per CPU sample, innermost first: deeper stacks lose their outermost frames. */
export const CPU_SAMPLE_FRAMES = 48;
/** Where the lock look-up lives on the main thread (worker/instrument/lock-lookup.ts defines it). */
export const LOCK_LOOKUP_SYMBOL = 'superv.lock-lookup';
/** The lock look-up's hard bound (ms): connect, version, every level of every chain. */
export const LOCK_LOOKUP_MS = 500;
/** What the watchdog evaluates (awaiting the promise) for the look-up, given its budget in ms. */
export function lockLookupExpression(budgetMs: number): string {
  return `globalThis[Symbol.for(${JSON.stringify(LOCK_LOOKUP_SYMBOL)})]?.(${Math.max(0, Math.floor(budgetMs))})`;
}
