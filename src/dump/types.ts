// The shape of a dump and of its parts. One file so that the capture (inside the worker), the master's
// enrichment, redaction, the writer and the viewers agree on it. Bump DUMP_VERSION on breaking changes.

import type { CpuFunction } from './cpu';
import type { LockLookup } from './locks';

export const DUMP_VERSION = 1;

export type DumpReason = 'timeout' | 'slow' | 'memory' | 'manual' | 'crash';

/**
 * How a worker died on its own (reason `crash`). The first three are JS-level deaths the worker recorded itself;
 * `exit-called` is process.exit() (or an exit code with no error); `signal` is everything the worker could not
 * see coming: a native crash (SIGSEGV/SIGBUS), an abort (SIGABRT), a SIGKILL from outside or the kernel.
 */
export type CrashKind = 'uncaught-exception' | 'unhandled-rejection' | 'out-of-memory' | 'exit-called' | 'signal';

/** A thrown value as the dying worker saw it. `stack` is parsed from V8's text (source-mapped under --enable-source-maps). */
export interface CrashError {
  /** The constructor's name (`TypeError`), or `typeof` the value for a thrown non-Error. */
  type: string;
  message: string;
  stack?: Frame[];
  /** `err.cause`, then its cause, … (bounded). */
  cause?: CrashError[];
}

/** Where the app called process.exit() or process.abort(). */
export interface ExitCall {
  fn: 'exit' | 'abort';
  /** The code passed to process.exit() (undefined: none, process.exitCode applies). */
  code?: number;
  stack: Frame[];
}

/** What a crash dump adds to the common format. */
export interface CrashInfo {
  kind: CrashKind;
  exitCode: number | null;
  signal: string | null;
  /** One sentence on why, when superv can tell (who sent the signal, which allocation failed, who called exit). */
  cause: string;
  /**
   * The crash's signature: error type + message template + top app frame; identical crashes share it (see
   * src/dump/crash.ts). Not named `signature`: redaction hides any field of that name.
   */
  fingerprint: string;
  error?: CrashError;
  exitCall?: ExitCall;
  /** How the dump's request was chosen: the code ran for it, it was the only one in flight, or a guess. */
  requestBasis?: 'context' | 'only-inflight' | 'oldest-inflight';
  /** Requests in flight when the worker died: all lost with it. */
  collateral: number;
  /** The last lines the worker wrote to stderr (redacted). */
  stderrTail?: string;
  /** Heap statistics by space at the failed allocation (Node's fatal-error report), for out-of-memory. */
  heapSpaces?: Record<string, Record<string, number>>;
  /** The memory dump taken when the heap neared its limit, when this worker had one. */
  memoryDump?: string;
  /** Identical crashes (same signature) since the last dump of it that were counted but not written. */
  suppressed?: number;
  /** Deaths of this signature so far, this one included (as the master counted them since it started). */
  occurrences?: number;
}

/** The tracing ids of a request: the trace, and the span it ran in (or the caller's, from `traceparent`). */
export interface TraceIds {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits: the app's active span when read from @opentelemetry/api, else the caller's span. */
  spanId: string;
  /** `traceparent`: the request's header; `otel`: the app's active @opentelemetry/api span while its code ran. */
  from: 'traceparent' | 'otel';
}

/** One HTTP request as the worker saw it. URLs and headers are raw here; redact.ts cleans them before disk. */
export interface RequestInfo {
  id: number;
  method: string;
  url: string;
  /** Epoch milliseconds. */
  startedAt: number;
  ageMs: number;
  /** A streaming response: how long since its last body write (absent until it writes). */
  lastWriteMs?: number;
  remote?: string;
  headers?: Record<string, string>;
  /** From its W3C `traceparent` header, or the app's OpenTelemetry span; absent when neither is known. */
  trace?: TraceIds;
}

/** In-flight requests a dump counts instead of listing: `4,812 more: /poll 4,800, / 12`. */
export interface InflightMore {
  count: number;
  /** Normalized routes, most requests first; a few at most, the rest under `(other)`. */
  byRoute: Array<{ route: string; count: number }>;
}

/**
 * A rendered JS value: its kind, a bounded description, its size, and its first entries one level deep.
 * `type` is typeof, or an object's kind: array, typedarray, map, set, date, regexp, error, proxy, promise, ….
 * `props` holds the first entries of an Array (index → value), a Map (key → value), a Set (index → value) or
 * another object (name → value), and `…` when there are more than shown.
 */
export interface ValuePreview {
  type: string;
  value: string;
  props?: Record<string, string>;
  /**
   * Length of a string, an Array or a typed array; size of a Map or a Set; own enumerable properties of another
   * object. Absent in dumps written before it was added, and for other values.
   */
  size?: number;
}

export interface Frame {
  function: string;
  file: string;
  line: number;
  column: number;
  /** True for the app's own code: not node internals, not node_modules, not superv. */
  app: boolean;
  /** Where the source map points, when the app ships one. */
  original?: { file: string; line: number; column: number; name?: string };
  /** Locals of this frame's innermost scopes (top frames only), by variable name. */
  locals?: Record<string, ValuePreview>;
  /**
   * What of this frame's locals could not be read, one sentence per scope: e.g. "closure scope: not read by the
   * deadline", "local scope: 2 variable(s) not read by the deadline: rows, index". Absent when all was read.
   */
  localsMissing?: string[];
}

export interface LoopState {
  blocked: boolean;
  /** How long the main thread has not ticked, as the watchdog measures it through shared memory. */
  blockedForMs: number;
}

/** What the watchdog captured from inside the worker. Every part is optional: a capture may time out. */
export interface Capture {
  /** True when every step answered within the budget. */
  complete: boolean;
  /** Why not complete: e.g. "main thread in native code: no inspector reply within 150 ms". */
  incomplete?: string;
  elapsedMs: number;
  loop: LoopState;
  /** The request that was running on the main thread (AsyncLocalStorage store or its socket). */
  running?: RequestInfo;
  inflight: RequestInfo[];
  /** In-flight requests past the listing cap: how many, and how many per route, most first. */
  inflightMore?: InflightMore;
  stack?: Frame[];
  heap?: Record<string, number>;
  memory?: Record<string, number>;
  eventLoopDelay?: { meanMs: number; p99Ms: number; maxMs: number };
  uptimeMs?: number;
  served?: number;
  /** State providers' output: DB connections and transactions, outbound calls, the app's own providers. */
  state?: Record<string, unknown>;
  /** Who blocks our waiting statements, as the database server said (src/dump/locks.ts). */
  locks?: LockLookup;
}

export interface TcpPeer {
  local: string;
  remote: string;
  state: string;
  rxQueue: number;
  txQueue: number;
}

export interface ProcView {
  state?: string;
  wchan?: string;
  syscall?: string;
  /** The syscall's name when superv knows it (x86_64), e.g. "epoll_wait". */
  syscallName?: string;
  threads?: Array<{ tid: number; name: string; state: string; wchan?: string }>;
  children?: Array<{ pid: number; cmdline: string; state?: string; wchan?: string }>;
  tcp?: TcpPeer[];
  error?: string;
}

/** What the master knows of the worker at the moment of the dump, without asking the worker. */
export interface MasterView {
  cpuPercent?: number;
  rss?: number;
  proc: ProcView;
  /** The last heartbeat the master received, and its age. */
  lastHeartbeat?: { ageMs: number; inflight: number; oldest: RequestInfo[] };
}

export interface Dump {
  version: number;
  reason: DumpReason;
  /** ISO time of the incident. */
  time: string;
  /** A human sentence: what happened and what superv did. */
  summary: string;
  /** `host`: the machine's host name, so dumps gathered from many hosts stay told apart. */
  supervisor: { name: string; pid: number; app: string; host: string; traceUrl?: string };
  /**
   * `index`: its stable instance index (NODE_APP_INSTANCE); `kind`: `background` for a worker that serves no HTTP
   * (its dump has no request); `booting`: it was not ready yet. All three absent from dumps of older versions.
   */
  worker: { id: number; pid: number; uptimeMs: number; served: number; index?: number; kind?: 'http' | 'background'; booting?: boolean };
  /** The request this dump is about (slow) or that was running (timeout), when known. */
  request?: RequestInfo;
  /**
   * When the worker was killed: the other requests in flight on it, which died with it (from the capture,
   * or from the last heartbeat's oldest requests when there is no capture).
   */
  collateral?: RequestInfo[];
  capture?: Capture;
  /** Why no capture, when the watchdog did not answer in time or at all. */
  captureError?: string;
  master: MasterView;
  /** What superv did after the dump: `killed`, `recycled`, `replaced` (it died on its own), or `none` (slow, manual). */
  action: 'killed' | 'recycled' | 'replaced' | 'none';
  /** Reason `crash`: how the worker died. */
  crash?: CrashInfo;
  /** Set on a holder's dump: the requests (of any worker) that wait on a lock this worker's request holds. */
  blocks?: BlockedWaiter[];
  /** The worker's hottest functions over the seconds before the dump, from CPU sampling (absent when off). */
  cpu?: DumpCpu;
}

/** A dump's view of the worker's recent CPU samples (master/cpu-stats.ts). */
export interface DumpCpu {
  /** How far back the samples go, ms. */
  windowMs: number;
  /** CPU of the main thread in that window, ms. */
  cpuMs: number;
  functions: CpuFunction[];
}

/** A waiter, as the holder's dump names it. */
export interface BlockedWaiter {
  workerPid: number;
  requestId?: number;
  method?: string;
  url?: string;
  sql?: string;
  waitedMs?: number;
  /** The holder's session (pg backend pid / MySQL connection id) it waits on. */
  holderServerId: number;
  /** The waiter's own dump. */
  dump?: string;
}
