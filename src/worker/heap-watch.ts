// The main thread's half of the heap warning (heap_warn): it publishes the V8 heap in use and its limit in
// the shared request table, where the watchdog compares them at its tick, without a message or a wake-up.
//
// The limit is the old generation's, not V8's heap_size_limit: that one adds the young generation's reserve
// (3 × the max semi-space: 48 MiB on Node 20, 192 MiB on Node 24, measured), so a worker started with
// --max-old-space-size=64 dies of OOM at ~63 MiB used while heap_size_limit says 112 (or 256) MiB.

import { getHeapStatistics } from 'node:v8';
import { H_HEAP_LIMIT, H_HEAP_USED, type RequestTable } from './request-table';

/** --max-old-space-size (MiB) from the worker's flags or NODE_OPTIONS, the last one winning as in Node; else heap_size_limit. */
export function oldSpaceLimit(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): number {
  let mb: number | undefined;
  for (const f of [...nodeOptions.split(/\s+/), ...execArgv]) {
    const m = /^--max[-_]old[-_]space[-_]size=(\d+)$/.exec(f);
    if (m) mb = Number(m[1]);
  }
  return mb !== undefined && mb > 0 ? mb * 2 ** 20 : getHeapStatistics().heap_size_limit;
}

export function publishHeapLimit(table: RequestTable): void {
  table.header[H_HEAP_LIMIT] = oldSpaceLimit();
}

/** Called at the main thread's liveness tick (50 ms): getHeapStatistics() costs ~2 µs. */
export function publishHeapUsed(table: RequestTable): void {
  table.header[H_HEAP_USED] = getHeapStatistics().used_heap_size;
}
