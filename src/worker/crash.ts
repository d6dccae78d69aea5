// The worker's last words: what it records, synchronously, in the moments Node still runs JS before the
// process ends, so the master can write a crash dump after the exit (see src/dump/crash.ts for why a file).
//
// It changes nothing the app sees: `uncaughtExceptionMonitor` observes an error without handling it (the
// app's own `uncaughtException` handler, or Node's default exit, still runs), the process.exit/abort
// wrappers call the originals with the same arguments, and the `exit` listener only writes a file. The
// cost outside a death is nil: nothing here runs per request.
//
// Kept: the error (type, message, parsed stack, cause chain), the request the failing code ran for when that
// can be told (its socket, or the async context when the DB instrumentation turned it on), every request in
// flight, heap statistics, the last loop delay, and for process.exit()/abort() the caller's stack.

import { unlinkSync, writeFileSync } from 'node:fs';
import { sep } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { crashLocalsPath, crashRecordPath, nodeReportName, parseStack, type CrashRecord } from '../dump/crash';
import type { CrashError, ExitCall, RequestInfo } from '../dump/types';
import type { Heartbeat } from '../protocol';
import { runningRequest } from './probe';
import type { RequestTracker } from './tracker';

const MAX_INFLIGHT = 100;
const MAX_CAUSES = 5;
const MAX_MESSAGE = 2000;
/** An uncaught error the app handled and lived through still explains an exit it makes this soon after. */
const HANDLED_ERROR_EXPLAINS_MS = 30_000;
/** Frames kept of a process.exit()/abort() call. */
const CALL_FRAMES = 20;

export interface CrashRecorderOptions {
  /** The private dir for crash records and Node's fatal-error report ('' = off: the dump dir is not writable). */
  dir: string;
  /** superv's own files (dist/src): not the app's frames. */
  ownPrefix: string;
  loopDelay: () => Heartbeat['eventLoopDelay'];
}

function errorOf(value: unknown, isApp: (f: string) => boolean, depth = 0): CrashError {
  if (!(value instanceof Error)) {
    const type = value === null ? 'null' : typeof value;
    let text: string;
    try { text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value); } catch { text = String(value); }
    return { type: `thrown ${type}`, message: text.slice(0, MAX_MESSAGE) };
  }
  const ctor = (value.constructor as { name?: unknown } | undefined)?.name;
  const out: CrashError = {
    type: typeof ctor === 'string' && ctor !== '' ? ctor : value.name,
    message: String(value.message).slice(0, MAX_MESSAGE),
  };
  if (typeof value.stack === 'string') out.stack = parseStack(value.stack, isApp);
  const cause: unknown = value.cause;
  if (cause !== undefined && depth < MAX_CAUSES) {
    const inner = errorOf(cause, isApp, depth + 1);
    out.cause = [{ type: inner.type, message: inner.message, stack: inner.stack }, ...(inner.cause ?? [])];
  }
  return out;
}

export function installCrashRecorder(tracker: RequestTracker, opts: CrashRecorderOptions): void {
  if (opts.dir === '') return;
  const file = crashRecordPath(opts.dir, process.pid);
  const isApp = (f: string): boolean =>
    f !== '' && !f.startsWith('node:') && !f.includes(`${sep}node_modules${sep}`) && !f.startsWith(opts.ownPrefix);
  const record: CrashRecord = { pid: process.pid, time: Date.now(), inflight: [] };
  let handledAt = 0;

  const snapshot = (running?: RequestInfo): void => {
    record.time = Date.now();
    record.running = running ?? record.running;
    record.inflight = tracker.list(MAX_INFLIGHT, true);
    record.served = tracker.served;
    record.heap = { ...getHeapStatistics() };
    record.memory = { ...process.memoryUsage() };
    record.eventLoopDelay = opts.loopDelay();
  };
  const write = (): void => {
    try {
      writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
    } catch {
      // Nowhere to leave it: the master still writes a dump from what it knows (exit code, signal, stderr).
    }
  };

  process.on('uncaughtExceptionMonitor', (err: unknown, origin) => {
    try {
      record.error = { ...errorOf(err, isApp), origin };
      snapshot(runningRequest(tracker));
      write();
    } catch {
      // Never let the recorder turn one error into two.
    }
    // Reached only when the app handled the error and the process lives on: the record is stale then.
    setImmediate(() => {
      handledAt = Date.now();
      try { unlinkSync(file); } catch { /* already gone */ }
      try { unlinkSync(crashLocalsPath(opts.dir, process.pid)); } catch { /* none (crash_locals off) */ }
    });
  });

  const noteCall = (fn: ExitCall['fn'], code: unknown, from: (...a: never[]) => unknown): void => {
    try {
      const holder: { stack?: string } = {};
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = CALL_FRAMES;
      Error.captureStackTrace(holder, from);
      Error.stackTraceLimit = limit;
      const n = typeof code === 'number' ? code : typeof code === 'string' && /^\d+$/.test(code) ? Number(code) : undefined;
      record.exitCall = { fn, code: n, stack: parseStack(holder.stack ?? '', isApp) };
      if (record.error && handledAt > 0 && Date.now() - handledAt > HANDLED_ERROR_EXPLAINS_MS) record.error = undefined;
      snapshot(runningRequest(tracker));
      write();
    } catch {
      // As above: the exit goes ahead whatever happens here.
    }
  };
  const realExit = process.exit;
  const exit = function exit(this: NodeJS.Process, code?: number | string | null): never {
    noteCall('exit', code, exit);
    return realExit.call(this, code);
  };
  process.exit = exit;
  const realAbort = process.abort;
  const abort = function abort(this: NodeJS.Process): never {
    noteCall('abort', undefined, abort);
    return realAbort.call(this);
  };
  process.abort = abort;

  process.on('exit', (code) => {
    record.exitCode = code;
    if (!record.error && !record.exitCall) snapshot();
    write();
  });

  enableFatalErrorReport(opts.dir);
}

/**
 * Node's own diagnostic report on a fatal error (out of memory) names the failed allocation and the heap by
 * space at that moment; it is written into the private dir, where the master reads and deletes it. Left alone
 * when the app configured reports itself. The environment is excluded where Node allows it (it holds secrets).
 */
function enableFatalErrorReport(dir: string): void {
  const report = process.report;
  if (!report || report.reportOnFatalError || report.directory !== '') return;
  report.directory = dir;
  report.filename = nodeReportName(process.pid);
  report.compact = true;
  if ('excludeEnv' in report) (report as { excludeEnv: boolean }).excludeEnv = true;
  report.reportOnFatalError = true;
}
