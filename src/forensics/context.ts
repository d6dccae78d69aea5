// "Which request owns this code?" — shared by the request tracker and the DB/outbound instrumentation,
// so forensics never reaches up into src/worker.
//
// AsyncLocalStorage follows a request through awaits, but enabling it turns on async hooks for the
// whole process: ~10–15 % of hello-world throughput when we measured it. So it is off until something
// needs to tie work to requests across awaits (the DB instrumentation turns it on when pg or mysql2
// loads). A request blocking the loop synchronously is found without it, through its socket.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestInfo } from './types';

const store = new AsyncLocalStorage<number>();
let enabled = false;
let lookup: (id: number) => RequestInfo | undefined = () => undefined;

export function enableRequestContext(): void {
  enabled = true;
}

export function requestContextEnabled(): boolean {
  return enabled;
}

/** Called by the tracker for every request when enabled: the store is the request id. */
export function enterRequest(id: number): void {
  store.enterWith(id);
}

export function currentRequestId(): number | undefined {
  return enabled ? store.getStore() : undefined;
}

export function setRequestLookup(fn: (id: number) => RequestInfo | undefined): void {
  lookup = fn;
}

/** The request with this id while it is in flight, URL not yet redacted. */
export function requestById(id: number): RequestInfo | undefined {
  return lookup(id);
}
