// The app's active OpenTelemetry span, when the app uses @opentelemetry/api: read through the API's own
// global registry (the documented way several copies of the API find each other), so superv neither loads
// nor depends on the package, and an app without it pays one property read at dump time, nothing else.
// Called only where the request's own code is on the stack (a capture on top of blocked code, a crash),
// so the active context is that request's.

import { validSpanId, validTraceId } from '../dump/trace';
import type { TraceIds } from '../dump/types';

/** `Symbol.for('opentelemetry.js.api.<major>')`: where @opentelemetry/api 1.x registers its globals. */
const API_KEY = Symbol.for('opentelemetry.js.api.1');
/** The context key the API stores the active span under (`createContextKey` is `Symbol.for`). */
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN');

interface SpanLike { spanContext?: () => { traceId?: unknown; spanId?: unknown } | undefined }
interface ContextLike { getValue?: (key: symbol) => unknown }
interface ApiGlobals { context?: { active?: () => ContextLike | undefined } }

/** The active span's ids, or undefined when there is no API, no context manager, no span, or a bad id. */
export function activeSpanIds(): TraceIds | undefined {
  try {
    const api = (globalThis as Record<symbol, unknown>)[API_KEY] as ApiGlobals | undefined;
    const ctx = api?.context?.active?.();
    const span = ctx?.getValue?.(SPAN_KEY) as SpanLike | undefined;
    const sc = span?.spanContext?.();
    if (!sc || !validTraceId(sc.traceId) || !validSpanId(sc.spanId)) return undefined;
    return { traceId: sc.traceId, spanId: sc.spanId, from: 'otel' };
  } catch {
    // The app's context manager threw: a dump goes on without the span.
    return undefined;
  }
}
