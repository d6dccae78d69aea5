// Who blocks whom, as the database server said at dump time: the shape the worker's look-up
// (src/worker/instrument/lock-lookup.ts) writes, the master completes (naming holders that are requests of
// other workers) and the readers show. The one sentence a person reads is made here, once, so the worker,
// the master (after it named a holder) and the readers all say it the same way:
//
//   blocked by 4321 (worker 1234 GET /hold (request 6, 4.1 s), idle in transaction, transaction open 4.2 s):
//   idle in transaction, last query `SELECT * FROM accounts WHERE id = 1 FOR UPDATE`

/** The server family: what decides which catalog is asked (pg_locks or InnoDB's tables). */
export type DbKind = 'postgres' | 'mysql';

/** A holder that is one of our own requests: this worker's, or (named by the master) another worker's. */
export interface OwnHolder {
  workerPid: number;
  workerId?: number;
  requestId?: number;
  method?: string;
  url?: string;
  /** Age of the request when the holder was named. */
  requestAgeMs?: number;
  /** The holding transaction's last statements, oldest first (from its worker's view). */
  statements?: string[];
  /** The dump taken of the holder, when the master took one. */
  dump?: string;
}

/** One session in a wait chain: the direct blocker first, the chain's head last. */
export interface LockHolder {
  /** pg backend pid / MySQL connection (thread) id. */
  serverId: number;
  /** 'idle in transaction', 'active' (pg); 'RUNNING', 'LOCK WAIT' (InnoDB) with the PROCESSLIST command. */
  state?: string;
  /** The holder's current statement, or (idle) its last one. */
  query?: string;
  /** True when `query` is the last statement of an idle session, not a running one. */
  queryIsLast?: boolean;
  /** True when the server keeps no text for it (InnoDB: an idle transaction's trx_query is NULL). */
  queryUnknown?: boolean;
  /** Why the server would not show its state and query to the look-up's user (pg: another user's session). */
  queryHidden?: string;
  /** How long its transaction has been open, when the server says. */
  txAgeMs?: number;
  application?: string;
  client?: string;
  user?: string;
  database?: string;
  /** The lock it holds or the waiter wants: mode and what (`RowExclusiveLock on i16_accounts`). */
  lock?: string;
  /** How many sessions wait on it (all of them, not only ours). */
  blocking?: number;
  /** Set when it is one of our requests. */
  ours?: OwnHolder;
}

/** One of our statements that waits on a lock, and the chain behind it. */
export interface LockWait {
  kind: DbKind;
  /** The waiting session: our connection's server id. */
  serverId: number;
  /** Our connection number in the `db` state (`pg connection 3`). */
  connection?: number;
  sql?: string;
  requestId?: number;
  /** `transferFunds src/transfer.js:41`: the app frame that issued the waiting statement. */
  site?: { function: string; file: string; line: number };
  /** How long the statement has waited, when the look-up ran. */
  waitedMs?: number;
  /** What the server says it waits for (`Lock/transactionid`, `LOCK WAIT`). */
  waitingFor?: string;
  /** The direct blocker first; a chain (A waits on B waits on C) ends at its head. Empty: no blocker found. */
  chain: LockHolder[];
  /** More direct blockers than the first (pg: several share a lock). */
  otherBlockers?: number[];
  /** The chain was cut at the depth or time bound. */
  chainCut?: string;
  /** The fixed-form line: `blocked by …`, or why no holder was found. */
  sentence: string;
}

export interface LockLookup {
  /** Set when the look-up ran. */
  server?: string;
  elapsedMs?: number;
  waits: LockWait[];
  /** Why the look-up is missing or partial: off, denied, timed out, driver not loaded, loop blocked. */
  missing?: string[];
}

function ago(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function oneLine(sql: string, max = 300): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** `worker 1234 GET /hold (request 6, 4.1 s)`, or the server's own words on an outside session. */
export function holderWho(h: LockHolder): string {
  const o = h.ours;
  if (o !== undefined) {
    const req = o.method !== undefined && o.url !== undefined
      ? ` ${o.method} ${pathOnly(o.url)} (request ${o.requestId ?? '?'}${o.requestAgeMs !== undefined ? `, ${ago(o.requestAgeMs)}` : ''})`
      : o.requestId !== undefined ? ` request ${o.requestId}` : ', request unknown';
    return `worker ${o.workerPid}${req}`;
  }
  const parts = [
    h.application ? `application ${h.application}` : undefined,
    h.client ? `client ${h.client}` : undefined,
    h.user ? `user ${h.user}` : undefined,
  ].filter((x): x is string => x !== undefined);
  return parts.length > 0 ? parts.join(', ') : 'a session outside superv';
}

function holderWhat(h: LockHolder): string {
  if (h.queryUnknown) return 'idle in transaction, last query unknown (the server keeps no text for an idle transaction)';
  if (h.queryHidden !== undefined) return `query not shown (${h.queryHidden})`;
  if (h.query === undefined) return 'query unknown';
  return h.queryIsLast ? `idle in transaction, last query \`${oneLine(h.query)}\`` : `\`${oneLine(h.query)}\``;
}

function holderPart(h: LockHolder): string {
  const tx = h.txAgeMs === undefined ? 'transaction age unknown' : `transaction open ${ago(h.txAgeMs)}`;
  const own = h.ours?.statements;
  // An idle InnoDB holder has no text on the server; its worker's view of the transaction does.
  const what = h.queryUnknown && own !== undefined && own.length > 0
    ? `idle in transaction, last query \`${oneLine(own[own.length - 1]!)}\``
    : holderWhat(h);
  return `${h.serverId} (${holderWho(h)}, ${h.state ?? 'state unknown'}, ${tx}): ${what}`;
}

/** The fixed-form line for a wait: `blocked by <id> (<who>, <state>, transaction open <age>): <query>`, then the chain. */
export function lockSentence(w: LockWait): string {
  const [first, ...rest] = w.chain;
  if (first === undefined) {
    return w.waitingFor !== undefined ? `waiting (${w.waitingFor}), holder not identified` : 'not waiting on a lock';
  }
  let s = `blocked by ${holderPart(first)}`;
  for (const h of rest) s += ` — which is blocked by ${holderPart(h)}`;
  if (w.otherBlockers?.length) s += ` (also blocked by ${w.otherBlockers.join(', ')})`;
  if (w.chainCut !== undefined) s += ` (${w.chainCut})`;
  if (w.chain[w.chain.length - 1]?.serverId === w.serverId) s += ' (a deadlock: the chain comes back to this statement; the server will end one of them)';
  return s;
}

/** The holder that matters for grouping: the chain's head (who everyone waits for in the end). */
export function chainHead(w: LockWait): LockHolder | undefined {
  return w.chain[w.chain.length - 1];
}
