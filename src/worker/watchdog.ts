// The watchdog thread of a worker (a worker_threads thread in the same process). The main thread can be
// blocked; this thread cannot be, so it is the one that:
//   - answers the master's capture requests on the private pipe (fd 4) — cluster IPC would wait for the loop
//   - reads the main thread through an inspector session (no port is opened): stack, locals, probe
//   - notices requests that pass the `slow` threshold, through the shared-memory request table
//   - ends the process when the master is gone, even if the main thread is stuck
// It never logs: its stdout would go through the (possibly blocked) main thread.

import { Session } from 'node:inspector';
import { Socket } from 'node:net';
import { dirname } from 'node:path';
import { workerData } from 'node:worker_threads';
import { MainThreadCapturer } from '../forensics/capture';
import type { Capture, DumpReason } from '../forensics/types';
import { readLines, writeLine } from '../ndjson';
import { PROBE_EXPRESSION, type MasterToWatchdog, type WatchdogToMaster } from '../protocol';
import type { ProbeResult } from './probe';
import { H_OVERFLOW, H_SERVED, H_TICK, RequestTable } from './request-table';

export interface WatchdogData {
  sab: SharedArrayBuffer;
  fd: number | null;
  masterPid: number;
  slowMs: number;
  /** Budget for a capture the watchdog starts itself (slow requests). */
  budgetMs: number;
  /** [0] main thread is exiting, [1] watchdog has let go of the inspector (see exitHandshake). */
  exitFlags: SharedArrayBuffer;
}

/**
 * How often the watchdog looks for slow requests and for a dead master. Each wake-up of a thread costs
 * ~0.2 ms of CPU on the VMs we measured; at 100 ms that was a third of an idle worker's CPU. A slow
 * request is dumped at most this late past `slow` (10 s by default).
 */
const TICK_MS = 250;
/** The main thread ticks every 50 ms; silent longer than this means it is blocked. */
export const BLOCKED_AFTER_MS = 250;
/** At most one slow-request capture per this interval: a burst of slow requests must not become a dump storm. */
const SLOW_CAPTURE_GAP_MS = 1000;

const data = workerData as WatchdogData;
const table = new RequestTable(data.sab);
const session = new Session();
session.connectToMainThread();
const capturer = new MainThreadCapturer(session);
// superv's own frames are not the app's: everything under dist/src.
capturer.setOwnPrefix(dirname(__dirname));
const ready = capturer.enable().catch(() => undefined);
let busy = false;
let lastSlowCapture = 0;
const reportedSlow = new Set<number>();

function blockedForMs(now: number): number {
  const tick = table.header[H_TICK]!;
  const silent = tick === 0 ? 0 : now - tick;
  return silent > BLOCKED_AFTER_MS ? silent : 0;
}

async function capture(reason: DumpReason, budgetMs: number): Promise<Capture> {
  const started = Date.now();
  await Promise.race([ready, new Promise((r) => setTimeout(r, Math.min(budgetMs / 2, 1000)))]);
  const blocked = blockedForMs(Date.now());
  // Pausing a free loop would wait for the next JS to run, which may be never: only pause a busy one.
  const sc = await capturer.capture({ deadline: started + budgetMs, pause: blocked > 0, probeExpression: PROBE_EXPRESSION });
  const now = Date.now();
  const probe = sc.probe as ProbeResult | undefined;
  const overflow = table.header[H_OVERFLOW]!;
  const out: Capture = {
    complete: sc.complete,
    incomplete: sc.incomplete,
    elapsedMs: now - started,
    loop: { blocked: blocked > 0, blockedForMs: blocked },
    running: blocked > 0 ? probe?.running : undefined,
    inflight: probe?.inflight ?? table.snapshot(now),
    inflightOverflow: overflow > 0 ? overflow : undefined,
    stack: sc.stack,
    heap: probe?.heap,
    memory: probe?.memory,
    eventLoopDelay: probe?.eventLoopDelay,
    uptimeMs: probe?.uptimeMs,
    served: probe?.served ?? table.header[H_SERVED],
    state: probe?.state,
  };
  if (reason === 'slow' && !out.complete && out.incomplete === undefined) out.incomplete = 'capture incomplete';
  return out;
}

function send(msg: WatchdogToMaster): void {
  if (pipe && !pipe.destroyed) writeLine(pipe, msg);
}

async function onMaster(msg: MasterToWatchdog): Promise<void> {
  if (msg.act === 'loop') {
    send({ act: 'loop', id: msg.id, blockedForMs: blockedForMs(Date.now()) });
    return;
  }
  if (msg.act !== 'capture') return;
  // One capture at a time: a second one waits rather than interleaving inspector pauses.
  while (busy) await new Promise((r) => setTimeout(r, 10));
  busy = true;
  try {
    send({ act: 'capture', id: msg.id, capture: await capture(msg.reason, msg.budgetMs) });
  } finally {
    busy = false;
  }
}

async function checkSlow(now: number): Promise<void> {
  if (data.slowMs <= 0 || busy || now - lastSlowCapture < SLOW_CAPTURE_GAP_MS) return;
  // A slot reused while it is read shows a request that just ended or just started: neither is a slow one.
  if (now - table.oldestStart() < data.slowMs) return;
  const reqs = table.snapshot(now);
  const live = new Set(reqs.map((r) => r.id));
  for (const id of reportedSlow) if (!live.has(id)) reportedSlow.delete(id);
  const slow = reqs.find((r) => r.ageMs >= data.slowMs && !reportedSlow.has(r.id));
  if (!slow) return;
  reportedSlow.add(slow.id);
  lastSlowCapture = now;
  busy = true;
  try {
    send({ act: 'slow', requestId: slow.id, capture: await capture('slow', data.budgetMs) });
  } finally {
    busy = false;
  }
}

function dieWithMaster(): void {
  // The master is gone: nobody will replace, dump or stop this worker. Cannot wait for the main thread.
  session.disconnect();
  process.kill(process.pid, 'SIGKILL');
}

// When the main thread exits it waits (briefly) for us to disconnect the inspector session, otherwise
// Node prints "Waiting for the debugger to disconnect..." on the app's stderr at every exit.
const exitFlags = new Int32Array(data.exitFlags);
const letGo = () => {
  session.disconnect();
  Atomics.store(exitFlags, 1, 1);
  Atomics.notify(exitFlags, 1);
};
const waiting = Atomics.waitAsync(exitFlags, 0, 0).value;
if (typeof waiting === 'string') letGo();
else void waiting.then(letGo);

let pipe: Socket | undefined;
if (data.fd !== null) {
  pipe = new Socket({ fd: data.fd, readable: true, writable: true });
  readLines(pipe, (m) => { void onMaster(m as MasterToWatchdog); }, () => undefined);
  pipe.on('error', () => undefined);
  pipe.on('end', dieWithMaster);
  send({ act: 'hello', pid: process.pid });
}

// Ref'd on purpose: session callbacks alone do not keep this thread alive (the main thread unrefs it).
setInterval(() => {
  if (process.ppid !== data.masterPid) dieWithMaster();
  void checkSlow(Date.now());
}, TICK_MS);
