// Reads the superv master's JSON log lines (`--log-format json`) as they come, so a figure can wait for a
// lifecycle event (`worker-ready`, `dump-written`, `reload-done`, …) and use the time the master stamped on
// it. The workers share the master's stdout: lines that are not JSON objects are ignored.

import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export interface LogEvent {
  /** pino's epoch milliseconds. */
  time: number;
  event?: string;
  /** The worker's pid on worker events (it overrides the master's pid in the line). */
  pid?: number;
  worker?: number;
  msg?: string;
  fields: Record<string, unknown>;
}

interface Waiter {
  pred: (e: LogEvent) => boolean;
  resolve: (e: LogEvent | undefined) => void;
  timer: NodeJS.Timeout;
}

function toEvent(line: string): LogEvent | undefined {
  if (!line.startsWith('{')) return undefined;
  let parsed: unknown;
  try { parsed = JSON.parse(line); } catch { return undefined; }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const o = parsed as Record<string, unknown>;
  if (typeof o.time !== 'number') return undefined;
  return {
    time: o.time,
    event: typeof o.event === 'string' ? o.event : undefined,
    pid: typeof o.pid === 'number' ? o.pid : undefined,
    worker: typeof o.worker === 'number' ? o.worker : undefined,
    msg: typeof o.msg === 'string' ? o.msg : undefined,
    fields: o,
  };
}

export class LogTail {
  readonly events: LogEvent[] = [];
  private waiters: Waiter[] = [];

  constructor(stream: Readable) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      const e = toEvent(line);
      if (!e) return;
      this.events.push(e);
      for (const w of [...this.waiters]) {
        if (w.pred(e)) this.settle(w, e);
      }
    });
  }

  private settle(w: Waiter, e: LogEvent | undefined): void {
    clearTimeout(w.timer);
    this.waiters = this.waiters.filter((x) => x !== w);
    w.resolve(e);
  }

  /** The first event at index ≥ `from` matching `pred`, already seen or still to come; undefined after `timeoutMs`. */
  waitFor(pred: (e: LogEvent) => boolean, timeoutMs: number, from = 0): Promise<LogEvent | undefined> {
    const seen = this.events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const w: Waiter = { pred, resolve, timer: setTimeout(() => this.settle(w, undefined), timeoutMs) };
      this.waiters.push(w);
    });
  }

  find(pred: (e: LogEvent) => boolean, from = 0): LogEvent | undefined {
    return this.events.slice(from).find(pred);
  }

  get length(): number {
    return this.events.length;
  }
}

export const isEvent = (name: string) => (e: LogEvent): boolean => e.event === name;
