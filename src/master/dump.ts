// The one path from "this worker must be explained" to a dump on disk, and, when due, to its kill:
//   ask the watchdog for a capture ─┐  (both bounded by dump-timeout)
//   read the master's /proc view  ──┴→ SIGKILL if due (always, capture or not) → redact → write.
// The kill never waits for the disk: the evidence is in memory by then.

import { hostname } from 'node:os';
import { masterView } from './enrich';
import { redactDump } from '../dump/redact';
import { DUMP_VERSION, type BlockedWaiter, type Capture, type CrashInfo, type Dump, type DumpCpu, type DumpReason, type MasterView, type RequestInfo } from '../dump/types';
import { writeDump } from './dump-write';
import type { Logger } from './logger';
import type { WorkerHandle } from './worker-handle';

export interface DumpContext {
  name: string;
  app: string;
  dumpDir: string;
  dumpKeep: number;
  dumpTimeout: number;
  /** The trace_url setting, recorded in each dump so its readers can link trace ids ('' = none). */
  traceUrl: string;
  log: Logger;
  /** Called with the path of every dump written (the on_dump hook, metrics, status). */
  onWritten?: (path: string, dump: Dump) => void;
  /** The worker's hottest functions over its last seconds of CPU samples (cpu-stats.ts), when sampling is on. */
  recentCpu?: (worker: number) => DumpCpu | undefined;
  /** Names lock holders that are other workers' requests, and dumps them (lock-holders.ts). */
  nameLockHolders?: (h: WorkerHandle, req: DumpRequest, capture: Capture) => Promise<void>;
}

export interface DumpRequest {
  reason: DumpReason;
  /** A sentence: what happened. The action taken is appended. */
  summary: string;
  kill: boolean;
  /** What superv does after the dump when it does not kill: `recycled` for a graceful replacement. */
  action?: 'recycled';
  /** A capture the watchdog already made (slow requests); otherwise the master asks for one. */
  capture?: Capture;
  requestId?: number;
  /** That request as the watchdog read it from shared memory, should the capture not list it. */
  request?: RequestInfo;
  /** A holder's dump: the waiters it blocks (lock-holders.ts). */
  blocks?: BlockedWaiter[];
  /** Set on a holder's dump, whose holders are not named in turn (no cascade of dumps). */
  holderDump?: boolean;
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function pickRequest(capture: Capture | undefined, view: MasterView, requestId?: number, known?: RequestInfo): RequestInfo | undefined {
  const all = [...(capture?.inflight ?? []), ...(view.lastHeartbeat?.oldest ?? [])];
  if (requestId !== undefined) {
    const byId = all.find((r) => r.id === requestId) ?? known;
    if (byId) return byId;
  }
  // The running request when the capture knows it, else the oldest one in flight: the likeliest culprit.
  return capture?.running ?? [...all].sort((a, b) => a.startedAt - b.startedAt)[0];
}

/**
 * A main thread in native code cannot answer, so its capture lists the requests from shared memory, which
 * holds no trace ids (keeping them there would cost every request). The last heartbeat read the oldest few
 * from the main thread, with theirs: the stuck request is usually among them.
 */
function traceFromHeartbeat(capture: Capture, view: MasterView): void {
  const traced = new Map((view.lastHeartbeat?.oldest ?? []).filter((r) => r.trace).map((r) => [r.id, r.trace!]));
  if (traced.size === 0) return;
  for (const r of capture.inflight) if (!r.trace && traced.has(r.id)) r.trace = traced.get(r.id);
}

/** Every other request in flight on a killed worker: the capture's list, else the last heartbeat's (the oldest few). */
function collateralOf(capture: Capture | undefined, view: MasterView, culprit: RequestInfo | undefined): RequestInfo[] {
  const inflight = capture ? capture.inflight : view.lastHeartbeat?.oldest ?? [];
  return inflight.filter((r) => r.id !== culprit?.id);
}

/** Dumps `h` and, when `req.kill`, kills it. Resolves with the dump's path, or undefined when writing failed. */
export async function dumpWorker(h: WorkerHandle, req: DumpRequest, ctx: DumpContext): Promise<string | undefined> {
  const started = Date.now();
  const capturing: Promise<Capture> = req.capture
    ? Promise.resolve(req.capture)
    : h.channel
      ? h.channel.capture(req.reason, ctx.dumpTimeout)
      : Promise.reject(new Error('this worker has no watchdog channel'));
  const viewing = withDeadline(masterView(h.pid, { timeoutMs: Math.min(1000, ctx.dumpTimeout) }), ctx.dumpTimeout, 'the /proc view');
  const [cap, view] = await Promise.allSettled([withDeadline(capturing, ctx.dumpTimeout, 'the capture'), viewing]);

  if (req.kill) {
    h.kill();
    ctx.log.warn({ event: 'worker-killed', worker: h.id, pid: h.pid, reason: req.reason, captureMs: Date.now() - started },
      `worker ${h.id} (pid ${h.pid}) killed: ${req.reason}`);
  }

  const capture = cap.status === 'fulfilled' ? cap.value : undefined;
  // After the kill, before the write: naming another worker's holder never delays a kill.
  if (capture?.locks !== undefined && capture.locks.waits.length > 0 && ctx.nameLockHolders !== undefined) {
    await withDeadline(ctx.nameLockHolders(h, req, capture), ctx.dumpTimeout + 1000, 'naming the lock holders').catch((err: unknown) => {
      (capture.locks!.missing ??= []).push(`the holders on other workers were not named: ${(err as Error).message ?? String(err)}`);
    });
  }
  const master: MasterView = view.status === 'fulfilled' ? view.value : { proc: { error: String(view.reason) } };
  const hb = h.heartbeat;
  if (hb) master.lastHeartbeat = { ageMs: started - h.lastHeartbeatAt, inflight: hb.inflight, oldest: hb.oldest };
  if (capture) traceFromHeartbeat(capture, master);
  const action = req.kill ? 'killed' : req.action ?? 'none';
  const request = pickRequest(capture, master, req.requestId, req.request);
  const dump: Dump = {
    ...dumpHead(h, ctx, req.reason, started, capture?.served ?? hb?.served ?? 0),
    summary: action === 'recycled' ? req.summary : `${req.summary}; ${req.kill ? 'the worker was killed and replaced' : 'the worker was left running'}`,
    request,
    collateral: req.kill ? collateralOf(capture, master, request) : undefined,
    capture,
    captureError: cap.status === 'rejected' ? String((cap.reason as Error).message ?? cap.reason) : undefined,
    master,
    action,
  };
  if (req.blocks !== undefined && req.blocks.length > 0) dump.blocks = req.blocks;
  const cpu = ctx.recentCpu?.(h.id);
  if (cpu !== undefined) dump.cpu = cpu;
  return persist(h, dump, ctx);
}

/** What a dead worker's dump is made of: the master cannot ask the worker anything any more. */
export interface DeadWorkerDump {
  /** When it died (the exit was seen). */
  time: number;
  summary: string;
  /** What the worker recorded as it died, shaped as a capture; undefined when it ran no JS at the end. */
  capture?: Capture;
  captureError?: string;
  request?: RequestInfo;
  crash: CrashInfo;
}

/** The dump of a worker that died on its own (reason `crash`): the same format, redaction and writer. */
export function dumpDeadWorker(h: WorkerHandle, d: DeadWorkerDump, ctx: DumpContext): Promise<string | undefined> {
  const hb = h.heartbeat;
  const master: MasterView = { proc: { error: 'the worker had exited: no /proc view' } };
  if (hb) master.lastHeartbeat = { ageMs: d.time - h.lastHeartbeatAt, inflight: hb.inflight, oldest: hb.oldest };
  const dump: Dump = {
    ...dumpHead(h, ctx, 'crash', d.time, d.capture?.served ?? hb?.served ?? 0),
    summary: d.summary,
    request: d.request,
    capture: d.capture,
    captureError: d.captureError,
    master,
    action: 'replaced',
    crash: d.crash,
  };
  return persist(h, dump, ctx);
}

function dumpHead(h: WorkerHandle, ctx: DumpContext, reason: DumpReason, time: number, served: number): Pick<Dump, 'version' | 'reason' | 'time' | 'supervisor' | 'worker'> {
  return {
    version: DUMP_VERSION,
    reason,
    time: new Date(time).toISOString(),
    supervisor: { name: ctx.name, pid: process.pid, app: ctx.app, host: hostname(), ...(ctx.traceUrl ? { traceUrl: ctx.traceUrl } : {}) },
    worker: { id: h.id, pid: h.pid, uptimeMs: h.uptimeMs(time), served, index: h.index, kind: h.kind, booting: h.readyAt === 0 || undefined },
  };
}

/** redact → write → tell: every dump reaches the disk through here. */
async function persist(h: WorkerHandle, dump: Dump, ctx: DumpContext): Promise<string | undefined> {
  const reason = dump.reason;
  try {
    const file = await writeDump(ctx.dumpDir, redactDump(dump), ctx.dumpKeep);
    h.lastDump = file;
    ctx.log.info({ event: 'dump-written', worker: h.id, pid: h.pid, reason, file, complete: dump.capture?.complete ?? false },
      `dump written: ${file}`);
    ctx.onWritten?.(file, dump);
    return file;
  } catch (err) {
    ctx.log.error({ event: 'dump-failed', worker: h.id, pid: h.pid, reason, err: (err as Error).message },
      `could not write the dump of worker ${h.id}: ${(err as Error).message}`);
    return undefined;
  }
}
