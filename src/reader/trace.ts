// Trace ids as the readers show them: which requests of a dump carry one, what the link is (the reader's
// --trace-url, else the template the dump was written with), and one short phrase for a line of text.

import type { Dump, RequestInfo, TraceIds } from '../dump/types';
import { traceLink } from '../util/trace-url';

/** The template that applies to this dump: the reader's own wins over the one the master recorded. */
export function traceTemplate(x: Dump, override: string | undefined): string | undefined {
  return override || x.supervisor.traceUrl || undefined;
}

export function traceUrlOf(t: TraceIds, template: string | undefined): string | undefined {
  return traceLink(template, t.traceId, t.spanId);
}

/** `trace 4bf9… span 00f0… (from traceparent)`: ids in full, they are what a tracing system is searched by. */
export function tracePhrase(t: TraceIds): string {
  return `trace ${t.traceId} span ${t.spanId} (${t.from === 'otel' ? 'OpenTelemetry span' : 'traceparent'})`;
}

/** Every request of a dump that carries a trace id, once each: the dump's own request, then those in flight and lost. */
export function tracedRequests(x: Dump): RequestInfo[] {
  const seen = new Set<number>();
  const out: RequestInfo[] = [];
  for (const r of [x.request, x.capture?.running, ...(x.capture?.inflight ?? []), ...(x.collateral ?? []), ...(x.master.lastHeartbeat?.oldest ?? [])]) {
    if (!r?.trace || seen.has(r.id)) continue;
    seen.add(r.id);
    out.push(r);
  }
  return out;
}
