// Containment of a poison route: one route whose requests keep getting workers killed (a bad deploy, a
// poison request) would otherwise kill the replacements too, over and over. A circuit breaker per route,
// pure bookkeeping like restarts.ts (Erlang's restart intensity: kill timestamps, prune, compare):
//
//   watch ──(poison_kills kills within poison_window)──→ poison          (quarantine off: flagged, logged)
//   watch ──(same, quarantine on)──→ quarantined ──(quarantine_time)──→ trial
//   trial ──(a request of the route finishes)──→ watch      trial ──(a kill)──→ quarantined
//
// `poison` clears itself once its kills fall out of the window. Workers enforce `quarantined` and `trial`
// (worker/quarantine.ts); containPoisonRoutes() below wires this to the arbiter, the log and the metrics.

import cluster from 'node:cluster';
import { normalizeRoute } from '../dump/route';
import type { Dump } from '../dump/types';
import { IPC_CMD, type Heartbeat, type MasterToWorker, type QuarantinedRoute } from '../protocol';
import type { Config } from '../config/settings';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import type { WorkerHandle } from './worker-handle';

export type PoisonState = 'watch' | 'poison' | 'quarantined' | 'trial';

export interface PoisonPolicy {
  /** Kills within `windowMs` that make a route poison; 0 = off. */
  kills: number;
  windowMs: number;
  quarantine: boolean;
  quarantineMs: number;
}

/** A route's state as status, ls and metrics show it. */
export interface PoisonRouteStatus {
  route: string;
  state: Exclude<PoisonState, 'watch'>;
  /** Kills within the window. */
  kills: number;
  /** The latest kills' dumps. */
  dumps: string[];
  /** Requests answered 503 while quarantined. */
  quarantinedRequests: number;
  /** Epoch ms when the quarantine ends (state quarantined). */
  until?: number;
}

export interface PoisonEvent {
  route: string;
  to: PoisonState;
  from: PoisonState;
  kills: number;
  dumps: string[];
}

interface Entry {
  state: PoisonState;
  kills: number[];
  dumps: string[];
  until: number;
  quarantinedRequests: number;
}

export function policyOf(c: Pick<Config, 'poisonKills' | 'poisonWindow' | 'quarantine' | 'quarantineTime'>): PoisonPolicy {
  return { kills: c.poisonKills, windowMs: c.poisonWindow, quarantine: c.quarantine, quarantineMs: c.quarantineTime };
}

export class PoisonRoutes {
  private readonly routes = new Map<string, Entry>();

  constructor(private readonly policy: () => PoisonPolicy, private readonly now: () => number = Date.now) {}

  /** A worker was killed while running a request of `route` (normalized); `dump` is its dump file. */
  noteKill(route: string, dump: string): PoisonEvent | undefined {
    const p = this.policy();
    if (p.kills <= 0) return undefined;
    const now = this.now();
    let e = this.routes.get(route);
    if (!e) this.routes.set(route, (e = { state: 'watch', kills: [], dumps: [], until: 0, quarantinedRequests: 0 }));
    e.kills = e.kills.filter((t) => now - t < p.windowMs);
    e.kills.push(now);
    e.dumps = [...e.dumps, dump].slice(-Math.max(p.kills, 1));
    // A trial that kills again needs no second count: it is the same poison.
    if (e.state === 'trial') return this.move(route, e, 'quarantined');
    if (e.state === 'watch' && e.kills.length >= p.kills) return this.move(route, e, p.quarantine ? 'quarantined' : 'poison');
    return undefined;
  }

  /** A heartbeat: requests of a trial route that finished close its circuit; quarantined ones are counted. */
  noteHeartbeat(hb: Pick<Heartbeat, 'routes' | 'quarantined'>): PoisonEvent[] {
    const refused = new Map((hb.quarantined ?? []).map((q) => [q.route, q.count] as const));
    for (const [route, n] of refused) {
      const e = this.routes.get(route);
      if (e) e.quarantinedRequests += n;
    }
    const out: PoisonEvent[] = [];
    for (const r of hb.routes ?? []) {
      const e = this.routes.get(r.route);
      // The 503s answered by the quarantine finish too: only requests beyond them went through the app.
      if (e?.state === 'trial' && r.count > (refused.get(r.route) ?? 0)) out.push(this.move(r.route, e, 'watch'));
    }
    return out;
  }

  /** Time passes: quarantines end in a trial, poison flags and old counts age out. */
  tick(): PoisonEvent[] {
    const p = this.policy();
    const now = this.now();
    const out: PoisonEvent[] = [];
    for (const [route, e] of this.routes) {
      e.kills = e.kills.filter((t) => now - t < p.windowMs);
      if (e.state === 'quarantined' && (now >= e.until || !p.quarantine)) out.push(this.move(route, e, p.quarantine ? 'trial' : 'watch'));
      else if (e.state === 'poison' && e.kills.length < p.kills) out.push(this.move(route, e, 'watch'));
      else if (e.state === 'watch' && e.kills.length === 0) this.routes.delete(route);
    }
    return out;
  }

  /** What the workers enforce. */
  quarantined(): QuarantinedRoute[] {
    const out: QuarantinedRoute[] = [];
    for (const [route, e] of this.routes) {
      if (e.state === 'quarantined') out.push({ route, until: e.until, mode: 'closed' });
      else if (e.state === 'trial') out.push({ route, until: 0, mode: 'trial' });
    }
    return out;
  }

  list(): PoisonRouteStatus[] {
    const out: PoisonRouteStatus[] = [];
    for (const [route, e] of this.routes) {
      if (e.state === 'watch') continue;
      out.push({ route, state: e.state, kills: e.kills.length, dumps: e.dumps, quarantinedRequests: e.quarantinedRequests,
        until: e.state === 'quarantined' ? e.until : undefined });
    }
    return out;
  }

  private move(route: string, e: Entry, to: PoisonState): PoisonEvent {
    const from = e.state;
    e.state = to;
    if (to === 'quarantined') e.until = this.now() + this.policy().quarantineMs;
    if (to === 'watch' && from === 'trial') e.kills = [];
    return { route, from, to, kills: e.kills.length, dumps: [...e.dumps] };
  }
}

/** What containPoisonRoutes needs of the arbiter. */
export interface PoisonHost {
  config: Config;
  metrics: Metrics | undefined;
  readonly dumpListeners: Array<(file: string, dump: Dump) => void>;
  readonly heartbeatListeners: Array<(h: WorkerHandle, hb: Heartbeat) => void>;
  poison: PoisonRoutes | undefined;
}

const CHECK_MS = 250;

/** Wires the bookkeeping to kills, heartbeats, the log, the metrics and the workers; returns a stop function. */
export function containPoisonRoutes(host: PoisonHost, log: Logger): () => void {
  const poison = new PoisonRoutes(() => policyOf(host.config));
  host.poison = poison;
  let sent = '[]';
  const broadcast = (force = false) => {
    const routes = poison.quarantined();
    const text = JSON.stringify(routes);
    if (text === sent && !force) return;
    sent = text;
    const msg: MasterToWorker = { cmd: IPC_CMD, act: 'quarantine', routes };
    for (const w of Object.values(cluster.workers ?? {})) {
      try { if (w?.isConnected()) w.send(msg); } catch { /* exiting: it needs no list */ }
    }
  };
  const apply = (ev: PoisonEvent | undefined) => {
    if (!ev) return;
    const p = policyOf(host.config);
    const fields = { event: `route-${ev.to === 'watch' ? 'recovered' : ev.to}`, route: ev.route, kills: ev.kills, dumps: ev.dumps };
    if (ev.to === 'poison' || (ev.to === 'quarantined' && ev.from === 'watch')) {
      host.metrics?.poisonDetected(ev.route);
      log.error(fields, `poison route ${ev.route}: its requests got ${ev.kills} workers killed within ${Math.round(p.windowMs / 1000)} s` +
        (ev.to === 'quarantined' ? `; quarantined for ${Math.round(p.quarantineMs / 1000)} s (503 + Retry-After)` : '') + `; dumps: ${ev.dumps.join(', ')}`);
    } else if (ev.to === 'quarantined') {
      log.error(fields, `route ${ev.route} killed a worker again after its quarantine: quarantined again for ${Math.round(p.quarantineMs / 1000)} s; dump ${ev.dumps[ev.dumps.length - 1] ?? ''}`);
    } else if (ev.to === 'trial') {
      log.warn(fields, `quarantine of ${ev.route} over: each worker lets one request through`);
    } else {
      log.info(fields, `route ${ev.route} ${ev.from === 'trial' ? 'served a request again: out of quarantine' : 'is no longer poison'}`);
    }
    broadcast();
  };
  host.dumpListeners.push((file, dump) => {
    if (dump.action === 'killed' && dump.request) apply(poison.noteKill(normalizeRoute(dump.request.url), file));
  });
  host.heartbeatListeners.push((_h, hb) => {
    for (const q of hb.quarantined ?? []) host.metrics?.quarantinedRequests(q.route, q.count);
    poison.noteHeartbeat(hb).forEach(apply);
  });
  // A new worker gets the list before it serves.
  const online = () => { if (poison.quarantined().length > 0) broadcast(true); };
  cluster.on('online', online);
  const timer = setInterval(() => poison.tick().forEach(apply), CHECK_MS).unref();
  return () => { clearInterval(timer); cluster.off('online', online); };
}
