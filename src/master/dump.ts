// The one path from "this worker must be explained" to a dump on disk, and, when due, to its kill:
//   ask the watchdog for a capture ─┐  (both bounded by dump-timeout)
//   read the master's /proc view  ──┴→ SIGKILL if due (always, capture or not) → redact → write.
// The kill never waits for the disk: the evidence is in memory by then.

import { hostname } from 'node:os';
import { masterView } from '../forensics/enrich';
import { redactDump } from '../forensics/redact';
import { DUMP_VERSION, type Capture, type Dump, type DumpReason, type MasterView, type RequestInfo } from '../forensics/types';
import { writeDump } from '../forensics/write';
import type { Logger } from './logger';
import type { WorkerHandle } from './worker-handle';

export interface DumpContext {
  name: string;
  app: string;
  dumpDir: string;
  dumpKeep: number;
  dumpTimeout: number;
  log: Logger;
  /** Called with the path of every dump written (the on_dump hook, metrics, status). */
  onWritten?: (path: string, dump: Dump) => void;
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
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function pickRequest(capture: Capture | undefined, view: MasterView, requestId?: number): RequestInfo | undefined {
  const all = [...(capture?.inflight ?? []), ...(view.lastHeartbeat?.oldest ?? [])];
  if (requestId !== undefined) {
    const byId = all.find((r) => r.id === requestId);
    if (byId) return byId;
  }
  // The running request when the capture knows it, else the oldest one in flight: the likeliest culprit.
  return capture?.running ?? [...all].sort((a, b) => a.startedAt - b.startedAt)[0];
}

/** Dumps `h` and, when `req.kill`, kills it. Resolves with the dump's path, or undefined when writing failed. */
export async function dumpWorker(h: WorkerHandle, req: DumpRequest, ctx: DumpContext): Promise<string | undefined> {
  const started = Date.now();
  const uptimeMs = h.uptimeMs(started);
  const capturing: Promise<Capture> = req.capture
    ? Promise.resolve(req.capture)
    : h.channel
      ? h.channel.capture(req.reason, ctx.dumpTimeout)
      : Promise.reject(new Error('this worker has no watchdog channel'));
  const viewing = withDeadline(masterView(h.pid, { timeoutMs: Math.min(1000, ctx.dumpTimeout) }), ctx.dumpTimeout, 'the /proc view');
  const [cap, view] = await Promise.allSettled([withDeadline(capturing, ctx.dumpTimeout, 'the capture'), viewing]);

  if (req.kill) {
    h.signal('SIGKILL');
    ctx.log.warn({ event: 'worker-killed', worker: h.id, pid: h.pid, reason: req.reason, captureMs: Date.now() - started },
      `worker ${h.id} (pid ${h.pid}) killed: ${req.reason}`);
  }

  const capture = cap.status === 'fulfilled' ? cap.value : undefined;
  const master: MasterView = view.status === 'fulfilled' ? view.value : { proc: { error: String(view.reason) } };
  const hb = h.heartbeat;
  if (hb) master.lastHeartbeat = { ageMs: started - h.lastHeartbeatAt, inflight: hb.inflight, oldest: hb.oldest };
  const action = req.kill ? 'killed' : req.action ?? 'none';
  const dump: Dump = {
    version: DUMP_VERSION,
    reason: req.reason,
    time: new Date(started).toISOString(),
    summary: action === 'recycled' ? req.summary : `${req.summary}; ${req.kill ? 'the worker was killed and replaced' : 'the worker was left running'}`,
    supervisor: { name: ctx.name, pid: process.pid, app: ctx.app, host: hostname() },
    worker: { id: h.id, pid: h.pid, uptimeMs, served: capture?.served ?? hb?.served ?? 0 },
    request: pickRequest(capture, master, req.requestId),
    capture,
    captureError: cap.status === 'rejected' ? String((cap.reason as Error).message ?? cap.reason) : undefined,
    master,
    action,
  };
  try {
    const file = await writeDump(ctx.dumpDir, redactDump(dump), ctx.dumpKeep);
    h.lastDump = file;
    ctx.log.info({ event: 'dump-written', worker: h.id, pid: h.pid, reason: req.reason, file, complete: capture?.complete ?? false },
      `dump written: ${file}`);
    ctx.onWritten?.(file, dump);
    return file;
  } catch (err) {
    ctx.log.error({ event: 'dump-failed', worker: h.id, pid: h.pid, reason: req.reason, err: (err as Error).message },
      `could not write the dump of worker ${h.id}: ${(err as Error).message}`);
    return undefined;
  }
}
