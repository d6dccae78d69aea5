// The watchdog's side of `superv profile` and `superv heap-snapshot` (master/on-demand.ts asks): through the
// inspector session the watchdog already holds (no port), it records a V8 CPU profile or takes a heap
// snapshot of the main thread and writes it straight to the file the operator named, 0600.

import { closeSync, constants as fsc, fchmodSync, openSync, writeSync } from 'node:fs';
import type { Session } from 'node:inspector';

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r as T)));
  });
}

/** Opens for writing, never through a symlink, and 0600 even when the file was there before. */
function openPrivate(file: string): number {
  const fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, 0o600);
  fchmodSync(fd, 0o600);
  return fd;
}

/** A `.cpuprofile` (Chrome DevTools, speedscope) of `durationMs`; resolves with its size in bytes. */
export async function writeCpuProfile(session: Session, durationMs: number, intervalUs: number, file: string): Promise<number> {
  const fd = openPrivate(file);
  try {
    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.setSamplingInterval', { interval: intervalUs });
    await post(session, 'Profiler.start');
    await new Promise((r) => setTimeout(r, durationMs));
    const { profile } = await post<{ profile: unknown }>(session, 'Profiler.stop');
    const text = JSON.stringify(profile);
    writeSync(fd, text);
    return Buffer.byteLength(text);
  } finally {
    closeSync(fd);
    await post(session, 'Profiler.disable').catch(() => undefined);
  }
}

/** A `.heapsnapshot`, written chunk by chunk as V8 streams it; resolves with its size in bytes. */
export async function writeHeapSnapshot(session: Session, file: string): Promise<number> {
  const fd = openPrivate(file);
  let bytes = 0;
  let writeError: Error | undefined;
  const onChunk = (m: { params: { chunk: string } }): void => {
    if (writeError) return;
    try {
      bytes += writeSync(fd, m.params.chunk);
    } catch (e) {
      writeError = e as Error;
    }
  };
  session.on('HeapProfiler.addHeapSnapshotChunk', onChunk);
  try {
    await post(session, 'HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    if (writeError) throw writeError;
    return bytes;
  } finally {
    session.off('HeapProfiler.addHeapSnapshotChunk', onChunk);
    closeSync(fd);
  }
}
