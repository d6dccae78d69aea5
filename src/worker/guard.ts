// superv's code runs inside the app's process, so it must never throw into the app: a timer callback, a signal
// or IPC handler, a diagnostics_channel subscriber (Node rethrows a subscriber's error as an uncaught exception
// on the next tick) or an 'end' listener that throws would crash a worker that the app itself kept healthy.
// Every such entry point is wrapped here: an error is counted (the heartbeat carries the count) and reported on
// stderr at most once a minute, which the master records as `worker N stderr`.
//
// Seen for real: at its fd limit (the app handling EMFILE itself) a worker was killed by the heartbeat's
// process.memoryUsage(), which opens /proc/self/stat (`EMFILE … uv_resident_set_memory`).

/** At most one report line per this interval, whatever the error rate. */
const REPORT_EVERY_MS = 60_000;

let errorCount = 0;
let lastReportAt = -Infinity;
let unreported = 0;

/** How many errors superv's own code caught in this worker (sent with every heartbeat). */
export function supervErrors(): number {
  return errorCount;
}

/** Counts `err` (caught in superv's code at `where`) and reports it unless a report went out this minute. */
export function reportOwnError(where: string, err: unknown): void {
  errorCount++;
  unreported++;
  const now = Date.now();
  if (now - lastReportAt < REPORT_EVERY_MS) return;
  lastReportAt = now;
  const n = unreported;
  unreported = 0;
  try {
    const msg = err instanceof Error ? `${err.message}` : String(err);
    process.stderr.write(`superv: ${where} failed in worker ${process.pid} (${n} error(s) of superv's own code since the last report, ` +
      `${errorCount} in all; the app is unaffected): ${msg}\n`);
  } catch {
    // Not even stderr: the count still travels with the heartbeat.
  }
}

/** `fn`, made unable to throw: its errors are counted and reported instead. */
export function guarded<A extends unknown[]>(where: string, fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      reportOwnError(where, err);
    }
  };
}

/** `fn` as an EventEmitter listener that keeps the emitter as `this`, unable to throw. */
export function guardedListener<T>(where: string, fn: (this: T) => void): (this: T) => void {
  return function guardedListenerFn(this: T): void {
    try {
      fn.call(this);
    } catch (err) {
      reportOwnError(where, err);
    }
  };
}
