// The in-flight requests of one worker, in shared memory, so the watchdog thread can read them while the
// main thread is blocked (even in a native call, where no inspector message lands). The main thread writes
// a slot per request — no allocation, no message: a postMessage per request halved throughput when we
// measured it. Redaction happens later, off the hot path, when something is read.
//
// Room for every request a worker can hold: MAX_SLOTS records are reserved, but a SharedArrayBuffer is
// zero pages until written (measured: 16 MiB allocated and read through adds 128 KiB of RSS), so memory
// follows the most requests ever held at once, and readers scan only up to that high-water mark.
//
// Layout of the SharedArrayBuffer: a 128-byte header, then one RECORD_BYTES record per slot, so that the
// per-request writes touch one slot's few cache lines, not one line in each of five arrays (on a core
// shared with other processes, those cold lines were the tracker's main cost).
//   header  Float64 × 16    main-thread tick, requests served, requests without a record, start of the oldest
//                           request, requests in flight, high-water mark of slots used, upgraded connections,
//                           V8 heap used and its limit
//   record  Int32  id       0 = free, else the request id (written last, cleared first)
//           Int32  method   index into METHODS
//           Int32  len      bytes of URL written
//           Int32  seen     the watchdog's mark: this id was dumped as slow or is exempt (written by the watchdog)
//           Float64 start   epoch ms
//           Float64 write   the tick (epoch ms) of the response's last body write; 0 = none yet
//           Uint8 × URL_BYTES  the URL, cut at URL_BYTES

import type { RequestInfo } from '../dump/types';

/** A dump lists this many in-flight requests in full, oldest first, and counts the rest per route. */
export const DUMP_LISTED = 100;
/** Slots reserved per worker: 16 MiB of address space, touched only as far as the busiest moment needs. */
export const MAX_SLOTS = 65_536;
const HEADER_BYTES = 128;
const RECORD_BYTES = 256;
/** A record's fixed fields take 32 bytes; the URL gets the rest. */
export const URL_BYTES = RECORD_BYTES - 32;
export const H_TICK = 0;
export const H_SERVED = 1;
/** In-flight requests past MAX_SLOTS: counted exactly, but without a record. */
export const H_OVERFLOW = 2;
/** Start (epoch ms) of the oldest request in flight, 0 when none: lets the watchdog skip its scan. */
export const H_OLDEST = 3;
/** Requests in flight, exact: what a dump reports as the total when the main thread cannot answer. */
export const H_INFLIGHT = 4;
/** One past the highest slot ever used: readers scan no further. */
export const H_HWM = 5;
/** Upgraded connections (WebSocket) open: not requests, counted apart. */
export const H_UPGRADED = 6;
/** V8 heap in use (bytes) at the main thread's last tick, and the heap's limit: the watchdog's heap warning. */
export const H_HEAP_USED = 7;
export const H_HEAP_LIMIT = 8;
// Field positions within a record, in units of the view that reads them.
const I32_PER_RECORD = RECORD_BYTES / 4;
const F64_PER_RECORD = RECORD_BYTES / 8;
const I_ID = 0;
const I_METHOD = 1;
const I_LEN = 2;
const I_SEEN = 3;
const F_START = 2;
const F_WRITE = 3;
const B_URL = 32;

const METHODS = ['OTHER', 'GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE'];

/** A switch, not a Map: Node's parser hands out its own interned method strings, compared by pointer. */
function methodCode(m: string): number {
  switch (m) {
    case 'GET': return 1;
    case 'POST': return 2;
    case 'PUT': return 3;
    case 'DELETE': return 4;
    case 'PATCH': return 5;
    case 'HEAD': return 6;
    case 'OPTIONS': return 7;
    case 'CONNECT': return 8;
    case 'TRACE': return 9;
    default: return 0;
  }
}

export function tableBytes(): number {
  return HEADER_BYTES + MAX_SLOTS * RECORD_BYTES;
}

/** One slot as the watchdog's slow check reads it: no URL decoded. */
export interface SlotTimes {
  slot: number;
  id: number;
  /** The watchdog's mark (see markSeen); equal to `id` when this request was already dealt with. */
  seen: number;
  startedAt: number;
  /** The tick of the last body write, 0 = none. */
  lastWriteAt: number;
}

export class RequestTable {
  readonly header: Float64Array;
  /** Records as Int32 (id, method, len), Float64 (start, write) and bytes (URL): three views of one region. */
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly bytes: Uint8Array;
  /** One view per slot's URL, made at the slot's first use, so that writing a URL allocates no view per request. */
  private readonly urlViews: Uint8Array[] = [];
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(readonly sab: SharedArrayBuffer) {
    this.header = new Float64Array(sab, 0, HEADER_BYTES / 8);
    this.i32 = new Int32Array(sab, HEADER_BYTES, MAX_SLOTS * I32_PER_RECORD);
    this.f64 = new Float64Array(sab, HEADER_BYTES, MAX_SLOTS * F64_PER_RECORD);
    this.bytes = new Uint8Array(sab, HEADER_BYTES, MAX_SLOTS * RECORD_BYTES);
  }

  static create(): RequestTable {
    return new RequestTable(new SharedArrayBuffer(tableBytes()));
  }

  /** Main thread: fills a slot. The id is stored last so a reader never sees a half-written slot as taken. */
  write(slot: number, id: number, startedAt: number, method: string, url: string): void {
    const i = slot * I32_PER_RECORD;
    const f = slot * F64_PER_RECORD;
    this.f64[f + F_START] = startedAt;
    this.f64[f + F_WRITE] = 0;
    this.i32[i + I_SEEN] = 0;
    this.i32[i + I_METHOD] = methodCode(method);
    this.i32[i + I_LEN] = this.writeUrl(this.urlViews[slot] ?? this.urlView(slot), url);
    Atomics.store(this.i32, i + I_ID, id);
  }

  private urlView(slot: number): Uint8Array {
    const v = this.bytes.subarray(slot * RECORD_BYTES + B_URL, (slot + 1) * RECORD_BYTES);
    this.urlViews[slot] = v;
    if (slot >= this.header[H_HWM]!) this.header[H_HWM] = slot + 1;
    return v;
  }

  /**
   * Request targets are ASCII on the wire, and a JS loop over them is several times cheaper than
   * TextEncoder#encodeInto (a C++ call and a result object per request). Anything else takes the encoder.
   */
  private writeUrl(view: Uint8Array, url: string): number {
    const n = url.length < URL_BYTES ? url.length : URL_BYTES;
    for (let i = 0; i < n; i++) {
      const c = url.charCodeAt(i);
      if (c > 0x7f) return this.encoder.encodeInto(url, view).written;
      view[i] = c;
    }
    return n;
  }

  /** Main thread, per body write of a response: one store of the tick clock, so a stream that writes is not slow. */
  wrote(slot: number): void {
    this.f64[slot * F64_PER_RECORD + F_WRITE] = this.header[H_TICK]!;
  }

  /** The tick of the slot's last body write, 0 = none yet. */
  lastWriteAt(slot: number): number {
    return this.f64[slot * F64_PER_RECORD + F_WRITE]!;
  }

  /** Main thread, every tick: proof of life, and the served count a dump of a blocked worker reports. */
  tick(now: number, served: number): void {
    this.header[H_TICK] = now;
    this.header[H_SERVED] = served;
  }

  /** The main thread's last tick: a clock, coarse by one tick, that costs no call to read. */
  lastTick(): number {
    return this.header[H_TICK]!;
  }

  clear(slot: number): void {
    Atomics.store(this.i32, slot * I32_PER_RECORD + I_ID, 0);
  }

  /** Slots a reader must look at: up to the high-water mark, never past the reserve. */
  private scanned(): number {
    const hwm = this.header[H_HWM]!;
    return hwm < MAX_SLOTS ? hwm : MAX_SLOTS;
  }

  /**
   * Any thread: start and last-write times of the taken slots, no URL decoded: what the watchdog's slow
   * check reads (only once the oldest request is past `slow`, see H_OLDEST). `fn` may see a slot that ends
   * while it is read: a request that just ended or just started, neither of them slow. `fn` returns true to stop.
   */
  forEachTimes(fn: (t: SlotTimes) => boolean | void): void {
    const t: SlotTimes = { slot: 0, id: 0, seen: 0, startedAt: 0, lastWriteAt: 0 };
    const n = this.scanned();
    for (let slot = 0; slot < n; slot++) {
      const id = Atomics.load(this.i32, slot * I32_PER_RECORD + I_ID);
      if (id === 0) continue;
      t.slot = slot;
      t.id = id;
      t.seen = this.i32[slot * I32_PER_RECORD + I_SEEN]!;
      t.startedAt = this.f64[slot * F64_PER_RECORD + F_START]!;
      t.lastWriteAt = this.f64[slot * F64_PER_RECORD + F_WRITE]!;
      if (fn(t) === true) return;
    }
  }

  /**
   * Watchdog: marks the request in `slot` as dealt with (dumped as slow, or exempt), so later checks skip
   * it without keeping a set of ids. A new request in the slot starts unmarked (write() clears the mark).
   */
  markSeen(slot: number, id: number): void {
    this.i32[slot * I32_PER_RECORD + I_SEEN] = id;
  }

  /** Any thread: one slot's request, or undefined when the slot is free or was reused while read. */
  read(slot: number, now: number): RequestInfo | undefined {
    const i = slot * I32_PER_RECORD;
    const id = Atomics.load(this.i32, i + I_ID);
    if (id === 0) return undefined;
    const startedAt = this.f64[slot * F64_PER_RECORD + F_START]!;
    const lastWriteAt = this.f64[slot * F64_PER_RECORD + F_WRITE]!;
    const method = METHODS[this.i32[i + I_METHOD]!] ?? 'OTHER';
    const from = slot * RECORD_BYTES + B_URL;
    const url = this.decoder.decode(this.bytes.slice(from, from + this.i32[i + I_LEN]!));
    if (Atomics.load(this.i32, i + I_ID) !== id) return undefined;
    const r: RequestInfo = { id, method, url, startedAt, ageMs: now - startedAt };
    if (lastWriteAt > 0) r.lastWriteMs = Math.max(0, now - lastWriteAt);
    return r;
  }

  /** Any thread: the start time of the oldest request with a record, or Infinity when there is none. */
  oldestStart(): number {
    let oldest = Infinity;
    this.forEachTimes((t) => { if (t.startedAt < oldest) oldest = t.startedAt; });
    return oldest;
  }

  /** Any thread: the requests in the table now, oldest first. A slot rewritten while read is skipped. */
  snapshot(now: number): RequestInfo[] {
    const out: RequestInfo[] = [];
    const n = this.scanned();
    for (let slot = 0; slot < n; slot++) {
      if (Atomics.load(this.i32, slot * I32_PER_RECORD + I_ID) === 0) continue;
      const r = this.read(slot, now);
      if (r) out.push(r);
    }
    return out.sort((a, b) => a.startedAt - b.startedAt);
  }
}
