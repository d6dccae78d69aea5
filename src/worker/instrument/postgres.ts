// postgres.js (`postgres`): its CommonJS build (cjs/src/query.js, cjs/src/connection.js). An ESM
// `import postgres from 'postgres'` is resolved to that same build (esm-redirect.ts), so one patch
// covers both. postgres.js publishes no diagnostics channel (3.4): we patch.
//
// postgres.js keeps its state in closures, not on prototypes, so the patch points are its two exports:
// - query.js's Query class is replaced by a subclass whose constructor makes the Statement. The
//   constructor runs inside the app's sql`…` call, so the capture starts at the app's frame (a tagged
//   template's call site is synchronous; awaiting the query later is not, V8 calls then() from a job).
// - connection.js's Connection factory is wrapped: each connection object it returns gets its own
//   execute()/connect() wrapper (once per connection, never per query). A query handed to execute()
//   was written to that connection's socket: it is pending there until its resolve/reject runs.
// What the driver forgets we keep: the queries sent on each connection (FIFO, as the server answers),
// and the backend pid it stores on each query it sends (query.state).
//
// Transactions: sql.begin() sends `begin` and later `commit`/`rollback` on a reserved connection;
// ReadyForQuery's status lives in a closure we cannot read, so the statements' keywords decide
// (ConnState.finish with no server word).
// Pool waiters: a query postgres.js has handled but no connection has executed yet is waiting for a
// connection; it is listed on the pool its handler sent queries to before (one pool per postgres(),
// made when it runs its first query).
// The lock look-up (lock-side.ts) makes its side connection with the postgres() of the same copy of
// the driver as the waiting connection (sideFactoryOf) and its options, inside untracked().

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ModuleTarget } from './hook';
import { isObject } from './patch';
import {
  newStatement, PendingList, poolStateOf, trackConnection,
  type ConnAdapter, type ConnState, type PoolAdapter, type PoolState, type Statement, kConn, kPool,
} from './state';

const kStmt = Symbol('superv.statement');
const kSent = Symbol('superv.postgres.sent');
const kQueues = Symbol('superv.postgres.queues');
const kOptions = Symbol('superv.postgres.options');
const kWaitPool = Symbol('superv.postgres.waitPool');
const kIndex = Symbol('superv.postgres.index');
/** On the patched Query class and Connection factory: a second copy of superv does not wrap them again. */
const kPatched = Symbol.for('superv.postgres.patched');

interface Backend {
  pid?: number | null;
}

interface PgjsQuery {
  strings?: unknown;
  args?: unknown;
  handler?: unknown;
  executed?: boolean;
  state?: Backend | null;
  statement?: { string?: unknown } | null;
  resolve?: (x: unknown) => unknown;
  reject?: (x: unknown) => unknown;
  [kStmt]?: Statement;
  [kWaitPool]?: PoolState;
}

interface Sized {
  length: number;
}

/** postgres()'s options as it parsed them (index.js parseOptions): what a side connection copies. */
export interface PgjsOptions {
  max?: number;
  database?: string;
  host?: string[] | string;
  port?: number[] | number;
  path?: string | false;
  user?: string;
  pass?: unknown;
  ssl?: unknown;
  connection?: Record<string, unknown>;
  target_session_attrs?: string | null;
  socket?: unknown;
  keep_alive?: number | null;
}

interface PgjsQueues {
  connecting?: Sized;
  reserved?: Sized;
  closed?: Sized;
  ended?: Sized;
  open?: Sized;
  busy?: Sized;
  full?: Sized;
  [kOptions]?: PgjsOptions;
  [kPool]?: PoolState | null;
  /** The driver copy's index.js (postgres()), next to the connection.js that made these queues' connections. */
  [kIndex]?: string;
}

interface PgjsConnection {
  queue?: unknown;
  execute?: (q: unknown) => unknown;
  connect?: (q: unknown) => unknown;
  [kConn]?: ConnState | null;
  [kSent]?: PgjsQuery[];
  [kQueues]?: PgjsQueues;
}

const len = (q: Sized | undefined): number => q?.length ?? 0;

const connAdapter: ConnAdapter = {
  driver: 'postgres',
  pending(client, max) {
    const list = new PendingList(max);
    for (const q of (client as PgjsConnection)[kSent] ?? []) {
      const stmt = q[kStmt];
      // The SQL postgres.js built and sent ($1 placeholders, fragments inlined) says more than the template.
      const built = q.statement?.string;
      if (stmt !== undefined && typeof built === 'string' && built !== '') stmt.sql = built;
      list.add(stmt, true);
    }
    return list;
  },
  serverId(client) {
    for (const q of (client as PgjsConnection)[kSent] ?? []) if (typeof q.state?.pid === 'number') return q.state.pid;
    return lastPid.get(client);
  },
  closed(client) {
    const c = client as PgjsConnection;
    const ended = c[kQueues]?.ended;
    return ended !== undefined && c.queue === ended;
  },
  database(client) {
    const o = (client as PgjsConnection)[kQueues]?.[kOptions];
    if (o === undefined) return undefined;
    const host = Array.isArray(o.host) ? o.host[0] : o.host;
    const port = Array.isArray(o.port) ? o.port[0] : o.port;
    return `${o.database ?? ''}@${host ?? '?'}:${port ?? '?'}`;
  },
  pool: (client) => (client as PgjsConnection)[kQueues]?.[kPool] ?? undefined,
};

const poolAdapter: PoolAdapter = {
  driver: 'postgres',
  counts(pool) {
    const q = pool as PgjsQueues;
    const idle = len(q.open);
    const total = idle + len(q.connecting) + len(q.reserved) + len(q.busy) + len(q.full);
    return { total, idle, waiting: q[kPool]?.waiters.size ?? 0, max: q[kOptions]?.max };
  },
  closed(pool) {
    const q = pool as PgjsQueues;
    const max = q[kOptions]?.max;
    return max !== undefined && len(q.ended) >= max;
  },
  clients: () => [],
};

/** The backend pid a connection last reported, for when nothing is pending on it. */
const lastPid = new WeakMap<object, number>();
/** The pool each postgres() handler (and each transaction's) sent queries to. */
const handlerPools = new WeakMap<Function, PoolState>();
/** A tagged template's strings array is one object per call site: its SQL text is made once. */
const templates = new WeakMap<object, string>();

/** Set while the lock look-up makes and uses its side connection: nothing postgres.js makes then is tracked. */
let untracking = false;

/** Runs `fn` (which makes a postgres() or a query of its) with our instrumentation looking away. */
export function untracked<T>(fn: () => T): T {
  const was = untracking;
  untracking = true;
  try {
    return fn();
  } finally {
    untracking = was;
  }
}

/** The postgres() function of the driver copy that made `client`, and the options its pool was made with. */
export function sideFactoryOf(client: object): { postgres: (options: object) => unknown; options: PgjsOptions } | undefined {
  const q = (client as PgjsConnection)[kQueues];
  const options = q?.[kOptions];
  const index = q?.[kIndex];
  if (options === undefined || index === undefined) return undefined;
  // Already loaded: it is the file that required the connection.js we patched.
  const postgres = createRequire(index)(index) as unknown;
  return typeof postgres === 'function' ? { postgres: postgres as (options: object) => unknown, options } : undefined;
}

function templateOf(strings: unknown): string {
  if (!Array.isArray(strings)) return '';
  if (strings.length === 1) return typeof strings[0] === 'string' ? strings[0] : '';
  const known = templates.get(strings);
  if (known !== undefined) return known;
  let text = String(strings[0]);
  for (let i = 1; i < strings.length; i++) text += `$${i}${String(strings[i])}`;
  templates.set(strings, text);
  return text;
}

function onCreated(q: PgjsQuery, below: Function): void {
  q[kStmt] = newStatement(templateOf(q.strings), q.args, below);
}

/**
 * The query is being run (awaited, .execute()): a connection takes it a microtask later, or, when the
 * pool has none open, it waits for one. Only then is it listed as a waiter (with its reject wrapped, so
 * a query failed while waiting leaves the list): the common case pays a WeakMap lookup.
 */
function onHandle(q: PgjsQuery): void {
  const stmt = q[kStmt];
  if (stmt === undefined || stmt.conn !== undefined || typeof q.handler !== 'function') return;
  // A handler no connection ran a query for yet (a new transaction's) sends straight to its connection;
  // a pool has no free connection only after it ran queries, so its handler is known by then.
  const pool = handlerPools.get(q.handler);
  if (pool === undefined || len((pool.pool as PgjsQueues).open) > 0) return;
  pool.addWaiter(stmt);
  q[kWaitPool] = pool;
  const reject = q.reject;
  if (typeof reject !== 'function') return;
  q.reject = (x) => {
    pool.waiters.delete(stmt);
    return reject(x);
  };
}

function connOf(c: PgjsConnection): ConnState | undefined {
  let s = c[kConn];
  if (s === undefined) c[kConn] = s = trackConnection(c, connAdapter) ?? null;
  return s ?? undefined;
}

function onDone(c: PgjsConnection, q: PgjsQuery, failed: boolean): void {
  const sent = c[kSent];
  const stmt = q[kStmt];
  if (sent === undefined || stmt === undefined || stmt.endedAt !== 0) return;
  if (typeof q.state?.pid === 'number') lastPid.set(c, q.state.pid);
  // The server answers in order: whatever was sent before this query is done too (a cursor's last
  // page resolves through a callback we did not wrap).
  const at = sent.indexOf(q);
  if (at >= 0) sent.splice(0, at + 1);
  stmt.failed = failed;
  stmt.conn?.finish(stmt, undefined, false);
}

function onExecuted(c: PgjsConnection, q: unknown): void {
  if (!isObject(q)) return;
  const query = q as PgjsQuery;
  const stmt = query[kStmt];
  if (stmt === undefined || stmt.conn !== undefined || stmt.endedAt !== 0) return;
  const conn = connOf(c);
  if (conn === undefined) return;
  // Made on the pool's first query: postgres.js builds pools it may never use (its LISTEN connection's).
  const queues = c[kQueues];
  const pool = queues === undefined ? undefined : poolStateOf(queues, poolAdapter);
  const waited = query[kWaitPool];
  if (waited !== undefined) {
    waited.waiters.delete(stmt);
    stmt.connectedAt = Date.now();
  }
  if (pool !== undefined && typeof query.handler === 'function' && !handlerPools.has(query.handler)) handlerPools.set(query.handler, pool);
  stmt.conn = conn;
  (c[kSent] ??= []).push(query);
  const resolve = query.resolve;
  const reject = query.reject;
  if (typeof resolve !== 'function' || typeof reject !== 'function') return;
  query.resolve = (x) => {
    onDone(c, query, false);
    return resolve(x);
  };
  query.reject = (x) => {
    onDone(c, query, true);
    return reject(x);
  };
}

function patchQuery(exports: unknown): void {
  if (!isObject(exports) || typeof exports.Query !== 'function') throw new Error('postgres.js query.js exports no Query class');
  const Original = exports.Query as new (...args: unknown[]) => PgjsQuery & { handle(): unknown };
  if ((Original as { [kPatched]?: true })[kPatched] === true) return;
  class Query extends Original {
    constructor(...args: unknown[]) {
      super(...args);
      try {
        if (!untracking) onCreated(this, Query);
      } catch {
        // Instrumentation never breaks a query.
      }
    }

    override handle(): unknown {
      if (this.executed !== true) {
        try {
          onHandle(this);
        } catch {
          // As above.
        }
      }
      return super.handle();
    }
  }
  Object.defineProperty(Query, kPatched, { value: true });
  exports.Query = Query;
}

function onConnection(c: unknown, options: unknown, queues: unknown, index: string): void {
  // Connection(options) with no queues: postgres.js's throwaway connection for a cancel request.
  if (!isObject(c) || !isObject(queues) || !isObject(options)) return;
  const conn = c as PgjsConnection;
  if (untracking) {
    conn[kConn] = null;
    return;
  }
  const q = queues as PgjsQueues;
  q[kOptions] = options as PgjsOptions;
  q[kIndex] = index;
  conn[kQueues] = q;
  // execute(): the query is written to this connection. connect(query): the query that made postgres.js
  // open the connection, sent from inside once it is ready.
  for (const name of ['execute', 'connect'] as const) {
    const original = conn[name];
    if (typeof original !== 'function') continue;
    conn[name] = function supervPostgresSend(this: unknown, query: unknown): unknown {
      const r = Reflect.apply(original, this, arguments) as unknown;
      try {
        onExecuted(conn, query);
      } catch {
        // As above.
      }
      return r;
    };
  }
}

function patchConnection(exports: unknown, filename: string): unknown {
  if (typeof exports !== 'function') throw new Error('postgres.js connection.js does not export the Connection factory');
  if ((exports as { [kPatched]?: true })[kPatched] === true) return undefined;
  const factory = exports as (...args: unknown[]) => unknown;
  const index = join(dirname(filename), 'index.js');
  const wrapped = function Connection(this: unknown, options?: unknown, queues?: unknown): unknown {
    const c = Reflect.apply(factory, this, arguments) as unknown;
    try {
      onConnection(c, options, queues, index);
    } catch {
      // As above.
    }
    return c;
  };
  Object.defineProperty(wrapped, kPatched, { value: true });
  return wrapped;
}

export const postgresTargets: ModuleTarget[] = [
  { driver: 'postgres', suffix: '/postgres/cjs/src/query.js', patch: patchQuery, loadOnly: true },
  { driver: 'postgres', suffix: '/postgres/cjs/src/connection.js', patch: patchConnection, loadOnly: true },
];

/** ESM imports of postgres.js load its CommonJS build instead, which the targets above instrument. */
export const postgresRedirects = [{ from: '/postgres/src/index.js', to: '/postgres/cjs/src/index.js' }];
