// The master's end of a worker's private pipe to its watchdog thread (fd 4 in the worker). The watchdog
// answers on it while the worker's main thread is blocked, which cluster IPC cannot. Pending requests are
// rejected when the pipe closes, so a dead worker never leaves a caller waiting (Node's cluster leaks
// these; we don't).

import type { Duplex } from 'node:stream';
import type { CpuWindow } from '../dump/cpu';
import type { Capture, DumpReason, RequestInfo } from '../dump/types';
import { readLines, writeLine } from '../ndjson';
import type { MasterToWatchdog, WatchdogToMaster } from '../protocol';

/** A stalled worker's requests, read by its watchdog. */
export interface InflightNow { inflight: number; oldest: RequestInfo[] }

export interface ChannelEvents {
  onSlow(requestId: number, capture: Capture, request?: RequestInfo): void;
  onHeap(usedBytes: number, limitBytes: number, capture: Capture): void;
  onCpu(window: CpuWindow): void;
  onProblem(why: string): void;
}

export class WatchdogChannel {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (c: Capture) => void; reject: (e: Error) => void }>();
  private readonly loopQueries = new Map<number, (blockedForMs: number | undefined) => void>();
  private readonly inflightQueries = new Map<number, (r: InflightNow | undefined) => void>();
  private readonly writes = new Map<number, (r: { bytes?: number; error?: string }) => void>();
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
      case 'slow': events.onSlow(msg.requestId, msg.capture, msg.request); break;
      case 'heap': events.onHeap(msg.usedBytes, msg.limitBytes, msg.capture); break;
      case 'inflight': {
        const done = this.inflightQueries.get(msg.id);
        this.inflightQueries.delete(msg.id);
        done?.({ inflight: msg.inflight, oldest: msg.oldest });
        break;
      }
      case 'cpu': events.onCpu(msg.window); break;
      case 'written': {
        const done = this.writes.get(msg.id);
        this.writes.delete(msg.id);
        done?.({ bytes: msg.bytes, error: msg.error });
        break;
      }
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
      const msg: MasterToWatchdog = { act: 'capture', id, reason, budgetMs: watchdogBudget(budgetMs) };
      writeLine(this.stream, msg);
    });
  }

  /** The watchdog's measure of how long the main thread has been blocked; undefined if it does not answer. */
  blockedFor(timeoutMs: number): Promise<number | undefined> {
    return this.ask(this.loopQueries, (id) => ({ act: 'loop', id }), timeoutMs, undefined, undefined);
  }

  /** The requests in flight as the watchdog reads them from shared memory now; undefined if it does not answer. */
  inflight(timeoutMs: number): Promise<InflightNow | undefined> {
    return this.ask(this.inflightQueries, (id) => ({ act: 'inflight', id }), timeoutMs, undefined, undefined);
  }

  /**
   * Asks the watchdog to write a CPU profile or a heap snapshot to a file; resolves with its size, or with the
   * reason it was not written (the watchdog's, a timeout, or the worker's exit).
   */
  write(msg: { act: 'profile'; durationMs: number; intervalUs: number; file: string } | { act: 'heap-snapshot'; file: string },
    timeoutMs: number): Promise<{ bytes?: number; error?: string }> {
    return this.ask(this.writes, (id) => ({ ...msg, id }), timeoutMs, { error: 'the worker is gone' },
      { error: `the worker did not finish within ${timeoutMs} ms` });
  }

  /**
   * One question to the watchdog, answered through `waiting` (dispatch) or, after `timeoutMs`, with `late`;
   * `gone` when the pipe is already closed. close() answers whatever is still waiting.
   */
  private ask<T>(waiting: Map<number, (r: T) => void>, msg: (id: number) => MasterToWatchdog, timeoutMs: number, gone: T, late: T): Promise<T> {
    if (this.closed) return Promise.resolve(gone);
    const id = ++this.seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { waiting.delete(id); resolve(late); }, timeoutMs);
      waiting.set(id, (r) => { clearTimeout(timer); resolve(r); });
      writeLine(this.stream, msg(id));
    });
  }

  close(why: string): void {
    for (const done of this.loopQueries.values()) done(undefined);
    this.loopQueries.clear();
    for (const done of this.inflightQueries.values()) done(undefined);
    this.inflightQueries.clear();
    for (const done of this.writes.values()) done({ error: `the worker exited (${why})` });
    this.writes.clear();
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new Error(`the watchdog is gone: ${why}`));
    this.pending.clear();
    this.stream.destroy();
  }
}

/**
 * The watchdog's share of a capture budget: less than ours, so its partial answer (written, piped, parsed) is
 * here before we give up on it. A fixed 250 ms was not enough on a loaded host when the app's main thread spins
 * on a core (a capture cut off at its own deadline still arrived late, and the dump lost all of it); a quarter
 * of the budget, 250 ms to 1 s, keeps most of the time for the capture and leaves the answer room to travel.
 */
export function watchdogBudget(budgetMs: number): number {
  const margin = Math.min(1000, Math.max(250, budgetMs / 4));
  return Math.max(50, Math.floor(budgetMs - margin));
}
