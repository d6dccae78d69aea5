// The main thread's half of CPU sampling (the watchdog's half is cpu-sampler.ts). The watchdog evaluates this
// function through its inspector session a few times a second. V8 runs an inspector message at the next
// interrupt check of whatever JS is running (function entries, loop back-edges), so the function runs on top
// of the interrupted code: its stack is the sample's stack, and the request context (AsyncLocalStorage, which
// on Node 24 is the continuation's own frame) is the interrupted code's own. When no JS is running, the loop
// picks the message up from its queue: the stack is empty, and the sample is idle.
//
// It costs nothing between samples: nothing here runs per request.

import { executionAsyncResource } from 'node:async_hooks';
import type { Socket } from 'node:net';
import { currentRequestId } from './context';
import { CPU_SAMPLE_SYMBOL, CPU_SAMPLE_FRAMES } from '../protocol';
import type { RequestTracker } from './tracker';

type CallSite = NodeJS.CallSite;

/** Returns the call sites instead of a string: only while a sample is taken. */
function callSites(_err: Error, sites: CallSite[]): CallSite[] {
  return sites;
}

/**
 * One sample as one string (the cheapest thing to carry through the inspector): the first line is `I` (idle),
 * `N` (JS running outside any request: timers, startup, other work) or `R` + the request's URL; then one line
 * per frame, innermost first: `function \t script \t line \t column`.
 */
export function takeSample(tracker: RequestTracker, self: (...a: never[]) => unknown): string {
  const ErrorCtor = Error as ErrorConstructor & { prepareStackTrace?: unknown };
  const prepare = ErrorCtor.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  let sites: CallSite[] = [];
  try {
    ErrorCtor.prepareStackTrace = callSites;
    Error.stackTraceLimit = CPU_SAMPLE_FRAMES + 1;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, self);
    if (Array.isArray(holder.stack)) sites = holder.stack as CallSite[];
  } finally {
    ErrorCtor.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
  // The innermost frame is the inspector's own expression: under it is what was interrupted, if anything.
  if (sites.length <= 1) return 'I';
  let out = '';
  for (let i = 1; i < sites.length; i++) {
    const s = sites[i]!;
    out += `\n${s.getFunctionName() ?? ''}\t${s.getScriptNameOrSourceURL() ?? ''}\t${s.getLineNumber() ?? 0}\t${s.getColumnNumber() ?? 0}`;
  }
  const socket = (executionAsyncResource() as { socket?: unknown } | undefined)?.socket;
  const url = tracker.urlOf(currentRequestId(), typeof socket === 'object' && socket !== null ? socket as Socket : undefined);
  return (url === undefined ? 'N' : `R${url.replace(/\n/g, ' ')}`) + out;
}

export function installCpuProbe(tracker: RequestTracker): void {
  const sample = (): string => {
    try {
      return takeSample(tracker, sample);
    } catch {
      return 'N';
    }
  };
  (globalThis as Record<symbol, unknown>)[Symbol.for(CPU_SAMPLE_SYMBOL)] = sample;
}
