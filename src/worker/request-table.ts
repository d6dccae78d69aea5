// The in-flight requests of one worker, in shared memory, so the watchdog thread can read them while the
// main thread is blocked (even in a native call, where no inspector message lands). The main thread writes
// a slot per request — no allocation, no message: a postMessage per request halved throughput when we
// measured it. Redaction happens later, off the hot path, when something is read.
//
// Layout of the SharedArrayBuffer:
//   header  Float64[HEADER_LEN]   main-thread tick, requests served, overflow count
//   ids     Int32[SLOTS]          0 = free, else the request id (written last, cleared first)
//   starts  Float64[SLOTS]        epoch ms
//   methods Int32[SLOTS]          index into METHODS
//   lens    Int32[SLOTS]          bytes of URL written
//   urls    Uint8[SLOTS × URL_BYTES]

import type { RequestInfo } from '../forensics/types';

export const SLOTS = 512;
export const URL_BYTES = 256;
export const H_TICK = 0;
export const H_SERVED = 1;
export const H_OVERFLOW = 2;
const HEADER_LEN = 4;

const METHODS = ['OTHER', 'GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE'];
const METHOD_CODE = new Map(METHODS.map((m, i) => [m, i]));

export function tableBytes(): number {
  return HEADER_LEN * 8 + SLOTS * 8 + SLOTS * 4 * 3 + SLOTS * URL_BYTES;
}

export class RequestTable {
  readonly header: Float64Array;
  readonly ids: Int32Array;
  private readonly starts: Float64Array;
  private readonly methods: Int32Array;
  private readonly lens: Int32Array;
  private readonly urls: Uint8Array;
  /** One view per slot, made once, so that writing a URL allocates no view per request. */
  private readonly urlViews: Uint8Array[];
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(readonly sab: SharedArrayBuffer) {
    let off = 0;
    this.header = new Float64Array(sab, off, HEADER_LEN); off += HEADER_LEN * 8;
    this.starts = new Float64Array(sab, off, SLOTS); off += SLOTS * 8;
    this.ids = new Int32Array(sab, off, SLOTS); off += SLOTS * 4;
    this.methods = new Int32Array(sab, off, SLOTS); off += SLOTS * 4;
    this.lens = new Int32Array(sab, off, SLOTS); off += SLOTS * 4;
    this.urls = new Uint8Array(sab, off, SLOTS * URL_BYTES);
    this.urlViews = Array.from({ length: SLOTS }, (_, i) => this.urls.subarray(i * URL_BYTES, (i + 1) * URL_BYTES));
  }

  static create(): RequestTable {
    return new RequestTable(new SharedArrayBuffer(tableBytes()));
  }

  /** Main thread: fills a slot. The id is stored last so a reader never sees a half-written slot as taken. */
  write(slot: number, id: number, startedAt: number, method: string, url: string): void {
    this.starts[slot] = startedAt;
    this.methods[slot] = METHOD_CODE.get(method) ?? 0;
    this.lens[slot] = this.encoder.encodeInto(url, this.urlViews[slot]!).written;
    Atomics.store(this.ids, slot, id);
  }

  clear(slot: number): void {
    Atomics.store(this.ids, slot, 0);
  }

  /** Any thread: the requests in the table now. A slot rewritten while read is skipped. */
  snapshot(now: number): RequestInfo[] {
    const out: RequestInfo[] = [];
    for (let i = 0; i < SLOTS; i++) {
      const id = Atomics.load(this.ids, i);
      if (id === 0) continue;
      const startedAt = this.starts[i]!;
      const method = METHODS[this.methods[i]!] ?? 'OTHER';
      const url = this.decoder.decode(this.urls.slice(i * URL_BYTES, i * URL_BYTES + this.lens[i]!));
      if (Atomics.load(this.ids, i) !== id) continue;
      out.push({ id, method, url, startedAt, ageMs: now - startedAt });
    }
    return out.sort((a, b) => a.startedAt - b.startedAt);
  }
}
