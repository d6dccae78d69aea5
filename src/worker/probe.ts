// The function the watchdog evaluates on the main thread through the inspector, on top of whatever is
// running there (a blocked loop included): it reads the request, heap and app state that only the main
// thread can see, and returns it as one bounded JSON string.

import { executionAsyncResource } from 'node:async_hooks';
import type { Socket } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import { currentRequestId, requestById } from './context';
import { stateProviders } from './providers';
import { activeSpanIds } from './otel';
import type { InflightMore, RequestInfo } from '../dump/types';
import { PROBE_SYMBOL, type Heartbeat } from '../protocol';
import type { RequestTracker } from './tracker';
import { DUMP_LISTED } from './request-table';

const MAX_PROBE_BYTES = 2 * 1024 * 1024;

export interface ProbeResult {
  running?: RequestInfo;
  inflight: RequestInfo[];
  inflightMore?: InflightMore;
  heap: Record<string, number>;
  memory: Record<string, number>;
  eventLoopDelay: Heartbeat['eventLoopDelay'];
  uptimeMs: number;
  served: number;
  state: Record<string, unknown>;
}

/**
 * The request this code runs for: the AsyncLocalStorage store, else the socket of the current resource. The
 * app's active OpenTelemetry span, when there is one, names its trace: that is the id the tracing system shows.
 */
export function runningRequest(tracker: RequestTracker): RequestInfo | undefined {
  const r = requestOfRunningCode(tracker);
  const span = r && activeSpanIds();
  if (r && span) r.trace = span;
  return r;
}

function requestOfRunningCode(tracker: RequestTracker): RequestInfo | undefined {
  const id = currentRequestId();
  if (id !== undefined) return requestById(id);
  const resource = executionAsyncResource() as { socket?: unknown };
  const socket = resource?.socket;
  return socket ? tracker.bySocket(socket as Socket) : undefined;
}

function providerState(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of stateProviders()) {
    try {
      const v = fn();
      out[name] = v instanceof Promise ? { error: 'the provider returned a promise; providers must be synchronous' } : v;
    } catch (err) {
      out[name] = { error: `the provider threw: ${String((err as Error)?.message ?? err)}` };
    }
  }
  return out;
}

/** memoryUsage() opens /proc/self/stat and throws EMFILE at the fd limit; the capture goes on without it. */
function memoryOrNone(): Record<string, number> {
  try {
    return { ...process.memoryUsage() };
  } catch {
    return {};
  }
}

export function installProbe(tracker: RequestTracker, eld: () => Heartbeat['eventLoopDelay']): void {
  const probe = (): string => {
    const { listed, more } = tracker.listForDump(DUMP_LISTED);
    const running = runningRequest(tracker);
    // The same request in the list shows the same trace as the running one (its span, not the caller's).
    const same = running?.trace && listed.find((r) => r.id === running.id);
    if (same) same.trace = running.trace;
    const result: ProbeResult = {
      running,
      inflight: listed,
      inflightMore: more,
      heap: { ...getHeapStatistics() },
      memory: memoryOrNone(),
      eventLoopDelay: eld(),
      uptimeMs: Math.round(process.uptime() * 1000),
      served: tracker.served,
      state: providerState(),
    };
    let json: string;
    try {
      json = JSON.stringify(result);
    } catch (err) {
      result.state = { error: `state could not be serialised: ${(err as Error).message}` };
      json = JSON.stringify(result);
    }
    if (json.length > MAX_PROBE_BYTES) {
      result.state = { error: `state too large (${json.length} bytes) and dropped` };
      json = JSON.stringify(result);
    }
    return json;
  };
  (globalThis as Record<symbol, unknown>)[Symbol.for(PROBE_SYMBOL)] = probe;
}
