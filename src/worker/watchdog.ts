// The watchdog thread of a worker (a worker_threads thread in the same process). The main thread can be
// blocked; this thread cannot be, so it is the one that:
//   - answers the master's capture requests on the private pipe (fd 4) — cluster IPC would wait for the loop
//   - reads the main thread through an inspector session (no port is opened): stack, locals, probe
//   - notices requests that pass the `slow` threshold, through the shared-memory request table
//   - ends the process when the master is gone, even if the main thread is stuck
// It never logs: its stdout would go through the (possibly blocked) main thread.

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { Socket } from 'node:net';
import { dirname } from 'node:path';
import { workerData } from 'node:worker_threads';
import { MainThreadCapturer } from './capture/capture';
import type { Capture, DumpReason, InflightMore, RequestInfo } from '../dump/types';
import { tallyRoutes } from '../dump/route';
import { compileRoutePatterns, pathOf } from '../util/route-pattern';
import { readLines, writeLine } from '../ndjson';
import { PROBE_EXPRESSION, type MasterToWatchdog, type WatchdogToMaster } from '../protocol';
import type { ProbeResult } from './probe';
import { CpuSampler } from './cpu-sampler';
import { writeCpuProfile, writeHeapSnapshot } from './on-demand';
import { blockedAfterMs, isServing, onServingOrAfter } from './liveness';
import { requestLockLookup } from './lock-request';
import { DUMP_LISTED, H_HEAP_LIMIT, H_HEAP_USED, H_INFLIGHT, H_OLDEST, H_SERVED, H_TICK, RequestTable } from './request-table';

export interface WatchdogData {
  sab: SharedArrayBuffer;
  fd: number | null;
  masterPid: number;
  slowMs: number;
  /** Route patterns never dumped as slow (checked at start by the config loader). */
  slowExempt: string[];
  /** Budget for a capture the watchdog starts itself (slow requests). */
  budgetMs: number;
  /** Fraction of the heap limit at which to capture once, while the worker is still alive (0 = off). */
  heapWarn: number;
  /** Mean ms between CPU samples (cpu-sampler.ts); 0 = off. */
  cpuSampleMs: number;
  /** crash_locals: where to write the locals of an uncaught throw ('' = off). */
  crashLocalsFile: string;
  /** [0] main thread is exiting, [1] watchdog has let go of the inspector (see exitHandshake). */
  exitFlags: SharedArrayBuffer;
  /** The main thread's current stamp interval (liveness.ts). */
  liveness: SharedArrayBuffer;
}

/**
 * When the watchdog wakes by itself. Each wake-up of a thread costs ~0.2 ms of CPU on the VMs we measured,
 * so it does not poll at a fixed rate: it wakes when the oldest in-flight request reaches `slow` (exactly),
 * and otherwise only often enough to see every request before it can reach `slow` (half of it), to notice
 * a dead master (the pipe's end says so at once; process.ppid is the backstop) — at most every 2 s, at least
 * every 250 ms. An idle worker with the default `slow` (10 s) wakes it every 2 s.
 */
const SCAN_MAX_MS = 2000;
const SCAN_MIN_MS = 250;
/** At most one slow-request capture per this interval: a burst of slow requests must not become a dump storm. */
const SLOW_CAPTURE_GAP_MS = 1000;

const data = workerData as WatchdogData;
const table = new RequestTable(data.sab);
const session = new Session();
session.connectToMainThread();
const capturer = new MainThreadCapturer(session, { debugger: data.crashLocalsFile !== '' ? 'always' : 'on-demand' });
// superv's own frames are not the app's: everything under dist/src.
capturer.setOwnPrefix(dirname(__dirname));
const ready = capturer.enable()
  .then(() => data.crashLocalsFile !== '' ? capturer.pauseOnUncaught((stack) => {
    // Synchronously, while the main thread is held: it may exit as soon as it resumes.
    try { writeFileSync(data.crashLocalsFile, JSON.stringify(stack), { mode: 0o600 }); } catch { /* the dump goes without locals */ }
  }) : undefined)
  .catch(() => undefined);
let busy = false;
let lastSlowCapture = 0;
const exempt = compileRoutePatterns(data.slowExempt);

const liveness = new Int32Array(data.liveness);
const scanMs = Math.min(SCAN_MAX_MS, Math.max(SCAN_MIN_MS, data.slowMs > 0 ? data.slowMs / 2 : SCAN_MAX_MS));

/** Silence past the main thread's stamp interval (50 ms serving, the heartbeat's when parked) is a block. */
function blockedForMs(now: number): number {
  const tick = table.header[H_TICK]!;
  const silent = tick === 0 ? 0 : now - tick;
  return silent > blockedAfterMs(liveness) ? silent : 0;
}

async function capture(reason: DumpReason, budgetMs: number): Promise<Capture> {
  const started = Date.now();
  await Promise.race([ready, new Promise((r) => setTimeout(r, Math.min(budgetMs / 2, 1000)))]);
  const blocked = blockedForMs(Date.now());
  // Pausing a free loop would wait for the next JS to run, which may be never: only pause a busy one.
  const sc = await capturer.capture({ deadline: started + budgetMs, pause: blocked > 0, probeExpression: PROBE_EXPRESSION });
  const probe = sc.probe as ProbeResult | undefined;
  // Statements waiting on the database: ask it who holds them up (only then: no traffic otherwise).
  const locks = await requestLockLookup(session, probe?.state, blocked > 0, started + budgetMs);
  const now = Date.now();
  const fromTable = probe ? undefined : inflightFromTable(now);
  const out: Capture = {
    complete: sc.complete,
    incomplete: sc.incomplete,
    elapsedMs: now - started,
    loop: { blocked: blocked > 0, blockedForMs: blocked },
    running: blocked > 0 ? probe?.running : undefined,
    inflight: probe?.inflight ?? fromTable!.listed,
    inflightMore: probe ? probe.inflightMore : fromTable!.more,
    stack: sc.stack,
    heap: probe?.heap,
    memory: probe?.memory,
    eventLoopDelay: probe?.eventLoopDelay,
    uptimeMs: probe?.uptimeMs,
    served: probe?.served ?? table.header[H_SERVED],
    state: probe?.state,
    locks,
  };
  if (reason === 'slow' && !out.complete && out.incomplete === undefined) out.incomplete = 'capture incomplete';
  return out;
}

/**
 * The in-flight requests as shared memory has them, for a main thread that cannot answer: the oldest
 * DUMP_LISTED in full, the rest counted per route (and those without a record, past MAX_SLOTS, counted).
 */
function inflightFromTable(now: number): { listed: RequestInfo[]; more?: InflightMore } {
  const all = table.snapshot(now);
  const listed = all.slice(0, DUMP_LISTED);
  const total = Math.max(table.header[H_INFLIGHT]!, all.length);
  if (total <= listed.length) return { listed };
  return { listed, more: tallyRoutes(all.slice(DUMP_LISTED).map((r) => r.url), total - listed.length) };
}

/** How many of the oldest in-flight requests `superv status` gets for a stalled worker (as a heartbeat has). */
const STATUS_OLDEST = 3;

function send(msg: WatchdogToMaster): void {
  if (pipe && !pipe.destroyed) writeLine(pipe, msg);
}

async function onMaster(msg: MasterToWatchdog): Promise<void> {
  if (msg.act === 'loop') {
    send({ act: 'loop', id: msg.id, blockedForMs: blockedForMs(Date.now()) });
    return;
  }
  if (msg.act === 'inflight') {
    const now = Date.now();
    send({ act: 'inflight', id: msg.id, inflight: table.header[H_INFLIGHT]!, oldest: table.snapshot(now).slice(0, STATUS_OLDEST) });
    return;
  }
  if (msg.act === 'profile' || msg.act === 'heap-snapshot') {
    void writeOnDemand(msg);
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

/** A profile or heap snapshot to a file; the answer says its size or why not. Never throws. */
async function writeOnDemand(msg: Extract<MasterToWatchdog, { act: 'profile' | 'heap-snapshot' }>): Promise<void> {
  try {
    let bytes: number;
    if (msg.act === 'profile') {
      bytes = await writeCpuProfile(session, msg.durationMs, msg.intervalUs, msg.file);
    } else {
      // A capture must not pause the main thread in the middle of a snapshot, nor the sampler ask.
      while (busy) await new Promise((r) => setTimeout(r, 10));
      busy = true;
      try { bytes = await writeHeapSnapshot(session, msg.file); } finally { busy = false; }
    }
    send({ act: 'written', id: msg.id, bytes });
  } catch (err) {
    send({ act: 'written', id: msg.id, error: (err as Error)?.message ?? String(err) });
  }
}

/**
 * The first request to dump as slow, if any: quiet for `slow` — since its start, or, for a response that
 * is streaming, since its last body write — not dumped before and not exempt. The oldest start, kept by
 * the main thread in the header, spares the scan while nothing has run that long (the usual case); the
 * scan reads two numbers per request held and decodes only the URLs of candidates. A request once dumped
 * or found exempt is marked in its record, so it is decided once.
 */
function findSlow(now: number): { slot: number; req: RequestInfo } | undefined {
  const oldest = table.header[H_OLDEST]!;
  if (oldest === 0 || now - oldest < data.slowMs) return undefined;
  let found: { slot: number; req: RequestInfo } | undefined;
  table.forEachTimes((t) => {
    if (t.seen === t.id) return false;
    const quietSince = t.lastWriteAt > 0 ? t.lastWriteAt : t.startedAt;
    if (now - quietSince < data.slowMs) return false;
    const req = table.read(t.slot, now);
    if (!req) return false;
    if (exempt?.test(pathOf(req.url))) {
      table.markSeen(t.slot, t.id);
      return false;
    }
    found = { slot: t.slot, req };
    return true;
  });
  return found;
}

async function checkSlow(now: number): Promise<void> {
  if (data.slowMs <= 0 || busy || now - lastSlowCapture < SLOW_CAPTURE_GAP_MS) return;
  const slow = findSlow(now);
  if (!slow) return;
  table.markSeen(slow.slot, slow.req.id);
  lastSlowCapture = now;
  busy = true;
  try {
    // The slow request itself, from shared memory: the capture lists only the oldest DUMP_LISTED.
    send({ act: 'slow', requestId: slow.req.id, capture: await capture('slow', data.budgetMs), request: slow.req });
  } finally {
    busy = false;
  }
}

/** Set once this worker's heap warning fired: one memory dump per worker (a sawtooth heap would repeat it). */
let heapWarned = false;
/** How long the heap read through the inspector may take while the loop is blocked. */
const HEAP_QUERY_MS = 100;

/** The main thread's heap: from shared memory while it ticks, from the inspector while it is blocked. */
async function heapUsed(now: number): Promise<number> {
  if (blockedForMs(now) === 0) return table.header[H_HEAP_USED]!;
  // A blocked loop still answers at V8's stack checks (an allocating loop is full of them); a native call does not.
  const got = await new Promise<number>((res) => {
    const timer = setTimeout(() => res(0), HEAP_QUERY_MS);
    try {
      session.post('Runtime.getHeapUsage', (err, r?: { usedSize?: number }) => { clearTimeout(timer); res(err ? 0 : r?.usedSize ?? 0); });
    } catch {
      clearTimeout(timer);
      res(0);
    }
  });
  return Math.max(got, table.header[H_HEAP_USED]!);
}

async function checkHeap(now: number): Promise<void> {
  const limit = table.header[H_HEAP_LIMIT]!;
  if (heapWarned || data.heapWarn <= 0 || !(limit > 0) || busy) return;
  const used = await heapUsed(now);
  if (used < data.heapWarn * limit || heapWarned || busy) return;
  heapWarned = true;
  busy = true;
  try {
    // Paused (when the loop is blocked) at whatever is allocating: the stack the fatal-error report cannot give.
    send({ act: 'heap', usedBytes: used, limitBytes: limit, capture: await capture('memory', data.budgetMs) });
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
  if (data.cpuSampleMs > 0) {
    new CpuSampler(session, { intervalMs: data.cpuSampleMs, liveness, busy: () => busy, send: (window) => send({ act: 'cpu', window }) }).start();
  }
}

/** How long to sleep: until the oldest request not yet dumped reaches `slow`, but no longer than a scan. */
function nextWakeMs(now: number): number {
  // While the worker serves, a heap can run to its limit in a second or two: the heap warning needs a short
  // wake. A parked worker allocates nothing, so its watchdog may sleep long.
  const heapMs = data.heapWarn > 0 && isServing(liveness) ? SCAN_MIN_MS : scanMs;
  if (data.slowMs <= 0) return heapMs;
  const due = table.oldestStart() + data.slowMs - now;
  return Math.min(heapMs, Math.max(SCAN_MIN_MS, due));
}

// Ref'd on purpose: session callbacks alone do not keep this thread alive (the main thread unrefs it).
/** Sleeps until the next wake: parked with the heap warning on, also until serving resumes (a heap can reach its limit in a second). */
function sleepFrom(now: number): void {
  if (data.heapWarn > 0 && !isServing(liveness)) onServingOrAfter(liveness, nextWakeMs(now), wake);
  else setTimeout(wake, nextWakeMs(now));
}

function wake(): void {
  if (process.ppid !== data.masterPid) dieWithMaster();
  const now = Date.now();
  void checkSlow(now);
  // The heap is read at every wake (every SCAN_MIN_MS while serving with heap_warn on): no wake-up of its own.
  void checkHeap(now);
  sleepFrom(now);
}
sleepFrom(Date.now());
