// "Which request owns this code?" — shared by the request tracker and the DB/outbound instrumentation:
// one small module, so neither imports the other.
//
// AsyncLocalStorage follows a request through awaits. What it costs depends on the Node version, so when
// it is on is decided here, once (contextFromStart):
//   - Node 20 (and 22 by default): it runs on promise hooks and an async-hooks init hook for the whole
//     process, ~10–15 % of hello-world throughput when we measured it. So it is off until something needs
//     to tie work to requests across awaits: the DB instrumentation turns it on when pg or mysql2 loads.
//   - Node 24 (and 22 with --experimental-async-context-frame): it runs on AsyncContextFrame, a slot V8
//     carries along with every continuation anyway; no hooks, and entering it is one small frame per
//     request. So it is on from the worker's start, and every outbound call and DB statement is tied to its
//     request whenever its driver was loaded. The DB routes with it (and the drivers' wrappers) cost ≥ 0.98
//     of their CPU per request; the hello-route count is still to be repeated on a quiet host
//     (docs/benchmarks.md, "Request context on Node 24").
// A request blocking the loop synchronously is found without it, through its socket.
//
// A driver first loaded inside a request (`require('pg')` in a handler) turns it on in the middle of that
// request (on promise-hook versions): the request running the require is entered then, found through its
// socket (or, failing that, as the only request in flight), so its own queries are tied to it like any later
// request's. Requests already in flight that are not that one cannot be entered after the fact; work with no
// request while they run is "request unknown" with that reason (unattributedReason()), never "outside any
// request".

import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestInfo } from '../dump/types';

const store = new AsyncLocalStorage<number>();
let enabled = false;
let lookup: (id: number) => RequestInfo | undefined = () => undefined;
let soleInflight: () => number | undefined = () => undefined;
let current: () => number | undefined = () => undefined;
let inflight: () => number[] = () => [];
/** Requests in flight when the context was turned on, other than the one turning it on: never entered. */
let unentered: number[] = [];

/** The tracker's answers: the request running now (by its socket), and the ids in flight. */
export function setRequestFinder(running: () => number | undefined, ids: () => number[]): void {
  current = running;
  inflight = ids;
}

/** Turns request tracking across awaits on (see the header for a driver loaded inside a request). */
export function enableRequestContext(): void {
  if (enabled) return;
  enabled = true;
  let running: number | undefined;
  try {
    running = store.getStore() ?? current() ?? soleInflight();
    if (running !== undefined && store.getStore() === undefined) store.enterWith(running);
    unentered = inflight().filter((id) => id !== running);
  } catch {
    unentered = [];
  }
}

/**
 * Why work with no request may still belong to one: requests that were in flight when the context was
 * turned on and still are. Undefined when there are none (then the work is outside any request).
 */
export function unattributedReason(): string | undefined {
  if (unentered.length === 0) return undefined;
  unentered = unentered.filter((id) => lookup(id) !== undefined);
  if (unentered.length === 0) return undefined;
  const names = unentered.slice(0, 3).map((id) => {
    const r = lookup(id);
    return r === undefined ? `request ${id}` : `${r.method} ${r.url.split('?')[0]} (request ${id})`;
  });
  return `the database driver was first loaded while ${unentered.length} request(s) were in flight (${names.join(', ')}${unentered.length > 3 ? ', …' : ''}); their work cannot be tied to them`;
}

/** Whether AsyncLocalStorage runs on AsyncContextFrame here (no promise hooks), so the context can be kept from the start. */
export function contextFromStart(): boolean {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (flags.includes('--no-async-context-frame')) return false;
  const major = Number(process.versions.node.split('.')[0]);
  return major >= 24 || flags.includes('--experimental-async-context-frame');
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

export function setRequestLookup(fn: (id: number) => RequestInfo | undefined, sole?: () => number | undefined): void {
  lookup = fn;
  if (sole !== undefined) soleInflight = sole;
}

/** The request with this id while it is in flight, URL not yet redacted. */
export function requestById(id: number): RequestInfo | undefined {
  return lookup(id);
}
