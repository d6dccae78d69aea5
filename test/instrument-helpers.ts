// What the DB and outbound instrumentation tests share: reading the providers, running code as a request,
// and waiting for the drivers' state to change.
import assert from 'node:assert/strict';
import { enterRequest } from '../src/worker/context';
import type { ConnectionJson, DbState } from '../src/worker/instrument';
import { stateProviders } from '../src/worker/providers';

export function db(): DbState {
  const fn = stateProviders().get('db');
  assert.ok(fn, 'the db provider is registered');
  return fn() as DbState;
}

export function connection(state: DbState, serverId: number): ConnectionJson | undefined {
  return state.connections.find((c) => c.serverId === serverId);
}

/** The line of the caller, in the compiled file: call it in the same statement as the query. */
export function lineHere(): number {
  const m = /:(\d+):\d+\)?$/.exec(new Error().stack?.split('\n')[2] ?? '');
  return Number(m?.[1]);
}

/** Runs fn as request `id`: enterWith scopes the store to this callback and the work it starts. */
export function inRequest<T>(id: number, fn: () => T): Promise<T> {
  return new Promise((resolve) => setImmediate(() => {
    enterRequest(id);
    resolve(fn());
  }));
}

/** Polls fn until it returns something other than undefined or false. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15000, pollMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The database servers the DB suites use, and how to start each (.ci/run starts both). */
export const SERVERS = {
  postgres: { port: 5432, name: 'PostgreSQL', start: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' },
  mariadb: { port: 3306, name: 'MariaDB', start: 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd' },
} as const;

/**
 * Fails with one line naming the server and how to start it when it does not accept a TCP connection on
 * 127.0.0.1: a DB suite's `before` calls it, so a stopped server reads as that, not as a pile of ECONNREFUSED.
 */
export async function requireServer(which: keyof typeof SERVERS): Promise<void> {
  const s = SERVERS[which];
  const { createConnection } = await import('node:net');
  const reachable = await new Promise<boolean>((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port: s.port });
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(3000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
  if (!reachable) throw new Error(`${s.name} is not reachable at 127.0.0.1:${s.port}; start it with: ${s.start}`);
}
