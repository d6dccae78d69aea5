// What a dying worker leaves for the master, and how crashes are told apart. Shared by the worker (which
// writes its crash record), the master (which reads it on reap and writes the crash dump) and the reader
// (which groups deaths by signature). Pure, except for the file names.
//
// Why a file: a worker that dies of an uncaught error or calls process.exit() has a few synchronous
// moments left (the `uncaughtExceptionMonitor` and `exit` events), and then nothing: an async send on cluster
// IPC or on the watchdog's pipe is lost with the process, and a sync write on a non-blocking pipe can fail
// with EAGAIN. A writeFileSync into a private directory always lands, and the master reads it after the exit.

import { join } from 'node:path';
import type { CrashError, ExitCall, Frame, RequestInfo } from './types';

/** The private directory (0700, in the dump dir) where workers leave crash records and Node's fatal-error reports. */
export function crashDirOf(dumpDir: string): string {
  return join(dumpDir, '.superv-crash');
}
export function crashRecordPath(dir: string, pid: number): string {
  return join(dir, `${pid}.json`);
}
/** Where the watchdog leaves the locals of an uncaught throw (crash_locals). */
export function crashLocalsPath(dir: string, pid: number): string {
  return join(dir, `${pid}.locals.json`);
}
/** Where Node writes its diagnostic report on a fatal error (out of memory) for worker `pid`. */
export function nodeReportName(pid: number): string {
  return `${pid}.report.json`;
}

/** What the worker recorded before it died; rewritten whole at each event. URLs are raw: the master redacts. */
export interface CrashRecord {
  pid: number;
  /** Epoch ms of the last update. */
  time: number;
  error?: CrashError & { origin: 'uncaughtException' | 'unhandledRejection' };
  exitCall?: ExitCall;
  /** The code Node was exiting with, from the `exit` event: set when the process ended through JS. */
  exitCode?: number;
  /** The request the failing code ran for, when the worker could tell (its socket, or the async context). */
  running?: RequestInfo;
  inflight: RequestInfo[];
  heap?: Record<string, number>;
  memory?: Record<string, number>;
  eventLoopDelay?: { meanMs: number; p99Ms: number; maxMs: number };
  served?: number;
}

/** Frames of a V8 stack text: `at fn (file:line:col)`, `at file:line:col`, `at async fn (…)`. */
export function parseStack(text: string, isApp: (file: string) => boolean, max = 50): Frame[] {
  const out: Frame[] = [];
  for (const raw of text.split('\n')) {
    const m = /^\s+at (?:(.*?) \((.*)\)|(.*))$/.exec(raw);
    if (!m) continue;
    // `Timeout.crashLoop [as _onTimeout]`: the alias is how it was called, not what the app named it.
    const fn = (m[1] ?? '').replace(/^async /, '').replace(/ \[as [^\]]*\]$/, '') || '(anonymous)';
    const where = m[2] ?? m[3] ?? '';
    const loc = /^(.*?):(\d+):(\d+)$/.exec(where);
    const file = loc ? loc[1]! : where;
    out.push({ function: fn, file, line: loc ? Number(loc[2]) : 0, column: loc ? Number(loc[3]) : 0, app: loc !== null && isApp(file) });
    if (out.length >= max) break;
  }
  return out;
}

/**
 * A message with its variable parts replaced, so that crashes differing only in an id or a value group
 * together: numbers, quoted strings, hex ids and UUIDs become `…`. (`Cannot read properties of undefined
 * (reading 'id')` keeps its shape; `no customer 4711` and `no customer 42` become one.)
 */
export function messageTemplate(message: string): string {
  return message
    .split('\n')[0]!
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '…')
    .replace(/\b0x[0-9a-f]+\b/gi, '…')
    .replace(/"[^"]{0,200}"|`[^`]{0,200}`/g, '"…"')
    .replace(/\b\d+(?:\.\d+)?\b/g, '…')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}

/** The top app frame as `fn file:line`, with the file's base name only (the same code on two hosts groups). */
function frameKey(f: Frame | undefined): string {
  if (!f) return '';
  const base = f.file.split(/[\\/]/).pop() ?? f.file;
  return `${f.function} ${base}:${f.line}`;
}

/**
 * What identical crashes share: error type + message template + top app frame, e.g.
 * `TypeError: Cannot read properties of undefined (reading '…') at chargeCustomer app.js:6`. Deaths without
 * an error group by kind and what is known instead (`signal SIGKILL`, `exit 3 at shutdown app.js:40`).
 */
export function crashSignature(p: { kind: string; error?: CrashError; exitCall?: ExitCall; signal: string | null; exitCode: number | null; stack?: Frame[] }): string {
  if (p.error) {
    const top = p.error.stack?.find((f) => f.app) ?? p.error.stack?.[0];
    const at = frameKey(top);
    return `${p.error.type}: ${messageTemplate(p.error.message)}${at ? ` at ${at}` : ''}`;
  }
  // Out of memory: the allocating frame from the memory dump before it, when there was one.
  const frames = p.exitCall?.stack ?? p.stack;
  const call = frames ? frameKey(frames.find((f) => f.app) ?? frames[0]) : '';
  const what = p.kind === 'out-of-memory' ? 'out of memory'
    : p.signal ? `signal ${p.signal}` : `exit ${p.exitCode ?? '?'}`;
  return `${what}${p.exitCall ? ` (process.${p.exitCall.fn}())` : ''}${call ? ` at ${call}` : ''}`;
}
