// The port never closes while superv runs.
//
// Node's cluster master owns each listening socket in a handle table (a RoundRobinHandle by default on Linux,
// a SharedHandle under NODE_CLUSTER_SCHED_POLICY=none) and closes it when the last worker that listens on it
// goes away: when every worker is stuck and killed at once, or all crash, or all are recycled together, the
// port is closed until a replacement listens, and clients get ECONNREFUSED; the connections the master had
// accepted but not handed to a worker yet are closed too (ECONNRESET). gunicorn, uWSGI and PHP-FPM avoid
// this by having the master own the listening socket for its whole life.
//
// superv does the same inside Node's own table: it registers one more member on every listening handle, a
// placeholder "worker" that never serves. While it is registered the handle is never closed, so new
// connections wait (round-robin: in the master's queue; SCHED_NONE: in the kernel's accept backlog) and
// the replacements take them as soon as they listen. The placeholder is a cluster worker whose process is a
// tiny idle child (keeper-child.ts) that never sees a message: the master answers for it here, by
// intercepting what cluster sends it and emitting its replies on its ChildProcess object.
//
// The round-robin handle offers each new connection to a free member, the placeholder included; it hands
// every one straight back ("not accepted", which the handle re-queues for a real worker) and keeps one only
// when no real worker is free, releasing it as soon as one is (a worker acknowledges a connection, a new one
// listens, or at the next check). Handing back costs a few function calls in the master, no IPC.
//
// Bounded: when no worker has listened for `hold_timeout`, the placeholder leaves the handles, so the port
// closes as Node would close it and load balancers see the host down; it registers again when a worker
// listens. A graceful stop releases the port at once (the last draining worker then closes it).

import cluster, { type ClusterSettings, type Worker } from 'node:cluster';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { formatDuration } from '../config/units';
import type { Logger } from './logger';

/** How often the keeper checks its hold bound and offers a held connection again. */
const CHECK_MS = 100;

/** Node's internal cluster messages: `cmd: 'NODE_CLUSTER'`, an `act`, a `seq`, replies with `ack`. */
interface ClusterMessage {
  cmd?: unknown;
  act?: unknown;
  seq?: unknown;
  ack?: unknown;
  key?: unknown;
  errno?: unknown;
  accepted?: unknown;
  [field: string]: unknown;
}

type Send = (message: unknown, handle?: unknown, ...rest: unknown[]) => boolean;
type Proc = ChildProcess & { send: Send };

const isCluster = (m: unknown): m is ClusterMessage => typeof m === 'object' && m !== null && (m as ClusterMessage).cmd === 'NODE_CLUSTER';

export interface ListenKeeperOptions {
  log: Logger;
  /** Read at every check, so a reload applies a new value. 0 = off: Node's own behaviour. */
  holdTimeout: () => number;
}

export class ListenKeeper {
  private placeholder: Worker | undefined;
  /** The listening handles' keys (Node's own) and the queryServer message that opened each, to replay. */
  private readonly queries = new Map<string, ClusterMessage>();
  /** Keys the placeholder is registered on (cluster replied without error). */
  private readonly registered = new Set<string>();
  /** Per key, the connection offered to the placeholder while no real worker was free: its ack seq. */
  private readonly held = new Map<string, number>();
  /** Real workers' listening keys, by worker id: a worker with at least one can take connections. */
  private readonly listening = new Map<number, Set<string>>();
  private offering = false;
  private seq = 0;
  /** Since when no worker has listened (undefined while one does). */
  private emptySince: number | undefined;
  private released = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ListenKeeperOptions) {}

  /** Whether the placeholder holds `key` open: a dead worker's unacknowledged connections can be re-queued. */
  keeps(key: string): boolean {
    return this.registered.has(key);
  }

  /** Connections waiting while no worker listens: how long the port has been held, for status and tests. */
  holdingForMs(now = Date.now()): number {
    return this.emptySince === undefined || this.registered.size === 0 ? 0 : now - this.emptySince;
  }

  /** Learns what `worker` listens on (to hold the same handles) and when it stops. Call right after fork. */
  watch(worker: Worker): void {
    const proc = worker.process as Proc;
    const asked = new Map<unknown, ClusterMessage>();
    // Prepended: cluster may answer a queryServer synchronously, inside its own listener.
    proc.prependListener('internalMessage', (m: unknown) => {
      if (!isCluster(m)) return;
      if (m.act === 'queryServer') asked.set(m.seq, m);
      else if (m.act === 'close' && typeof m.key === 'string') this.stopped(worker.id, m.key);
    });
    proc.on('internalMessage', (m: unknown) => {
      // A real worker acknowledged a connection: it is free again, so a held connection can go to it.
      if (isCluster(m) && m.ack !== undefined && m.accepted !== undefined && this.held.size > 0) this.offerHeld();
    });
    const send = proc.send.bind(proc);
    proc.send = (message: unknown, handle?: unknown, ...rest: unknown[]) => {
      const sent = send(message, handle, ...rest);
      if (isCluster(message) && message.ack !== undefined && asked.has(message.ack)) {
        const query = asked.get(message.ack)!;
        asked.delete(message.ack);
        if (!message.errno && typeof message.key === 'string') this.started(worker.id, message.key, query);
      }
      return sent;
    };
    const gone = () => this.gone(worker.id);
    worker.once('exit', gone);
    worker.once('disconnect', gone);
  }

  /** A graceful stop: the port closes with the last worker, as without superv. */
  release(why: string): void {
    this.released = true;
    this.unregisterAll(why);
  }

  /** At exit: the placeholder's process ends when its IPC channel closes. */
  close(): void {
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unregisterAll('superv stopped');
    const p = this.placeholder;
    this.placeholder = undefined;
    if (p?.process.connected) p.process.disconnect();
  }

  // ─── real workers ────────────────────────────────────────────────────────

  private started(workerId: number, key: string, query: ClusterMessage): void {
    let keys = this.listening.get(workerId);
    if (!keys) this.listening.set(workerId, (keys = new Set()));
    keys.add(key);
    if (this.emptySince !== undefined && this.registered.size > 0) {
      this.opts.log.info({ event: 'port-resumed', heldMs: Date.now() - this.emptySince }, 'a worker listens again: held connections go to it');
    }
    this.emptySince = undefined;
    if (!this.queries.has(key)) this.queries.set(key, query);
    if (!this.registered.has(key) && !this.released && this.opts.holdTimeout() > 0) this.register(key);
    this.offerHeld();
  }

  private stopped(workerId: number, key: string): void {
    const keys = this.listening.get(workerId);
    if (!keys?.delete(key)) return;
    if (keys.size === 0) this.listening.delete(workerId);
    this.checkEmpty();
  }

  private gone(workerId: number): void {
    if (!this.listening.delete(workerId)) return;
    this.checkEmpty();
  }

  private checkEmpty(): void {
    if (this.listening.size > 0 || this.emptySince !== undefined) return;
    this.emptySince = Date.now();
    if (this.registered.size > 0) {
      this.opts.log.warn({ event: 'port-held', holdTimeoutMs: this.opts.holdTimeout() },
        `no worker listens: the master keeps the port open; new connections wait up to ${formatDuration(this.opts.holdTimeout())} for a worker`);
    }
  }

  // ─── the placeholder ─────────────────────────────────────────────────────

  private register(key: string): void {
    const p = this.ensurePlaceholder();
    const query = this.queries.get(key);
    if (!p || !query) return;
    this.registered.add(key);
    // Replays the worker's own query, so Node computes the same key and joins the existing handle.
    const { cmd: _cmd, seq: _seq, ...fields } = query;
    p.process.emit('internalMessage', { ...fields, cmd: 'NODE_CLUSTER', act: 'queryServer', seq: `keeper-${++this.seq}` }, undefined);
  }

  private unregisterAll(why: string): void {
    const p = this.placeholder;
    if (this.registered.size > 0) this.opts.log.info({ event: 'port-released', why }, `the master lets go of the port: ${why}`);
    for (const key of this.registered) {
      this.registered.delete(key);
      if (p?.process.connected) p.process.emit('internalMessage', { cmd: 'NODE_CLUSTER', act: 'close', key }, undefined);
      // The held connection goes back to the real workers when some still listen; with none, the handle is
      // closed by now and so is the connection.
      const seq = this.held.get(key);
      this.held.delete(key);
      const served = [...this.listening.values()].some((keys) => keys.has(key));
      if (seq !== undefined && p) p.process.emit('internalMessage', { cmd: 'NODE_CLUSTER', ack: seq, accepted: !served }, undefined);
    }
  }

  private ensurePlaceholder(): Worker | undefined {
    if (this.placeholder?.process.connected) return this.placeholder;
    const saved = cluster.settings;
    try {
      // Not the app: an idle child that only keeps its cluster registration alive.
      (cluster as { settings: ClusterSettings }).settings = { ...saved, exec: join(__dirname, 'keeper-child.js'), args: [], execArgv: ['--max-old-space-size=16'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'] };
      const p = cluster.fork();
      this.placeholder = p;
      (p.process as Proc).send = (message: unknown, handle?: unknown) => { this.toPlaceholder(message, handle); return true; };
      p.once('exit', () => this.placeholderExited(p));
    } catch (err) {
      this.opts.log.error({ event: 'keeper-failed', err: (err as Error).message }, `cannot start the port keeper: ${(err as Error).message}`);
      return undefined;
    } finally {
      (cluster as { settings: ClusterSettings }).settings = saved;
    }
    this.timer ??= setInterval(() => this.check(), CHECK_MS).unref();
    return this.placeholder;
  }

  /** What cluster sends the placeholder: a reply to its queryServer, or a connection to take. */
  private toPlaceholder(message: unknown, _handle: unknown): void {
    if (!isCluster(message) || typeof message.key !== 'string') return;
    if (message.act === 'newconn') {
      this.held.set(message.key, message.seq as number);
      if (!this.offering) this.offer(message.key);
    } else if (message.ack !== undefined && message.errno) {
      this.registered.delete(message.key);
      this.opts.log.warn({ event: 'keeper-failed', errno: message.errno }, `the port keeper could not join ${message.key} (errno ${String(message.errno)})`);
    }
    // A SharedHandle's reply carries the listening handle itself: the master's own copy, left alone.
  }

  /**
   * Hands a held connection back to the round-robin handle, which gives it to a free real worker, or, when
   * none is free, offers it to the placeholder again: that nested offer is kept (this.offering), not looped.
   */
  private offer(key: string): void {
    const seq = this.held.get(key);
    const p = this.placeholder;
    if (seq === undefined || !p) return;
    this.held.delete(key);
    this.offering = true;
    try {
      p.process.emit('internalMessage', { cmd: 'NODE_CLUSTER', ack: seq, accepted: false }, undefined);
    } finally {
      this.offering = false;
    }
  }

  private offerHeld(): void {
    if (this.offering) return;
    for (const key of [...this.held.keys()]) this.offer(key);
  }

  private check(): void {
    if (this.held.size > 0 && this.listening.size > 0) this.offerHeld();
    const hold = this.opts.holdTimeout();
    if (this.emptySince !== undefined && this.registered.size > 0 && (hold === 0 || Date.now() - this.emptySince >= hold)) {
      this.unregisterAll(`no worker listened for ${formatDuration(Date.now() - this.emptySince)} (hold_timeout ${formatDuration(hold)})`);
    }
  }

  private placeholderExited(p: Worker): void {
    if (this.placeholder !== p) return;
    this.placeholder = undefined;
    // Cluster removed it from the handles; a new one joins those still open when the next worker listens.
    this.registered.clear();
    this.held.clear();
    if (!this.released) this.opts.log.warn({ event: 'keeper-exited' }, 'the port keeper exited; it restarts when a worker listens');
    if (this.released || this.opts.holdTimeout() === 0) return;
    // Only handles still open: replaying a closed one would bind the port anew.
    for (const key of new Set([...this.listening.values()].flatMap((keys) => [...keys]))) this.register(key);
  }
}
