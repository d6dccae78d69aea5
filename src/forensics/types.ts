// The shape of a dump and of its parts. One file so that the capture (inside the worker), the master's
// enrichment, redaction, the writer and the viewers agree on it. Bump DUMP_VERSION on breaking changes.

export const DUMP_VERSION = 1;

export type DumpReason = 'timeout' | 'slow' | 'memory' | 'manual';

/** One HTTP request as the worker saw it. URLs and headers are raw here; redact.ts cleans them before disk. */
export interface RequestInfo {
  id: number;
  method: string;
  url: string;
  /** Epoch milliseconds. */
  startedAt: number;
  ageMs: number;
  remote?: string;
  headers?: Record<string, string>;
}

/** A rendered JS value: type and a bounded description; objects one level deep. */
export interface ValuePreview {
  type: string;
  value: string;
  props?: Record<string, string>;
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
  /** In-flight requests past the shared-memory table's size: counted, not listed. */
  inflightOverflow?: number;
  stack?: Frame[];
  heap?: Record<string, number>;
  memory?: Record<string, number>;
  eventLoopDelay?: { meanMs: number; p99Ms: number; maxMs: number };
  uptimeMs?: number;
  served?: number;
  /** State providers' output: DB connections and transactions, outbound calls, the app's own providers. */
  state?: Record<string, unknown>;
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
  supervisor: { name: string; pid: number; app: string; host: string };
  worker: { id: number; pid: number; uptimeMs: number; served: number };
  /** The request this dump is about (slow) or that was running (timeout), when known. */
  request?: RequestInfo;
  capture?: Capture;
  /** Why no capture, when the watchdog did not answer in time or at all. */
  captureError?: string;
  master: MasterView;
  /** What superv did after the dump: `killed`, `recycled`, or `none` (slow, manual). */
  action: 'killed' | 'recycled' | 'none';
}
