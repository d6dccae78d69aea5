// The master's logger: JSON lines (one object per lifecycle event) for machines, pretty and colored on a TTY.
// Synchronous on purpose: pino's docs warn that buffered logs are lost on a hard exit, and a kill decision
// or a halt is exactly the line that must not be lost.

import pino, { type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

export function createLogger(opts: { name: string; level: string; format: string }): Logger {
  const wantPretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  const base = { supervisor: opts.name };
  if (wantPretty) {
    // Loaded only when used: 30 files the master does not need for JSON lines (start time, RSS).
    const pretty = (require('pino-pretty') as { default: typeof PinoPretty }).default;
    const stream = pretty({ colorize: process.stdout.isTTY === true, sync: true, ignore: 'hostname,supervisor' });
    return pino({ level: opts.level, base }, stream);
  }
  return pino({ level: opts.level, base: { ...base, pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
}
