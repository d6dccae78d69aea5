// Outbound HTTP calls still waiting for their answer, and the `outbound` state provider.
//
// node:http/https: a call starts when the app builds the ClientRequest. No diagnostics channel fires
// then on Node 20.20 (`http.client.request.start` is published later, from _finish on a nextTick, where
// the app's stack is gone; `http.client.request.created` does not exist yet), so we wrap
// http.Agent.prototype.addRequest, which the ClientRequest constructor calls synchronously (https.Agent
// inherits it). `http.client.request.start` still catches requests made without an agent.
// fetch (undici 6.24 bundled): `undici:request:create` is published synchronously inside the app's
// fetch() call, about 26 frames below it (measured), so its subscriber captures deeper.
// A call ends at `http.client.response.finish` / `undici:request:headers` (the answer has begun) or at
// `http.client.request.error` / `undici:request:error`. Aborted or destroyed requests that published
// nothing are swept when the table is full and at every read, so the table cannot leak.
//
// Cost: per outbound call a Map set/delete and a stack capture; nothing per inbound HTTP request.

import { subscribe } from 'node:diagnostics_channel';
import http from 'node:http';
import { currentRequestId } from '../context';
import { captureSite, resolveSite, siteLabel, type CallSite } from './callsite';
import { requestLabel, requestRef, seconds, type RequestRef } from './describe';
import { isObject, wrapMethod, type Method } from './patch';
import { settings } from './settings';
import { guarded } from '../guard';

const MAX_CALLS = 1000;
const MAX_LISTED = 100;
const MAX_SENTENCES = 10;
/** Frames between undici's `request:create` subscriber and the app's fetch() call (26 measured). */
const FETCH_DEPTH = 30;
/** Frames between Agent#addRequest and http.get/request's caller: ClientRequest, request, get. */
const HTTP_DEPTH = 3;

type Kind = 'http' | 'fetch';

interface HttpClientRequest {
  method?: string;
  protocol?: string;
  host?: string;
  path?: string;
  destroyed?: boolean;
  getHeader?(name: string): unknown;
}

interface UndiciRequest {
  method?: string;
  origin?: unknown;
  path?: string;
  aborted?: boolean;
  completed?: boolean;
}

class OutboundCall {
  readonly startedAt = Date.now();
  private site: CallSite | null | undefined = undefined;

  constructor(
    readonly kind: Kind,
    readonly ref: object,
    readonly requestId: number | undefined,
    readonly port: number | undefined,
  ) {}

  callSite(): CallSite | undefined {
    if (this.site === undefined) {
      this.site = resolveSite(this) ?? null;
      (this as { stack?: unknown }).stack = undefined;
    }
    return this.site ?? undefined;
  }

  done(): boolean {
    if (this.kind === 'http') return (this.ref as HttpClientRequest).destroyed === true;
    const r = this.ref as UndiciRequest;
    return r.aborted === true || r.completed === true;
  }
}

const calls = new Map<object, OutboundCall>();
let overflow = 0;

function sweep(): void {
  for (const [ref, c] of calls) if (c.done()) calls.delete(ref);
}

function track(ref: object, kind: Kind, port: number | undefined, below: Function, frames: number): void {
  if (calls.has(ref)) return;
  if (calls.size >= MAX_CALLS) sweep();
  if (calls.size >= MAX_CALLS) {
    overflow++;
    return;
  }
  const call = new OutboundCall(kind, ref, currentRequestId(), port);
  captureSite(call, below, frames);
  calls.set(ref, call);
}

function end(message: unknown): void {
  if (isObject(message) && isObject(message.request)) calls.delete(message.request);
}

function onHttpStart(message: unknown): void {
  // Requests without an agent: no call site (the app's stack is gone by now).
  if (isObject(message) && isObject(message.request)) track(message.request, 'http', undefined, onHttpStart, 0);
}

function onUndiciCreate(message: unknown): void {
  if (isObject(message) && isObject(message.request)) {
    track(message.request, 'fetch', undefined, onUndiciCreate, settings.frames > 0 ? settings.frames + FETCH_DEPTH : 0);
  }
}

let installed = false;

export function installOutbound(): void {
  if (installed) return;
  installed = true;
  wrapMethod(http.Agent.prototype, 'addRequest', (original: Method) => function supervAddRequest(this: unknown, req?: unknown, options?: unknown): unknown {
    try {
      if (isObject(req)) {
        const port = isObject(options) && typeof options.port === 'number' ? options.port : undefined;
        track(req, 'http', port, supervAddRequest, settings.frames > 0 ? settings.frames + HTTP_DEPTH : 0);
      }
    } catch {
      // Instrumentation never breaks a request.
    }
    return Reflect.apply(original, this, arguments) as unknown;
  });
  // Guarded: Node rethrows a subscriber's error as an uncaught exception, which would crash the app.
  const g = (fn: (m: unknown) => void) => guarded('outbound call tracking', fn);
  subscribe('http.client.request.start', g(onHttpStart));
  subscribe('http.client.response.finish', g(end));
  subscribe('http.client.request.error', g(end));
  subscribe('undici:request:create', g(onUndiciCreate));
  subscribe('undici:request:headers', g(end));
  subscribe('undici:request:error', g(end));
}

export interface OutboundJson {
  kind: Kind;
  method: string;
  origin: string;
  /** Raw, query string included: the writer redacts it. */
  path: string;
  ageMs: number;
  startedAt: number;
  request?: RequestRef;
  site?: CallSite;
}

export interface OutboundState {
  summary: string[];
  pending: OutboundJson[];
  /** Pending calls past the listing cap. */
  more?: number;
  notes?: string[];
}

function describe(c: OutboundCall, now: number): OutboundJson {
  let method = 'GET';
  let origin = '';
  let path = '';
  if (c.kind === 'http') {
    const r = c.ref as HttpClientRequest;
    method = r.method ?? method;
    const protocol = r.protocol ?? 'http:';
    const defaultPort = protocol === 'https:' ? 443 : 80;
    const host = c.port !== undefined ? `${r.host ?? 'localhost'}${c.port === defaultPort ? '' : `:${c.port}`}` : String(r.getHeader?.('host') ?? r.host ?? '');
    origin = `${protocol}//${host}`;
    path = r.path ?? '';
  } else {
    const r = c.ref as UndiciRequest;
    method = r.method ?? method;
    origin = String(r.origin ?? '');
    path = r.path ?? '';
  }
  const j: OutboundJson = { kind: c.kind, method, origin, path, ageMs: now - c.startedAt, startedAt: c.startedAt };
  const request = requestRef(c.requestId);
  if (request !== undefined) j.request = request;
  const site = c.callSite();
  if (site !== undefined) j.site = site;
  return j;
}

function sentence(j: OutboundJson): string {
  const q = j.path.indexOf('?');
  const target = `${j.method} ${j.origin}${q < 0 ? j.path : j.path.slice(0, q)}`;
  const site = siteLabel(j.site);
  return `${requestLabel(j.request)} has waited ${seconds(j.ageMs)} for ${target} (${j.kind}${site === undefined ? '' : `, issued at ${site}`})`;
}

/** The `outbound` provider: bounded, synchronous, never throws. */
export function outboundState(): OutboundState {
  const now = Date.now();
  const notes: string[] = [];
  const pending: OutboundJson[] = [];
  let more = 0;
  for (const [ref, c] of calls) {
    try {
      if (c.done()) {
        calls.delete(ref);
        continue;
      }
      if (pending.length >= MAX_LISTED) {
        more++;
        continue;
      }
      pending.push(describe(c, now));
    } catch (err) {
      if (notes.length < 10) notes.push(`an outbound call could not be read: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  // The Map is in start order already: oldest first.
  const out: OutboundState = { summary: pending.slice(0, MAX_SENTENCES).map(sentence), pending };
  if (more > 0) out.more = more;
  if (overflow > 0) notes.push(`${overflow} outbound calls were not tracked: more than ${MAX_CALLS} were pending at once`);
  if (notes.length > 0) out.notes = notes;
  return out;
}
