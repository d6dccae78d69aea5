// `superv profile` and `superv heap-snapshot`: the master asks a worker's watchdog, over the private pipe,
// to write a V8 CPU profile or heap snapshot straight to the file the CLI named (0600). Nothing listens: no
// --inspect port, the inspector session is the one the watchdog already holds. The file never passes
// through the master, so a snapshot of a 2 GB heap costs the master nothing.

import type { WorkerHandle } from './worker-handle';

/** Sampling interval of an on-demand profile: finer than the always-on sampling, for one short look. */
export const PROFILE_INTERVAL_US = 1000;
/** What writing a profile may take beyond its duration (stopping the profiler, serialising, writing). */
const PROFILE_SLACK_MS = 30_000;
/** A heap snapshot of a big heap takes a while: its bound. */
const SNAPSHOT_TIMEOUT_MS = 5 * 60_000;

export interface Written { worker: number; pid: number; file: string; bytes: number }

/** The file for one worker of several: `x.cpuprofile` → `x-w2.cpuprofile`. */
export function perWorkerFile(file: string, worker: number): string {
  const m = /^(.*?)(\.[^./]+)?$/.exec(file)!;
  return `${m[1]}-w${worker}${m[2] ?? ''}`;
}

function failed(h: WorkerHandle, what: string, error: string): Error {
  return new Error(`worker ${h.id} (pid ${h.pid}): ${what} failed: ${error}`);
}

export async function profileWorkers(targets: WorkerHandle[], durationMs: number, file: string): Promise<{ files: Written[] }> {
  const files = await Promise.all(targets.map(async (h): Promise<Written> => {
    const out = targets.length > 1 ? perWorkerFile(file, h.id) : file;
    if (!h.channel) throw failed(h, 'the profile', 'it has no watchdog pipe');
    const r = await h.channel.write({ act: 'profile', durationMs, intervalUs: PROFILE_INTERVAL_US, file: out }, durationMs + PROFILE_SLACK_MS);
    if (r.error !== undefined || r.bytes === undefined) throw failed(h, 'the profile', r.error ?? 'no answer');
    return { worker: h.id, pid: h.pid, file: out, bytes: r.bytes };
  }));
  return { files };
}

/**
 * The snapshot holds the worker's main thread for as long as it takes (seconds for a big heap): the worker is
 * marked so that its silence meanwhile is not taken for a stall, and its silence counts from the end.
 */
export async function heapSnapshot(h: WorkerHandle, file: string): Promise<{ files: Written[] }> {
  if (!h.channel) throw failed(h, 'the heap snapshot', 'it has no watchdog pipe');
  h.snapshotting = true;
  try {
    const r = await h.channel.write({ act: 'heap-snapshot', file }, SNAPSHOT_TIMEOUT_MS);
    if (r.error !== undefined || r.bytes === undefined) throw failed(h, 'the heap snapshot', r.error ?? 'no answer');
    return { files: [{ worker: h.id, pid: h.pid, file, bytes: r.bytes }] };
  } finally {
    h.snapshotting = false;
    h.lastHeartbeatAt = Math.max(h.lastHeartbeatAt, Date.now());
  }
}
