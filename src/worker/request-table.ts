// The in-flight requests of one worker, in shared memory, so the watchdog thread can read them while the
// main thread is blocked (even in a native call, where no inspector message lands). The main thread writes
// a slot per request — no allocation, no message: a postMessage per request halved throughput when we
// measured it. Redaction happens later, off the hot path, when something is read.
//
// Layout of the SharedArrayBuffer: a 64-byte header, then one RECORD_BYTES record per slot, so that the
// per-request writes touch one slot's few cache lines, not one line in each of five arrays (on a core
// shared with other processes, those cold lines were the tracker's main cost).
//   header  Float64 × 8     main-thread tick, requests served, overflow count
//   record  Int32  id       0 = free, else the request id (written last, cleared first)
//           Int32  method   index into METHODS
//           Int32  len      bytes of URL written
//           Int32  (unused)
//           Float64 start   epoch ms
//           Uint8 × URL_BYTES  the URL, cut at URL_BYTES

import type { RequestInfo } from '../forensics/types';

export const SLOTS = 512;
const HEADER_BYTES = 64;
const RECORD_BYTES = 256;
/** A record's fixed fields take 24 bytes; the URL gets the rest. */
export const URL_BYTES = RECORD_BYTES - 24;
export const H_TICK = 0;
export const H_SERVED = 1;
export const H_OVERFLOW = 2;
// Field positions within a record, in units of the view that reads them.
const I32_PER_RECORD = RECORD_BYTES / 4;
const F64_PER_RECORD = RECORD_BYTES / 8;
const I_ID = 0;
const I_METHOD = 1;
const I_LEN = 2;
const F_START = 2;
const B_URL = 24;

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
  return HEADER_BYTES + SLOTS * RECORD_BYTES;
}

export class RequestTable {
  readonly header: Float64Array;
  /** Records as Int32 (id, method, len), Float64 (start) and bytes (URL): three views of one region. */
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly bytes: Uint8Array;
  /** One view per slot's URL, made once, so that writing a URL allocates no view per request. */
  private readonly urlViews: Uint8Array[];
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(readonly sab: SharedArrayBuffer) {
    this.header = new Float64Array(sab, 0, HEADER_BYTES / 8);
    this.i32 = new Int32Array(sab, HEADER_BYTES, SLOTS * I32_PER_RECORD);
    this.f64 = new Float64Array(sab, HEADER_BYTES, SLOTS * F64_PER_RECORD);
    this.bytes = new Uint8Array(sab, HEADER_BYTES, SLOTS * RECORD_BYTES);
    this.urlViews = Array.from({ length: SLOTS }, (_, i) => this.bytes.subarray(i * RECORD_BYTES + B_URL, (i + 1) * RECORD_BYTES));
  }

  static create(): RequestTable {
    return new RequestTable(new SharedArrayBuffer(tableBytes()));
  }

  /** Main thread: fills a slot. The id is stored last so a reader never sees a half-written slot as taken. */
  write(slot: number, id: number, startedAt: number, method: string, url: string): void {
    const i = slot * I32_PER_RECORD;
    this.f64[slot * F64_PER_RECORD + F_START] = startedAt;
    this.i32[i + I_METHOD] = methodCode(method);
    this.i32[i + I_LEN] = this.writeUrl(this.urlViews[slot]!, url);
    Atomics.store(this.i32, i + I_ID, id);
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

  /**
   * Any thread: the start time of the oldest request in the table, or Infinity when it is empty. Reads two
   * numbers per slot and decodes nothing: the watchdog asks this at every tick and needs the whole
   * snapshot only once a request is past the slow threshold.
   */
  oldestStart(): number {
    let oldest = Infinity;
    for (let slot = 0; slot < SLOTS; slot++) {
      if (Atomics.load(this.i32, slot * I32_PER_RECORD + I_ID) === 0) continue;
      const startedAt = this.f64[slot * F64_PER_RECORD + F_START]!;
      if (startedAt < oldest) oldest = startedAt;
    }
    return oldest;
  }

  /** Any thread: the requests in the table now. A slot rewritten while read is skipped. */
  snapshot(now: number): RequestInfo[] {
    const out: RequestInfo[] = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      const i = slot * I32_PER_RECORD;
      const id = Atomics.load(this.i32, i + I_ID);
      if (id === 0) continue;
      const startedAt = this.f64[slot * F64_PER_RECORD + F_START]!;
      const method = METHODS[this.i32[i + I_METHOD]!] ?? 'OTHER';
      const from = slot * RECORD_BYTES + B_URL;
      const url = this.decoder.decode(this.bytes.slice(from, from + this.i32[i + I_LEN]!));
      if (Atomics.load(this.i32, i + I_ID) !== id) continue;
      out.push({ id, method, url, startedAt, ageMs: now - startedAt });
    }
    return out.sort((a, b) => a.startedAt - b.startedAt);
  }
}
