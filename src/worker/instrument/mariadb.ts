// mariadb (the MariaDB connector): its Connection and Pool classes, patched on their prototypes.
// mariadb publishes no diagnostics channel (3.5): we patch.
//
// Reaching the classes: mariadb 3.5 is an ES module, and what `require('mariadb')` loads is an
// esbuild bundle (dist/promise.cjs, dist/callback.cjs) that exports factories, not classes. So the
// bundle's source gets, at the top of each `class … extends …{` body, a static block that hands the
// class to us as it is defined (transform below, applied by hook.ts while the file compiles); we keep
// the ones shaped like the connector's Connection and Pool. ESM imports of mariadb are resolved to
// the same bundles (esm-redirect.ts). mariadb ≤ 3.4 was plain CommonJS: lib/connection.js and
// lib/pool.js export the classes, patched directly.
//
// Per statement: the connector's methods that issue one (query, prepareExecute for execute(), batch,
// changeTransaction for commit/rollback) take a `cmdParam` object that rides on the command until it
// ends; our Statement rides on it too, so what is pending is read at dump time from the connection's
// own queues (receiveQueue: sent, awaiting the answer; sendQueue and the pre-authentication queue:
// not sent yet). Whether a transaction is open is the server's word: the status flags of the last
// OK/EOF packet (info.status & SERVER_STATUS_IN_TRANS), read when the statement's promise settles.
// pool.query() and pool.getConnection() pass their cmdParam to Pool#getConnection: the statement is
// made there (app's stack, app's request), listed as a pool waiter, and adopted by the connection's
// query() that follows.

import type { EsmRedirect } from './esm-redirect';
import type { ModuleTarget } from './hook';
import { isObject, wrapMethod, type Method } from './patch';
import {
  connStateOf, newStatement, PendingList, poolStateOf,
  type ConnAdapter, type ConnState, type PoolAdapter, type PoolState, type Statement, kConn, kPool,
} from './state';

const kStmt = Symbol('superv.statement');
const kPoolOf = Symbol('superv.mariadb.pool');
const SERVER_STATUS_IN_TRANS = 1;
/** connection_status.js: TERMINATING and after. */
const STATUS_TERMINATING = 6;
/** Where the bundle's static blocks find us: global, as the bundle cannot import anything of ours. */
const NOTIFY = Symbol.for('superv.mariadb.class');

interface CmdParam {
  sql?: unknown;
  values?: unknown;
  [kStmt]?: Statement;
}

interface Command {
  cmdParam?: CmdParam | null;
}

interface Queue {
  length: number;
  peekAt?(i: number): unknown;
}

interface MariaConn {
  receiveQueue?: Queue;
  sendQueue?: Queue;
  waitingAuthenticationQueue?: Queue;
  status?: number;
  info?: { threadId?: number | null; status?: number | null } | null;
  opts?: { database?: string; host?: string; port?: number };
  on(event: string, fn: (this: MariaConn) => void): unknown;
  [kConn]?: ConnState | null;
  [kPoolOf]?: PoolState;
}

interface MariaPool {
  opts?: { connectionLimit?: number };
  closed?: boolean;
  totalConnections?(): number;
  idleConnections?(): number;
  taskQueueSize?(): number;
  [kPool]?: PoolState | null;
}

function at(q: Queue | undefined, i: number): Command | undefined {
  const v = q?.peekAt?.(i);
  return isObject(v) ? (v as Command) : undefined;
}

const connAdapter: ConnAdapter = {
  driver: 'mariadb',
  pending(client, max) {
    const c = client as MariaConn;
    const list = new PendingList(max);
    // A command waiting to be sent is in sendQueue, and in receiveQueue too when it expects an answer.
    const unsent = new Set<Command>();
    for (const q of [c.sendQueue, c.waitingAuthenticationQueue]) {
      for (let i = 0; i < (q?.length ?? 0); i++) {
        const cmd = at(q, i);
        if (cmd !== undefined) unsent.add(cmd);
      }
    }
    for (let i = 0; i < (c.receiveQueue?.length ?? 0); i++) {
      const cmd = at(c.receiveQueue, i);
      if (cmd !== undefined && !unsent.has(cmd)) list.add(cmd.cmdParam?.[kStmt], true);
    }
    for (const cmd of unsent) list.add(cmd.cmdParam?.[kStmt], false);
    return list;
  },
  serverId: (client) => (client as MariaConn).info?.threadId ?? undefined,
  closed: (client) => ((client as MariaConn).status ?? 0) >= STATUS_TERMINATING,
  database(client) {
    const o = (client as MariaConn).opts;
    return o === undefined ? undefined : `${o.database ?? ''}@${o.host ?? '?'}:${o.port ?? '?'}`;
  },
  pool: (client) => (client as MariaConn)[kPoolOf],
};

const poolAdapter: PoolAdapter = {
  driver: 'mariadb',
  counts(pool) {
    const p = pool as MariaPool;
    const total = p.totalConnections?.() ?? 0;
    const idle = p.idleConnections?.() ?? 0;
    return { total, idle, waiting: p.taskQueueSize?.() ?? 0, max: p.opts?.connectionLimit };
  },
  closed: (pool) => (pool as MariaPool).closed === true,
  clients: () => [],
};

function sqlOf(p: CmdParam): string {
  return typeof p.sql === 'string' ? p.sql : '';
}

/** The statement settled: the server's transaction flag, as of its last OK/EOF packet, says what is open. */
function onSettled(c: MariaConn, stmt: Statement, failed: boolean): void {
  try {
    stmt.failed = failed;
    const status = c.info?.status;
    // An error packet carries no status: the flag still says what the last success left.
    const inTx = failed || typeof status !== 'number' ? undefined : (status & SERVER_STATUS_IN_TRANS) !== 0;
    stmt.conn?.finish(stmt, inTx, false);
  } catch {
    // Instrumentation never breaks a query.
  }
}

function onIssue(c: MariaConn, p: unknown, below: Function): Statement | undefined {
  if (!isObject(p)) return undefined;
  const param = p as CmdParam;
  const conn = connStateOf(c, connAdapter);
  if (conn === undefined) return undefined;
  const waiting = param[kStmt];
  const stmt = waiting !== undefined && waiting.kind === 'query' && waiting.conn === undefined
    ? waiting
    : newStatement(sqlOf(param), param.values, below);
  stmt.conn = conn;
  param[kStmt] = stmt;
  return stmt;
}

function wrapIssue(original: Method): Method {
  return function supervMariadbIssue(this: unknown, cmdParam?: unknown, resolve?: unknown, reject?: unknown): unknown {
    let stmt: Statement | undefined;
    try {
      stmt = onIssue(this as MariaConn, cmdParam, supervMariadbIssue);
    } catch {
      // As above.
    }
    if (stmt === undefined || typeof resolve !== 'function' || typeof reject !== 'function') {
      return Reflect.apply(original, this, arguments) as unknown;
    }
    const c = this as MariaConn;
    const s = stmt;
    return Reflect.apply(original, this, [cmdParam, function supervMariadbResolved(this: unknown): unknown {
      onSettled(c, s, false);
      return Reflect.apply(resolve, this, arguments) as unknown;
    }, function supervMariadbRejected(this: unknown): unknown {
      onSettled(c, s, true);
      return Reflect.apply(reject, this, arguments) as unknown;
    }]);
  };
}

function wrapGetConnection(original: Method): Method {
  return function supervMariadbGetConnection(this: unknown, cmdParam?: unknown, callback?: unknown): unknown {
    let pool: PoolState | undefined;
    let stmt: Statement | undefined;
    try {
      if (isObject(cmdParam) && typeof callback === 'function') {
        pool = poolStateOf(this as MariaPool, poolAdapter);
        const p = cmdParam as CmdParam;
        const sql = sqlOf(p);
        stmt = newStatement(sql, p.values, supervMariadbGetConnection, sql === '' ? 'connect' : 'query');
        pool?.addWaiter(stmt);
        if (sql !== '') p[kStmt] = stmt;
      }
    } catch {
      // As above.
    }
    if (pool === undefined || stmt === undefined || typeof callback !== 'function') {
      return Reflect.apply(original, this, arguments) as unknown;
    }
    const w = stmt;
    const owner = pool;
    return Reflect.apply(original, this, [cmdParam, function supervMariadbConnected(this: unknown, err?: unknown, conn?: unknown): unknown {
      owner.waiters.delete(w);
      w.connectedAt = Date.now();
      if (!err && isObject(conn)) (conn as unknown as MariaConn)[kPoolOf] = owner;
      return Reflect.apply(callback, this, arguments) as unknown;
    }]);
  };
}

const ISSUERS = ['query', 'prepareExecute', 'batch', 'changeTransaction'];

function isConnectionClass(proto: Record<PropertyKey, unknown>): boolean {
  return typeof proto.query === 'function' && typeof proto.changeTransaction === 'function' && typeof proto.addCommandEnable === 'function';
}

function isPoolClass(proto: Record<PropertyKey, unknown>): boolean {
  return typeof proto.getConnection === 'function' && typeof proto.taskQueueSize === 'function' && typeof proto._managePoolSize === 'function';
}

/** Which of the connector's classes were seen and patched: a bundle that hid them fails loudly. */
const seen = { connection: false, pool: false };

/** Patches the class when it is the connector's Connection or Pool; other classes are left alone. */
function onClass(cls: unknown): void {
  try {
    const proto = (cls as { prototype?: unknown } | undefined)?.prototype;
    if (!isObject(proto)) return;
    if (isConnectionClass(proto)) {
      for (const m of ISSUERS) if (typeof proto[m] === 'function') wrapMethod(proto, m, wrapIssue);
      seen.connection = true;
    } else if (isPoolClass(proto)) {
      wrapMethod(proto, 'getConnection', wrapGetConnection);
      seen.pool = true;
    }
  } catch {
    // Never break the connector's module while it loads.
  }
}

// `class X extends Y {` in the bundle: a static block right after the brace runs once the class is
// defined (methods included), with `this` the class.
const CLASS_HEAD = /\bclass(?:\s+[\w$]+)?\s+extends\s+[\w$.]+\s*\{/g;
const STATIC_BLOCK = `static{globalThis[Symbol.for(${JSON.stringify(NOTIFY.description)})]?.(this)}`;

function transformBundle(source: string): string {
  (globalThis as { [NOTIFY]?: (cls: unknown) => void })[NOTIFY] = onClass;
  seen.connection = false;
  seen.pool = false;
  return source.replace(CLASS_HEAD, (head) => head + STATIC_BLOCK);
}

function checkBundle(): void {
  if (!seen.connection) throw new Error('no class shaped like mariadb\'s Connection was found in the bundle');
}

function patchClass(what: 'Connection' | 'Pool'): (exports: unknown) => void {
  return (exports) => {
    onClass(exports);
    if (what === 'Connection' ? !seen.connection : !seen.pool) throw new Error(`mariadb's ${what} has not the expected methods`);
  };
}

export const mariadbTargets: ModuleTarget[] = [
  { driver: 'mariadb', suffix: '/mariadb/dist/promise.cjs', transform: transformBundle, patch: checkBundle, loadOnly: true },
  { driver: 'mariadb', suffix: '/mariadb/dist/callback.cjs', transform: transformBundle, patch: checkBundle, loadOnly: true },
  // mariadb ≤ 3.4: CommonJS files exporting the classes.
  { driver: 'mariadb', suffix: '/mariadb/lib/connection.js', patch: patchClass('Connection') },
  { driver: 'mariadb', suffix: '/mariadb/lib/pool.js', patch: patchClass('Pool') },
];

/** mariadb 3.5's ES modules are resolved to its CommonJS bundles, which the targets above instrument. */
export const mariadbRedirects: EsmRedirect[] = [
  { from: '/mariadb/promise.js', to: '/mariadb/dist/promise.cjs' },
  { from: '/mariadb/callback.js', to: '/mariadb/dist/callback.cjs' },
];
