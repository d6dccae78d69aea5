// Side connections for the lock look-up, one kind per driver: a fresh connection made with the settings
// of one of the app's own connections (host, port, user, password, database, TLS), never a connection
// taken from the app's pool, and never tracked by our instrumentation (kConn = null before its first
// query, so it is not listed in dumps). Each one can be destroyed at once when the look-up's time is up:
// closing politely would wait on the very server that does not answer.
//
// A new driver plugs in with one more LockDriver in `lockDrivers`.

import type { DbKind } from '../../dump/locks';
import { isObject } from './patch';
import { sideFactoryOf, untracked } from './postgres';
import { kConn, type Driver } from './state';

export interface SideSession {
  query(sql: string, params: unknown[]): Promise<Array<Record<string, unknown>>>;
  /** Ends the connection now, without waiting for the server. Never throws. */
  destroy(): void;
}

export interface LockDriver {
  kind: DbKind;
  /** Which server the connection talks to: waits on one server share one side connection. */
  serverKey(client: object): string;
  /** A new connection with `client`'s settings; rejects (or is destroyed by the caller) when it cannot connect in time. */
  open(client: object, timeoutMs: number): Promise<SideSession>;
}

const APPLICATION_NAME = 'superv lock look-up';
/** Past the look-up's own deadline, for the drivers' timeouts: they only clean up what the deadline left. */
const BACKSTOP_MS = 250;

// ─── pg ─────────────────────────────────────────────────────────────────────

interface PgParams {
  user?: string;
  database?: string;
  port?: number;
  host?: string;
  password?: unknown;
  ssl?: unknown;
  options?: string;
}

interface PgSide {
  connect(): Promise<unknown>;
  query(sql: string, params: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
  end(): Promise<unknown>;
  on(event: string, fn: () => void): unknown;
  connection?: { stream?: { destroy(): void } };
  [kConn]?: null;
}

type PgClientClass = new (config: object) => PgSide;

const pgDriver: LockDriver = {
  kind: 'postgres',
  serverKey(client) {
    const p = (client as { connectionParameters?: PgParams }).connectionParameters;
    return `pg ${p?.host ?? '?'}:${p?.port ?? '?'}/${p?.database ?? '?'}`;
  },
  async open(client, timeoutMs) {
    const c = client as { connectionParameters?: PgParams; password?: unknown; constructor: unknown };
    const p = c.connectionParameters;
    if (p === undefined || typeof c.constructor !== 'function') throw new Error('the pg client has no connection parameters (pg.native?)');
    // The password as the app's connection last resolved it (a password function is called at connect).
    const password = typeof c.password === 'string' ? c.password : typeof p.password === 'string' ? p.password : undefined;
    const Side = c.constructor as PgClientClass;
    // The driver's own timeouts are a backstop: the look-up's deadline comes first and says why.
    const backstop = Math.ceil(timeoutMs) + BACKSTOP_MS;
    const side = new Side({
      host: p.host, port: p.port, user: p.user, database: p.database, password, ssl: p.ssl, options: p.options,
      application_name: APPLICATION_NAME, connectionTimeoutMillis: backstop, query_timeout: backstop, statement_timeout: backstop,
    });
    side[kConn] = null;
    // An 'error' event without a listener would crash the app.
    side.on('error', () => undefined);
    const session: SideSession = {
      query: async (sql, params) => (await side.query(sql, params)).rows,
      destroy() {
        try { side.connection?.stream?.destroy(); } catch { /* already gone */ }
        side.end().catch(() => undefined);
      },
    };
    return openedOrDestroyed(session, () => side.connect());
  },
};

// ─── mysql2 ─────────────────────────────────────────────────────────────────

interface MyConfig {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  ssl?: unknown;
  socketPath?: string;
  localAddress?: string;
  constructor: unknown;
}

interface MySide {
  query(sql: string, params: unknown[], cb: (err: Error | null, rows: unknown) => void): unknown;
  connect?(cb: (err: Error | null) => void): unknown;
  once(event: string, fn: (arg?: unknown) => void): unknown;
  on(event: string, fn: (arg?: unknown) => void): unknown;
  destroy(): void;
  [kConn]?: null;
}

type MyConnectionClass = new (opts: { config: object }) => MySide;
type MyConfigClass = new (opts: object) => object;

/** mysql2's Connection class (BaseConnection before 3.10 is Connection itself): not PoolConnection, whose constructor takes the pool. */
function mysqlConnectionClass(client: object): MyConnectionClass | undefined {
  for (let p = Object.getPrototypeOf(client) as object | null; p !== null; p = Object.getPrototypeOf(p) as object | null) {
    const C = (p as { constructor?: unknown }).constructor;
    if (typeof C === 'function' && (C.name === 'Connection' || C.name === 'BaseConnection')) return C as MyConnectionClass;
  }
  return undefined;
}

const mysql2Driver: LockDriver = {
  kind: 'mysql',
  serverKey(client) {
    const cfg = (client as { config?: MyConfig }).config;
    return `mysql ${cfg?.socketPath ?? `${cfg?.host ?? '?'}:${cfg?.port ?? '?'}`}`;
  },
  open(client, timeoutMs) {
    const cfg = (client as { config?: MyConfig }).config;
    const Conn = mysqlConnectionClass(client);
    if (!isObject(cfg) || typeof cfg.constructor !== 'function' || Conn === undefined) {
      return Promise.reject(new Error('the mysql2 connection has no config or class we know'));
    }
    const Config = cfg.constructor as MyConfigClass;
    const opts: Record<string, unknown> = { user: cfg.user, password: cfg.password, database: cfg.database, connectTimeout: Math.ceil(timeoutMs) + BACKSTOP_MS };
    if (cfg.socketPath) opts.socketPath = cfg.socketPath;
    else { opts.host = cfg.host; opts.port = cfg.port; }
    if (cfg.ssl !== undefined && cfg.ssl !== null) opts.ssl = cfg.ssl;
    if (cfg.localAddress) opts.localAddress = cfg.localAddress;
    return new Promise<SideSession>((resolve, reject) => {
      let side: MySide;
      try {
        side = new Conn({ config: new Config(opts) });
      } catch (err) {
        reject(err as Error);
        return;
      }
      side[kConn] = null;
      side.on('error', () => undefined);
      const session: SideSession = {
        query: (sql, params) => new Promise((res, rej) => {
          side.query(sql, params, (err, rows) => (err ? rej(err) : res(Array.isArray(rows) ? rows as Array<Record<string, unknown>> : [])));
        }),
        destroy() {
          try { side.destroy(); } catch { /* already gone */ }
        },
      };
      // The handshake's outcome: 'connect' on success, 'error' when refused or denied.
      side.once('connect', () => resolve(session));
      side.once('error', (err) => { session.destroy(); reject(err instanceof Error ? err : new Error(String(err))); });
    });
  },
};

// ─── postgres.js ────────────────────────────────────────────────────────────

interface PgjsSql {
  unsafe(sql: string, params: unknown[]): PromiseLike<ArrayLike<Record<string, unknown>>>;
  end(opts: { timeout: number }): Promise<unknown>;
}

/**
 * postgres.js sends a JS array as a PostgreSQL array only once it has read the server's array types
 * (fetch_types, one more round trip at connect, which the side connection skips): the catalogs' id
 * lists go as array literals instead, `{1,2}` for `$1::int[]`.
 */
function pgArrayLiterals(params: unknown[]): unknown[] {
  return params.map((p) => (Array.isArray(p) ? `{${p.map((x) => Number(x)).filter(Number.isFinite).join(',')}}` : p));
}

const postgresJsDriver: LockDriver = {
  kind: 'postgres',
  serverKey(client) {
    const o = sideFactoryOf(client)?.options;
    return `postgres.js ${o?.path || `${String(o?.host ?? '?')}:${String(o?.port ?? '?')}`}/${o?.database ?? '?'}`;
  },
  open(client, timeoutMs) {
    const made = sideFactoryOf(client);
    if (made === undefined) return Promise.reject(new Error('the postgres.js connection has no options or postgres() we know'));
    const { postgres, options: o } = made;
    const backstop = Math.ceil(timeoutMs) + BACKSTOP_MS;
    // Raw options from the parsed ones (postgres() would take a parsed object as is, sharing its state
    // with the app's pool): the server, credentials and TLS of the app's; the rest ours.
    const side = untracked(() => postgres({
      host: o.host, port: o.port, path: o.path || undefined, database: o.database, user: o.user, pass: o.pass, ssl: o.ssl,
      target_session_attrs: o.target_session_attrs ?? undefined, socket: o.socket, keep_alive: o.keep_alive,
      connection: { ...o.connection, application_name: APPLICATION_NAME, statement_timeout: String(backstop) },
      max: 1, prepare: false, fetch_types: false, idle_timeout: null, max_lifetime: null, connect_timeout: backstop / 1000,
      onnotice: () => undefined, onparameter: () => undefined, onclose: () => undefined,
    }) as PgjsSql);
    // postgres.js connects on the first query: open() has nothing to wait for, and a failure to connect
    // is that query's. end() with timeout 0 terminates its connection at once (a Terminate message, then
    // the socket is ended), failing what is still pending there; it never waits on the server.
    const session: SideSession = {
      query: async (sql, params) => Array.from(await untracked(() => side.unsafe(sql, pgArrayLiterals(params)))),
      destroy() {
        try { side.end({ timeout: 0 }).catch(() => undefined); } catch { /* already gone */ }
      },
    };
    return Promise.resolve(session);
  },
};

// ─── mariadb ────────────────────────────────────────────────────────────────

/** The connector's internal Connection (what its pools and createConnection() make, and we instrument). */
interface MariaSide {
  opts?: object;
  socket?: { destroyed?: boolean; destroy(err?: Error): void };
  connect(): Promise<unknown>;
  query(cmdParam: { sql: string; values: unknown[] }, resolve: (rows: unknown) => void, reject: (err: Error) => void): unknown;
  on(event: string, fn: (arg?: unknown) => void): unknown;
  destroy(): void;
  [kConn]?: null;
}

type MariaConnectionClass = new (options: object) => MariaSide;

/**
 * The waiting connection's normalised options, without what belongs to that connection alone:
 * `opts` is an EventEmitter the connector made from them (its _events are the app connection's).
 */
function mariaOptions(opts: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) if (!k.startsWith('_')) out[k] = v;
  return out;
}

const mariadbDriver: LockDriver = {
  kind: 'mysql',
  serverKey(client) {
    const o = (client as { opts?: { socketPath?: string; host?: string; port?: number } }).opts;
    return `mariadb ${o?.socketPath ?? `${o?.host ?? '?'}:${o?.port ?? '?'}`}`;
  },
  async open(client, timeoutMs) {
    const c = client as { opts?: unknown; constructor: unknown };
    if (!isObject(c.opts) || typeof c.constructor !== 'function') throw new Error('the mariadb connection has no options or class we know');
    const Conn = c.constructor as MariaConnectionClass;
    // Pipelining off: our queries go one at a time, and the first failure says why.
    const side = new Conn({ ...mariaOptions(c.opts), connectTimeout: Math.ceil(timeoutMs) + BACKSTOP_MS, pipelining: false });
    side[kConn] = null;
    side.on('error', () => undefined);
    const session: SideSession = {
      query: (sql, params) => new Promise((resolve, reject) => {
        side.query({ sql, values: params }, (rows) => resolve(Array.isArray(rows) ? rows as Array<Record<string, unknown>> : []), reject);
      }),
      destroy() {
        // The socket with an error: the connector fails what is pending and closes. Its own destroy()
        // would open one more connection to KILL a running query, on the server that does not answer.
        try {
          if (side.socket !== undefined && side.socket.destroyed !== true) side.socket.destroy(new Error('superv: the lock look-up is over'));
          else side.destroy();
        } catch { /* already gone */ }
      },
    };
    return openedOrDestroyed(session, () => side.connect());
  },
};

/** The look-up's drivers, by the instrumentation's driver name. */
export const lockDrivers: Partial<Record<Driver, LockDriver>> = {
  pg: pgDriver,
  mysql2: mysql2Driver,
  postgres: postgresJsDriver,
  mariadb: mariadbDriver,
};

/** The session once its side connection is up; a failed connect destroys it (no half-open socket stays). */
async function openedOrDestroyed<S extends { destroy(): void }>(session: S, connect: () => Promise<unknown>): Promise<S> {
  try {
    await connect();
  } catch (err) {
    session.destroy();
    throw err;
  }
  return session;
}
