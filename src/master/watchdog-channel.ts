// The master's end of a worker's private pipe to its watchdog thread (fd 4 in the worker). The watchdog
// answers on it while the worker's main thread is blocked, which cluster IPC cannot. Pending requests are
// rejected when the pipe closes, so a dead worker never leaves a caller waiting (Node's cluster leaks
// these; we don't).

import type { Duplex } from 'node:stream';
import type { Capture, DumpReason } from '../forensics/types';
import { readLines, writeLine } from '../ndjson';
import type { MasterToWatchdog, WatchdogToMaster } from '../protocol';

export interface ChannelEvents {
  onSlow(requestId: number, capture: Capture): void;
  onProblem(why: string): void;
}

export class WatchdogChannel {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (c: Capture) => void; reject: (e: Error) => void }>();
  private readonly loopQueries = new Map<number, (blockedForMs: number | undefined) => void>();
  private closed = false;

  constructor(private readonly stream: Duplex, events: ChannelEvents) {
    readLines(stream, (m) => this.dispatch(m as WatchdogToMaster, events), events.onProblem);
    stream.on('error', () => this.close('pipe error'));
    stream.on('close', () => this.close('pipe closed'));
  }

  private dispatch(msg: WatchdogToMaster, events: ChannelEvents): void {
    switch (msg.act) {
      case 'hello': break; // the watchdog is up; nothing waits on it
      case 'capture': {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        p?.resolve(msg.capture);
        break;
      }
      case 'slow': events.onSlow(msg.requestId, msg.capture); break;
      case 'loop': {
        const done = this.loopQueries.get(msg.id);
        this.loopQueries.delete(msg.id);
        done?.(msg.blockedForMs);
        break;
      }
      default: events.onProblem(`unknown watchdog message ${JSON.stringify((msg as { act?: unknown }).act)}`);
    }
  }

  /** Asks the watchdog for a capture; rejects after `budgetMs` or when the pipe closes. */
  capture(reason: DumpReason, budgetMs: number): Promise<Capture> {
    if (this.closed) return Promise.reject(new Error('the watchdog pipe is closed'));
    const id = ++this.seq;
    return new Promise<Capture>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the watchdog did not answer within ${budgetMs} ms`));
      }, budgetMs);
      this.pending.set(id, {
        resolve: (c) => { clearTimeout(timer); resolve(c); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      // The watchdog gets a little less than our budget so its partial answer arrives before we give up.
      const msg: MasterToWatchdog = { act: 'capture', id, reason, budgetMs: Math.max(50, budgetMs - 250) };
      writeLine(this.stream, msg);
    });
  }

  /** The watchdog's measure of how long the main thread has been blocked; undefined if it does not answer. */
  blockedFor(timeoutMs: number): Promise<number | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const id = ++this.seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.loopQueries.delete(id); resolve(undefined); }, timeoutMs);
      this.loopQueries.set(id, (ms) => { clearTimeout(timer); resolve(ms); });
      writeLine(this.stream, { act: 'loop', id } satisfies MasterToWatchdog);
    });
  }

  close(why: string): void {
    for (const done of this.loopQueries.values()) done(undefined);
    this.loopQueries.clear();
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error(`the watchdog is gone: ${why}`));
    this.pending.clear();
    this.stream.destroy();
  }
}
