// What the DB and outbound instrumentation tests share: reading the providers, running code as a request,
// and waiting for the drivers' state to change.
import assert from 'node:assert/strict';
import { enterRequest } from '../src/forensics/context';
import type { ConnectionJson, DbState } from '../src/forensics/instrument';
import { stateProviders } from '../src/forensics/providers';

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
