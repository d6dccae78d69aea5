// Naming the holder of a lock when it is one of ours, on another worker. The waiter's worker asked the
// database who blocks it (worker/instrument/lock-lookup.ts) and got server session ids; every worker's
// heartbeat lists its busy sessions (pg backend pid / MySQL connection id → request), so the master's
// index of those last heartbeats turns an id into "worker 1234, GET /hold (request 6)". No message per
// query, no per-request cost: the index is read only when a dump with a lock wait arrives.
//
// The holder gets a dump of its own ("holds a lock that N requests wait on"), naming whom it blocks; its
// capture also gives the holding transaction's statements to the waiter's dump. Rate-limited, so N
// waiters (or a deadlock's two sides) make one holder dump, not a storm: at most one per holder session
// per HOLDER_DUMP_GAP_MS, and at most MAX_HOLDER_DUMPS in any HOLDER_WINDOW_MS. A holder's own dump does
// not name holders in turn (no cascade); the chain is already in the waiter's dump.

import { lockSentence, type DbKind, type LockHolder, type LockWait, type OwnHolder } from '../dump/locks';
import type { BlockedWaiter, Capture } from '../dump/types';
import type { DbSession } from '../protocol';
import type { DumpRequest } from './dump';
import type { WorkerHandle } from './worker-handle';

export const HOLDER_DUMP_GAP_MS = 60_000;
export const HOLDER_WINDOW_MS = 60_000;
export const MAX_HOLDER_DUMPS = 5;
/** The holder's capture is asked for at most this long: the waiter's dump waits for it. */
const HOLDER_CAPTURE_MS = 3000;
const STATEMENTS_KEPT = 5;

export interface HolderDeps {
  workers(): Iterable<WorkerHandle>;
  /** The one dump path (dump.ts), for the holder's dump. */
  dump(h: WorkerHandle, req: DumpRequest): Promise<string | undefined>;
  dumpTimeout(): number;
}

interface Hit {
  h: WorkerHandle;
  s: DbSession;
}

interface HolderJob extends Hit {
  holders: LockHolder[];
  waits: LockWait[];
}

const keyOf = (kind: DbKind, serverId: number) => `${kind}:${serverId}`;

/** What a holder's worker knows of its transaction: its last statements, from that worker's own capture. */
function statementsOf(cap: Capture | undefined, serverId: number): string[] | undefined {
  type Db = { connections?: Array<{ serverId?: number; transaction?: { statements?: Array<{ sql?: string }> }; pending?: Array<{ sql?: string }> }> };
  const db = cap?.state?.db as Db | undefined;
  const c = db?.connections?.find((x) => x.serverId === serverId);
  if (c === undefined) return undefined;
  const sql = [...(c.transaction?.statements ?? []), ...(c.pending ?? [])].map((s) => s.sql).filter((s): s is string => typeof s === 'string');
  return sql.slice(-STATEMENTS_KEPT);
}

export class LockHolders {
  /** When each holder session (worker id + session) last got a dump, and what it said. */
  private readonly dumped = new Map<string, { at: number; file?: string; statements?: string[] }>();
  private readonly recent: number[] = [];

  constructor(private readonly deps: HolderDeps) {}

  /** The sessions of every live worker, from their last heartbeats, by (kind, server id). */
  private index(): Map<string, Hit> {
    const out = new Map<string, Hit>();
    for (const h of this.deps.workers()) {
      if (!h.alive) continue;
      for (const s of h.heartbeat?.db ?? []) out.set(keyOf(s.kind, s.serverId), { h, s });
    }
    return out;
  }

  /** Rate limit: one dump per holder session per gap, a few per window overall. */
  private allow(key: string, now: number): boolean {
    const last = this.dumped.get(key);
    if (last !== undefined && now - last.at < HOLDER_DUMP_GAP_MS) return false;
    while (this.recent.length > 0 && now - this.recent[0]! > HOLDER_WINDOW_MS) this.recent.shift();
    if (this.recent.length >= MAX_HOLDER_DUMPS) return false;
    this.recent.push(now);
    for (const [k, v] of this.dumped) if (now - v.at > HOLDER_DUMP_GAP_MS) this.dumped.delete(k);
    this.dumped.set(key, { at: now });
    return true;
  }

  /**
   * Completes `capture.locks` in place: holders that are requests of other workers are named, their
   * statements added, the sentences made again; each such holder gets its own dump. Never throws.
   */
  async name(waiter: WorkerHandle, req: DumpRequest, capture: Capture): Promise<void> {
    const waits = capture.locks?.waits ?? [];
    if (waits.length === 0) return;
    const index = this.index();
    const now = Date.now();
    const jobs = new Map<string, HolderJob>();
    for (const w of waits) {
      for (const holder of w.chain) {
        if (holder.ours !== undefined) continue;
        const hit = index.get(keyOf(w.kind, holder.serverId));
        if (hit === undefined || hit.h === waiter) continue;
        const ours: OwnHolder = { workerPid: hit.h.pid, workerId: hit.h.id };
        if (hit.s.requestId !== undefined) ours.requestId = hit.s.requestId;
        if (hit.s.method !== undefined) ours.method = hit.s.method;
        if (hit.s.url !== undefined) ours.url = hit.s.url;
        if (hit.s.startedAt !== undefined) ours.requestAgeMs = now - hit.s.startedAt;
        holder.ours = ours;
        const key = `${hit.h.id}:${keyOf(w.kind, holder.serverId)}`;
        let job = jobs.get(key);
        if (job === undefined) jobs.set(key, job = { ...hit, holders: [], waits: [] });
        job.holders.push(holder);
        if (!job.waits.includes(w)) job.waits.push(w);
      }
    }
    // A holder's dump names holders no further: the waiter's dump already has the whole chain.
    if (!req.holderDump) await Promise.all([...jobs.entries()].map(([key, job]) => this.dumpHolder(key, job, waiter, capture, now)));
    for (const w of waits) w.sentence = lockSentence(w);
  }

  private async dumpHolder(key: string, job: HolderJob, waiter: WorkerHandle, capture: Capture, now: number): Promise<void> {
    const earlier = this.dumped.get(key);
    if (!this.allow(key, now)) {
      // Rate-limited: what the last holder dump learned still names the statements and the file.
      for (const holder of job.holders) {
        if (earlier?.statements !== undefined) holder.ours!.statements = earlier.statements;
        if (earlier?.file !== undefined) holder.ours!.dump = earlier.file;
      }
      return;
    }
    const budget = Math.min(HOLDER_CAPTURE_MS, this.deps.dumpTimeout());
    const cap = job.h.channel ? await job.h.channel.capture('slow', budget).catch(() => undefined) : undefined;
    const statements = statementsOf(cap, job.s.serverId);
    const blocks: BlockedWaiter[] = job.waits.map((w) => {
      const r = capture.inflight.find((x) => x.id === w.requestId);
      const b: BlockedWaiter = { workerPid: waiter.pid, holderServerId: job.holders[0]!.serverId };
      if (w.requestId !== undefined) b.requestId = w.requestId;
      if (r !== undefined) { b.method = r.method; b.url = r.url; }
      if (w.sql !== undefined) b.sql = w.sql;
      if (w.waitedMs !== undefined) b.waitedMs = w.waitedMs;
      return b;
    });
    const n = Math.max(blocks.length, ...job.holders.map((h) => h.blocking ?? 0));
    const s = job.s;
    const who = s.method !== undefined && s.url !== undefined ? `${s.method} ${s.url} (request ${s.requestId ?? '?'})` : 'a request';
    const first = blocks[0];
    const whom = first === undefined ? '' : `: ${first.method ?? ''} ${first.url ?? ''} on worker ${waiter.id} (pid ${waiter.pid}) has waited ` +
      `${((first.waitedMs ?? 0) / 1000).toFixed(1)} s on it`;
    const summary = `${who} on worker ${job.h.id} (pid ${job.h.pid}) holds a lock that ${n === 1 ? '1 request waits' : `${n} requests wait`} on${whom}`;
    const file = await this.deps.dump(job.h, {
      reason: 'slow', summary, kill: false, capture: cap, requestId: s.requestId, blocks, holderDump: true,
    }).catch(() => undefined);
    this.dumped.set(key, { at: now, file, statements });
    for (const holder of job.holders) {
      if (statements !== undefined) holder.ours!.statements = statements;
      if (file !== undefined) holder.ours!.dump = file;
    }
  }
}
