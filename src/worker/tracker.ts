// Per-request tracking on the main thread, with no change to the app: Node's http diagnostics channels
// tell us when a request starts and when its response finishes. This runs on every request, so it is
// designed for that: a free-list of slots, one reused record per slot, a slot index on the response,
// no Map, no closure, no message. Everything else (headers, redaction, sorting) is done lazily when
// someone asks — a heartbeat once a second, or a dump.

import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { enterRequest, requestContextEnabled, setRequestLookup } from '../forensics/context';
import type { RequestInfo } from '../forensics/types';
import { H_OVERFLOW, SLOTS, type RequestTable } from './request-table';

const kSlot = Symbol('superv.slot');
/**
 * Per-route latency samples per heartbeat. Below this rate every request is recorded; above it, 1 in
 * 2^k of the quick ones (the heartbeat picks k from the last interval's rate) and every long one.
 */
export const SAMPLE_TARGET = 2048;
/** Room for the sample plus the long requests; past it a request is only counted. */
export const DONE_RING = 4096;
/** A request at least this old by the tick clock is always recorded: slow routes are never sampled away. */
export const LONG_MS = 100;
type TrackedResponse = ServerResponse & { [kSlot]?: number };

interface Slot {
  id: number;
  startedAt: number;
  req: IncomingMessage | undefined;
  res: TrackedResponse | undefined;
}

/** Headers worth keeping in a dump; the rest is noise or secrets. Values are redacted at write time. */
const KEPT_HEADERS = ['host', 'user-agent', 'x-request-id', 'x-forwarded-for', 'content-type', 'content-length', 'referer',
  'authorization', 'cookie'];

export class RequestTracker {
  private readonly slots: Slot[] = Array.from({ length: SLOTS }, () => ({ id: 0, startedAt: 0, req: undefined, res: undefined }));
  private readonly free = new Int32Array(SLOTS);
  private freeTop = SLOTS;
  private nextId = 1;
  inflight = 0;
  served = 0;
  overflow = 0;
  /** Set while draining: new responses get `Connection: close`. */
  closing = false;
  /**
   * Finished requests since the last heartbeat, for per-route latency, aggregated at heartbeat time
   * (latency.ts). Recording costs a clock read and two stores, so at high rates only a sample is
   * recorded: `sampleMask` is 2^k - 1, and request n is recorded when (n & sampleMask) === 0. Long
   * requests are recorded always, flagged in `doneLong`, and count once; the sample stands for the rest.
   */
  readonly doneUrls: Array<string | undefined> = new Array<string | undefined>(DONE_RING).fill(undefined);
  readonly doneMs = new Float64Array(DONE_RING);
  readonly doneLong = new Uint8Array(DONE_RING);
  doneCount = 0;
  /** Requests finished since the last heartbeat, recorded or not. */
  doneTotal = 0;
  /** Quick (not long) requests recorded since the last heartbeat: the sample. */
  quickRecorded = 0;
  sampleMask = 0;

  constructor(private readonly table: RequestTable) {
    for (let i = 0; i < SLOTS; i++) this.free[i] = SLOTS - 1 - i;
    setRequestLookup((id) => this.byId(id));
  }

  install(): void {
    subscribe('http.server.request.start', (m) => {
      const { request, response } = m as { request: IncomingMessage; response: ServerResponse };
      this.start(request, response);
    });
    subscribe('http.server.response.finish', (m) => this.finish((m as { response: ServerResponse }).response));
  }

  private start(req: IncomingMessage, res: TrackedResponse): void {
    const id = this.nextId;
    this.nextId = id >= 0x7ffffffe ? 1 : id + 1;
    this.inflight++;
    if (this.closing) res.shouldKeepAlive = false;
    if (requestContextEnabled()) enterRequest(id);
    if (this.freeTop === 0) {
      this.overflow++;
      this.table.header[H_OVERFLOW] = this.overflow;
      res[kSlot] = -1;
      return;
    }
    const slot = this.free[--this.freeTop]!;
    const s = this.slots[slot]!;
    s.id = id;
    s.startedAt = Date.now();
    s.req = req;
    s.res = res;
    res[kSlot] = slot;
    this.table.write(slot, id, s.startedAt, req.method ?? 'OTHER', req.url ?? '');
  }

  private finish(res: TrackedResponse): void {
    const slot = res[kSlot];
    if (slot === undefined) return;
    res[kSlot] = undefined;
    this.inflight--;
    this.served++;
    if (slot < 0) {
      this.overflow--;
      this.table.header[H_OVERFLOW] = this.overflow;
      return;
    }
    const s = this.slots[slot]!;
    const n = this.doneTotal++;
    const long = this.table.lastTick() - s.startedAt >= LONG_MS;
    // The first quick request of an interval is always recorded, so the sample is never empty.
    if ((long || (n & this.sampleMask) === 0 || this.quickRecorded === 0) && this.doneCount < DONE_RING) {
      const i = this.doneCount++;
      this.doneUrls[i] = s.req?.url;
      this.doneMs[i] = Date.now() - s.startedAt;
      this.doneLong[i] = long ? 1 : 0;
      if (!long) this.quickRecorded++;
    }
    this.release(slot);
  }

  private release(slot: number): void {
    const s = this.slots[slot]!;
    this.table.clear(slot);
    s.id = 0;
    s.req = undefined;
    s.res = undefined;
    this.free[this.freeTop++] = slot;
  }

  /**
   * `response.finish` never fires when the client goes away first (a leak trap we measured), so the
   * heartbeat sweeps responses whose socket is gone. Cheap: once a second over in-flight slots.
   */
  sweep(): void {
    for (let i = 0; i < SLOTS; i++) {
      const s = this.slots[i]!;
      if (s.id !== 0 && s.res !== undefined && s.res.destroyed && !s.res.writableFinished) {
        s.res[kSlot] = undefined;
        this.inflight--;
        this.release(i);
      }
    }
  }

  private info(s: Slot, now: number, withHeaders: boolean): RequestInfo {
    const req = s.req!;
    const info: RequestInfo = { id: s.id, method: req.method ?? 'OTHER', url: req.url ?? '', startedAt: s.startedAt, ageMs: now - s.startedAt };
    const remote = req.socket?.remoteAddress;
    if (remote) info.remote = `${remote}:${req.socket.remotePort ?? ''}`;
    if (withHeaders) {
      const h: Record<string, string> = {};
      for (const name of KEPT_HEADERS) {
        const v = req.headers[name];
        if (v !== undefined) h[name] = Array.isArray(v) ? v.join(', ') : v;
      }
      for (const name of Object.keys(req.headers)) {
        // api-key style headers are kept (and redacted at write time) so a dump shows they were sent.
        if (/key|token|secret|auth/i.test(name) && !(name in h)) h[name] = String(req.headers[name]);
      }
      info.headers = h;
    }
    return info;
  }

  /** In-flight requests, oldest first, at most `limit`. */
  list(limit: number, withHeaders: boolean): RequestInfo[] {
    const now = Date.now();
    const live = this.slots.filter((s) => s.id !== 0 && s.req !== undefined);
    live.sort((a, b) => a.startedAt - b.startedAt);
    return live.slice(0, limit).map((s) => this.info(s, now, withHeaders));
  }

  byId(id: number): RequestInfo | undefined {
    const s = this.slots.find((x) => x.id === id);
    return s?.req ? this.info(s, Date.now(), true) : undefined;
  }

  /** The request whose socket is this one: how a synchronous block is tied to its request without ALS. */
  bySocket(socket: Socket): RequestInfo | undefined {
    const s = this.slots.find((x) => x.id !== 0 && x.req?.socket === socket);
    return s?.req ? this.info(s, Date.now(), true) : undefined;
  }

  /** Sockets with a request in flight (drain-time only: not on the per-request path). */
  busySockets(): Set<Socket> {
    const out = new Set<Socket>();
    for (const s of this.slots) if (s.id !== 0 && s.req?.socket) out.add(s.req.socket);
    return out;
  }

  /** Responses in flight, for draining: their connections must close after they finish. */
  forEachResponse(fn: (res: ServerResponse) => void): void {
    for (const s of this.slots) if (s.id !== 0 && s.res) fn(s.res);
  }
}
