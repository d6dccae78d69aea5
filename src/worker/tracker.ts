// Per-request tracking on the main thread, with no change to the app: Node's http diagnostics channels
// tell us when a request starts and when its response finishes. This runs on every request, so it is
// designed for that: a free-list of slots, one reused record per slot, a slot index on the response,
// no Map, no closure, no message. Everything else (headers, redaction, sorting) is done lazily when
// someone asks — a heartbeat once a second, or a dump.
//
// Every request that starts is counted out exactly once, at the first of:
//   - its response finishing (`http.server.response.finish`);
//   - its connection closing (the client went away, the handler destroyed it, an error reset it):
//     `response.finish` never fires then, so each connection gets one `close` listener, the first time
//     one of its requests is seen, and the connection keeps the list of its in-flight requests (several
//     when pipelined) — per connection, not per request, and nothing to sweep.
// Slots are never in short supply: the free list grows when it runs out. The in-flight requests are also
// linked in start order, so the oldest are at the head: a heartbeat reads the oldest few, and the
// watchdog the oldest start time, without sorting or scanning everything held.

import { subscribe } from 'node:diagnostics_channel';
import { ServerResponse, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server, Socket } from 'node:net';
import { executionAsyncResource } from 'node:async_hooks';
import { enterRequest, requestContextEnabled, setRequestFinder, setRequestLookup } from './context';
import type { InflightMore, RequestInfo } from '../dump/types';
import { tallyRoutes } from '../dump/route';
import { parseTraceparent } from '../dump/trace';
import { guarded, guardedListener } from './guard';
import { H_INFLIGHT, H_OLDEST, H_OVERFLOW, H_UPGRADED, MAX_SLOTS, type RequestTable } from './request-table';

const kSlot = Symbol('superv.slot');
/** On a connection: the slot of its newest in-flight request, -1 for none, absent until first seen. */
const kSocketHead = Symbol('superv.socketHead');
/**
 * Per-route latency samples per heartbeat. Below this rate every request is recorded; above it, 1 in
 * 2^k of the quick ones (the heartbeat picks k from the last interval's rate) and every long one.
 */
export const SAMPLE_TARGET = 2048;
/** Room for the sample plus the long requests; past it a request is only counted. */
export const DONE_RING = 4096;
/** A request at least this old by the tick clock is always recorded: slow routes are never sampled away. */
export const LONG_MS = 100;
/** Slots made at start; the free list doubles when it runs out. */
const INITIAL_SLOTS = 512;
const NONE = -1;
type TrackedResponse = ServerResponse & { [kSlot]?: number };
type TrackedSocket = Socket & { [kSocketHead]?: number };

interface Slot {
  /** This slot's own index (its record in the shared table when below MAX_SLOTS). */
  readonly index: number;
  id: number;
  startedAt: number;
  /**
   * The URL as the client sent it, kept at the start: frameworks rewrite `req.url` while routing (Express and
   * Connect strip a router's mount path, so `/api/items` reads `/items` inside the router and after it answers).
   */
  url: string;
  req: IncomingMessage | undefined;
  res: TrackedResponse | undefined;
  socket: TrackedSocket | undefined;
  /** Neighbours in start order (oldest first), NONE at the ends. */
  older: number;
  newer: number;
  /** Neighbours among the in-flight requests of the same connection (pipelining). */
  prevOnSocket: number;
  nextOnSocket: number;
}

function emptySlot(index: number): Slot {
  return { index, id: 0, startedAt: 0, url: '', req: undefined, res: undefined, socket: undefined, older: NONE, newer: NONE, prevOnSocket: NONE, nextOnSocket: NONE };
}

/** Headers worth keeping in a dump; the rest is noise or secrets. Values are redacted at write time. */
const KEPT_HEADERS = ['host', 'user-agent', 'x-request-id', 'x-forwarded-for', 'content-type', 'content-length', 'referer',
  'authorization', 'cookie'];

export class RequestTracker {
  private slots: Slot[] = Array.from({ length: INITIAL_SLOTS }, (_, i) => emptySlot(i));
  private free = new Int32Array(INITIAL_SLOTS);
  private freeTop = INITIAL_SLOTS;
  private nextId = 1;
  /** Head and tail of the start-order list. */
  private oldestSlot = NONE;
  private newestSlot = NONE;
  inflight = 0;
  /** Responses finished. */
  served = 0;
  /** Requests counted out because their connection closed first (client gone, destroyed, reset). */
  aborted = 0;
  /** Requests past the shared table's MAX_SLOTS: counted, without a record there. */
  overflow = 0;
  /** Upgraded connections (WebSocket) open. */
  upgraded = 0;
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
  /** One listener for every connection's `close` (`this` is the connection): no closure per connection. */
  private readonly onSocketClose: (this: TrackedSocket) => void;
  private readonly onUpgradedClose: () => void;

  constructor(private readonly table: RequestTable) {
    for (let i = 0; i < INITIAL_SLOTS; i++) this.free[i] = INITIAL_SLOTS - 1 - i;
    setRequestLookup((id) => this.byId(id), () => this.soleInflightId());
    setRequestFinder(() => this.runningId(), () => [...this.live()].map((s) => s.id));
    const tracker = this;
    this.onSocketClose = guardedListener('request tracking (close)', function onSocketClose(this: TrackedSocket) { tracker.socketClosed(this); });
    this.onUpgradedClose = guarded('upgrade tracking (close)', () => {
      this.upgraded--;
      this.table.header[H_UPGRADED] = this.upgraded;
    });
  }

  /** The request whose code runs now, found through the current async resource's socket (no context needed). */
  private runningId(): number | undefined {
    const socket = (executionAsyncResource() as { socket?: unknown } | undefined)?.socket;
    if (socket === undefined || socket === null || typeof socket !== 'object') return undefined;
    return this.bySocket(socket as Socket)?.id;
  }

  install(): void {
    // Guarded: Node rethrows a subscriber's error as an uncaught exception, which would crash the app.
    subscribe('http.server.request.start', guarded('request tracking (start)', (m: unknown) => {
      const { request, response } = m as { request: IncomingMessage; response: ServerResponse };
      this.start(request, response);
    }));
    subscribe('http.server.response.finish', guarded('request tracking (finish)', (m: unknown) => this.finish((m as { response: ServerResponse }).response)));
    const watched = new WeakSet<Server>();
    subscribe('tracing:net.server.listen:asyncEnd', guarded('request tracking (listen)', (m: unknown) => {
      const server = (m as { server: Server }).server;
      // http and https servers (https.Server is no http.Server, and loading https here would cost every worker).
      if (watched.has(server) || !('headersTimeout' in server)) return;
      watched.add(server);
      this.watchUpgrades(server as HttpServer);
    }));
    this.trackWrites();
  }

  private start(req: IncomingMessage, res: TrackedResponse): void {
    const id = this.nextId;
    this.nextId = id >= 0x7ffffffe ? 1 : id + 1;
    if (this.closing) res.shouldKeepAlive = false;
    if (requestContextEnabled()) enterRequest(id);
    const socket = req.socket as TrackedSocket | null;
    // Its `close` may already have fired: nothing would count it out, and no client waits for it.
    if (socket === null || socket.destroyed) {
      this.aborted++;
      return;
    }
    this.inflight++;
    const slot = this.freeTop > 0 ? this.free[--this.freeTop]! : this.grow();
    const s = this.slots[slot]!;
    s.id = id;
    s.startedAt = Date.now();
    s.url = req.url ?? '';
    s.req = req;
    s.res = res;
    res[kSlot] = slot;
    // Newest at the tail of the start-order list.
    s.older = this.newestSlot;
    s.newer = NONE;
    if (this.newestSlot !== NONE) this.slots[this.newestSlot]!.newer = slot;
    else {
      this.oldestSlot = slot;
      this.table.header[H_OLDEST] = s.startedAt;
    }
    this.newestSlot = slot;
    // At the head of its connection's list; the connection's first request adds the one `close` listener.
    let head = socket[kSocketHead];
    if (head === undefined) {
      socket.on('close', this.onSocketClose);
      head = NONE;
    }
    s.socket = socket;
    s.prevOnSocket = NONE;
    s.nextOnSocket = head;
    if (head !== NONE) this.slots[head]!.prevOnSocket = slot;
    socket[kSocketHead] = slot;
    this.table.header[H_INFLIGHT] = this.inflight;
    if (slot < MAX_SLOTS) this.table.write(slot, id, s.startedAt, req.method ?? 'OTHER', s.url);
    else this.table.header[H_OVERFLOW] = ++this.overflow;
  }

  /** The free list ran out: twice the slots. Happens log2(peak / 512) times in a worker's life. */
  private grow(): number {
    const had = this.slots.length;
    const more = had * 2;
    for (let i = had; i < more; i++) this.slots.push(emptySlot(i));
    const free = new Int32Array(more);
    free.set(this.free.subarray(0, this.freeTop));
    // Lowest first out: the slots with a shared-memory record (below MAX_SLOTS) are used first.
    for (let i = more - 1; i > had; i--) free[this.freeTop++] = i;
    this.free = free;
    return had;
  }

  private finish(res: TrackedResponse): void {
    const slot = res[kSlot];
    if (slot === undefined) return;
    const s = this.slots[slot]!;
    this.served++;
    const n = this.doneTotal++;
    const long = this.table.lastTick() - s.startedAt >= LONG_MS;
    // The first quick request of an interval is always recorded, so the sample is never empty.
    if ((long || (n & this.sampleMask) === 0 || this.quickRecorded === 0) && this.doneCount < DONE_RING) {
      const i = this.doneCount++;
      this.doneUrls[i] = s.url;
      this.doneMs[i] = Date.now() - s.startedAt;
      this.doneLong[i] = long ? 1 : 0;
      if (!long) this.quickRecorded++;
    }
    this.end(slot);
  }

  /** A connection closed: every request still in flight on it is over, its response never to finish. */
  private socketClosed(socket: TrackedSocket): void {
    let slot = socket[kSocketHead] ?? NONE;
    while (slot !== NONE) {
      const next = this.slots[slot]!.nextOnSocket;
      this.aborted++;
      this.end(slot);
      slot = next;
    }
    socket[kSocketHead] = NONE;
  }

  /** Counts a request out: off both lists, its slot freed. Callers have checked it is still in. */
  private end(slot: number): void {
    const s = this.slots[slot]!;
    s.res![kSlot] = undefined;
    this.inflight--;
    this.table.header[H_INFLIGHT] = this.inflight;
    if (s.older !== NONE) this.slots[s.older]!.newer = s.newer;
    else {
      this.oldestSlot = s.newer;
      this.table.header[H_OLDEST] = s.newer !== NONE ? this.slots[s.newer]!.startedAt : 0;
    }
    if (s.newer !== NONE) this.slots[s.newer]!.older = s.older;
    else this.newestSlot = s.older;
    if (s.prevOnSocket !== NONE) this.slots[s.prevOnSocket]!.nextOnSocket = s.nextOnSocket;
    else s.socket![kSocketHead] = s.nextOnSocket;
    if (s.nextOnSocket !== NONE) this.slots[s.nextOnSocket]!.prevOnSocket = s.prevOnSocket;
    if (slot < MAX_SLOTS) this.table.clear(slot);
    else this.table.header[H_OVERFLOW] = --this.overflow;
    s.id = 0;
    s.url = '';
    s.req = undefined;
    s.res = undefined;
    s.socket = undefined;
    this.free[this.freeTop++] = slot;
  }

  /**
   * The time of each body write goes to the response's record (one store of the tick clock), so the
   * watchdog can tell a stream that keeps sending from one that stalled. Patched on the prototype, once:
   * a `write` listener per response would be an allocation per request. `res.end(body)` does not go
   * through `write`, so a plain response pays nothing.
   */
  private trackWrites(): void {
    const table = this.table;
    const write = ServerResponse.prototype.write;
    ServerResponse.prototype.write = function supervWrite(this: TrackedResponse) {
      const slot = this[kSlot];
      if (slot !== undefined && slot < MAX_SLOTS) table.wrote(slot);
      // `arguments`, not a rest parameter: no array per write.
      return write.apply(this, arguments as unknown as Parameters<typeof write>);
    } as typeof write;
  }

  /**
   * Upgraded connections (WebSocket) are not requests: Node hands them to the server's `upgrade`
   * listeners without a response, so they are counted here, apart. Node upgrades only when the server
   * has an `upgrade` listener, so ours must not be the only one: it follows the app's, added after the
   * app adds one and removed when the app has none left.
   */
  private watchUpgrades(server: HttpServer): void {
    let ours = false;
    const onUpgrade = (_req: IncomingMessage, socket: Socket) => {
      this.upgraded++;
      this.table.header[H_UPGRADED] = this.upgraded;
      socket.once('close', this.onUpgradedClose);
    };
    const sync = () => {
      const apps = server.listenerCount('upgrade') - (ours ? 1 : 0);
      if (apps > 0 && !ours) {
        ours = true;
        server.prependListener('upgrade', onUpgrade);
      } else if (apps === 0 && ours) {
        ours = false;
        server.removeListener('upgrade', onUpgrade);
      }
    };
    // `newListener` fires before the listener is added: look once it is there (before any I/O runs).
    server.on('newListener', (ev: string | symbol, fn: unknown) => { if (ev === 'upgrade' && fn !== onUpgrade) process.nextTick(sync); });
    server.on('removeListener', (ev: string | symbol, fn: unknown) => { if (ev === 'upgrade' && fn !== onUpgrade) sync(); });
    sync();
  }

  private info(s: Slot, now: number, withHeaders: boolean): RequestInfo {
    const req = s.req!;
    const info: RequestInfo = { id: s.id, method: req.method ?? 'OTHER', url: s.url, startedAt: s.startedAt, ageMs: now - s.startedAt };
    const wrote = s.index < MAX_SLOTS ? this.table.lastWriteAt(s.index) : 0;
    if (wrote > 0) info.lastWriteMs = Math.max(0, now - wrote);
    const remote = req.socket?.remoteAddress;
    if (remote) info.remote = `${remote}:${req.socket.remotePort ?? ''}`;
    // Read here, when a heartbeat or a dump asks, not at the request's start: the hot path stays untouched.
    const trace = parseTraceparent(req.headers.traceparent);
    if (trace) info.trace = trace;
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

  /** In-flight requests, oldest first, at most `limit`: a walk of `limit` steps, whatever is held. */
  list(limit: number, withHeaders: boolean): RequestInfo[] {
    const now = Date.now();
    const out: RequestInfo[] = [];
    for (let slot = this.oldestSlot; slot !== NONE && out.length < limit; slot = this.slots[slot]!.newer) {
      out.push(this.info(this.slots[slot]!, now, withHeaders));
    }
    return out;
  }

  /** For a dump: the oldest `limit` in full, and the rest counted per route (dump time only: walks them all). */
  listForDump(limit: number): { listed: RequestInfo[]; more?: InflightMore } {
    const listed = this.list(limit, true);
    if (this.inflight <= listed.length) return { listed };
    const urls: string[] = [];
    let slot = this.oldestSlot;
    for (let i = 0; i < limit && slot !== NONE; i++) slot = this.slots[slot]!.newer;
    for (; slot !== NONE; slot = this.slots[slot]!.newer) urls.push(this.slots[slot]!.url);
    return { listed, more: tallyRoutes(urls, this.inflight - listed.length) };
  }

  private *live(): Generator<Slot> {
    for (let slot = this.oldestSlot; slot !== NONE; slot = this.slots[slot]!.newer) yield this.slots[slot]!;
  }

  byId(id: number): RequestInfo | undefined {
    for (const s of this.live()) if (s.id === id) return this.info(s, Date.now(), true);
    return undefined;
  }

  /** The id of the only request in flight, if exactly one is (context.ts: a driver loaded inside it). */
  soleInflightId(): number | undefined {
    if (this.inflight !== 1 || this.oldestSlot === NONE) return undefined;
    return this.slots[this.oldestSlot]!.id;
  }

  /**
   * The URL of the request with this id, or of the one answered on this connection: for the CPU sampler,
   * a few times a second, so it builds nothing (byId() and bySocket() build a whole RequestInfo).
   */
  urlOf(id: number | undefined, socket: Socket | undefined): string | undefined {
    if (id !== undefined) {
      for (let slot = this.oldestSlot; slot !== NONE; slot = this.slots[slot]!.newer) {
        if (this.slots[slot]!.id === id) return this.slots[slot]!.url;
      }
      return undefined;
    }
    let slot = socket === undefined ? NONE : (socket as TrackedSocket)[kSocketHead] ?? NONE;
    if (slot === NONE) return undefined;
    while (this.slots[slot]!.nextOnSocket !== NONE) slot = this.slots[slot]!.nextOnSocket;
    return this.slots[slot]!.url;
  }

  /** The request whose socket is this one: how a synchronous block is tied to its request without ALS. */
  bySocket(socket: Socket): RequestInfo | undefined {
    const head = (socket as TrackedSocket)[kSocketHead];
    // The oldest request of a pipelined connection is the one being answered: the tail of its list.
    let slot = head ?? NONE;
    if (slot === NONE) return undefined;
    while (this.slots[slot]!.nextOnSocket !== NONE) slot = this.slots[slot]!.nextOnSocket;
    return this.info(this.slots[slot]!, Date.now(), true);
  }

  /** Sockets with a request in flight (drain-time only: not on the per-request path). */
  busySockets(): Set<Socket> {
    const out = new Set<Socket>();
    for (const s of this.live()) if (s.socket) out.add(s.socket);
    return out;
  }

  /** Responses in flight, for draining: their connections must close after they finish. */
  forEachResponse(fn: (res: ServerResponse) => void): void {
    for (const s of this.live()) if (s.res) fn(s.res);
  }
}
