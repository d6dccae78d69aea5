// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header a tracing system sends
// with each request, `VERSION-TRACEID-PARENTID-FLAGS` in lowercase hex. Parsed only when a request is read
// for a heartbeat or a dump, never per request. A header that does not parse is ignored: it is the
// caller's data, and a malformed one must neither break a dump nor reach a page as written.

import type { TraceIds } from './types';

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export function validTraceId(s: unknown): s is string {
  return typeof s === 'string' && TRACE_ID.test(s) && s !== ZERO_TRACE;
}

export function validSpanId(s: unknown): s is string {
  return typeof s === 'string' && SPAN_ID.test(s) && s !== ZERO_SPAN;
}

/**
 * The ids of a `traceparent` header, or undefined when it is absent or malformed. Version 00 is exactly 55
 * characters; a later version may append fields after a `-`, and version ff is invalid (the spec's rules).
 */
export function parseTraceparent(v: unknown): TraceIds | undefined {
  if (typeof v !== 'string' || v.length < 55 || v.length > 512) return undefined;
  const version = v.slice(0, 2);
  if (!/^[0-9a-f]{2}$/.test(version) || version === 'ff') return undefined;
  if (version === '00' ? v.length !== 55 : v.length > 55 && v[55] !== '-') return undefined;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-' || !/^[0-9a-f]{2}$/.test(v.slice(53, 55))) return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  if (!validTraceId(traceId) || !validSpanId(spanId)) return undefined;
  return { traceId, spanId, from: 'traceparent' };
}
