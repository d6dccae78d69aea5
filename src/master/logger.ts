// The master's logger: JSON lines (one object per lifecycle event) for machines, pretty and colored on a TTY.
// Synchronous on purpose: pino's docs warn that buffered logs are lost on a hard exit, and a kill decision
// or a halt is exactly the line that must not be lost.

import pino, { type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { LogFile } from './log-file';

export type { Logger };

/**
 * `file`: a daemon's log file (log-file.ts), which every logger then writes instead of fd 1 and 2, always as
 * JSON lines: `superv logs` reads them and is the pretty view.
 */
export interface LogOptions { name: string; level: string; format: string; file?: LogFile }

/** A logger writing to `fd` (1: the master's log; 2: its stderr, for the records of the children's stderr). */
export function createLogger(opts: LogOptions, fd: 1 | 2 = 1, prettyIgnore = 'hostname,supervisor'): Logger {
  if (opts.file) return pino({ level: opts.level, base: { supervisor: opts.name, pid: process.pid } }, opts.file);
  const tty = (fd === 1 ? process.stdout : process.stderr).isTTY === true;
  const wantPretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  const base = { supervisor: opts.name };
  if (wantPretty) {
    // Loaded only when used: 30 files the master does not need for JSON lines (start time, RSS).
    const pretty = (require('pino-pretty') as { default: typeof PinoPretty }).default;
    const stream = pretty({ colorize: tty, sync: true, destination: fd, ignore: prettyIgnore });
    return pino({ level: opts.level, base }, stream);
  }
  return pino({ level: opts.level, base: { ...base, pid: process.pid } }, pino.destination({ dest: fd, sync: true }));
}

/**
 * The loggers of the children's output (output.ts): the app's own lines are recorded at info whatever
 * log_level says (--log-level warn quiets superv, not the app), and nowhere when it says silent.
 */
export function createOutputLoggers(opts: LogOptions): { out: Logger; err: Logger } {
  const level = opts.level === 'silent' ? 'silent' : 'info';
  // Pretty: the message already names the source.
  const ignore = 'hostname,supervisor,event,source,truncated';
  return { out: createLogger({ ...opts, level }, 1, ignore), err: createLogger({ ...opts, level }, 2, ignore) };
}
