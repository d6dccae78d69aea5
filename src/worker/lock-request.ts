// The watchdog's side of the lock look-up: decide from the probe whether there is anything to ask, then
// have the main thread ask the database (worker/instrument/lock-lookup.ts says why it runs there) through
// the same inspector session, awaiting its promise, within what is left of the capture's budget.
// Runs in the watchdog thread: it imports nothing of the instrumentation, only the probe's JSON shape.

import type { Session } from 'node:inspector';
import type { LockLookup } from '../dump/locks';
import { LOCK_LOOKUP_MS, lockLookupExpression } from '../protocol';

/** Below this much budget left, the look-up is not started: it could not finish and would only be noise. */
const MIN_BUDGET_MS = 50;
/** The main thread's answer travels back through the inspector: a little slack past its own deadline. */
const REPLY_SLACK_MS = 150;

interface ProbeDb {
  connections?: Array<{ serverId?: number; pending?: Array<{ state?: string }> }>;
}

/** True when the probe's `db` state lists a statement the server is running on a connection with a known server id. */
export function hasRunningSql(state: Record<string, unknown> | undefined): boolean {
  const db = state?.db as ProbeDb | undefined;
  return (db?.connections ?? []).some((c) => c.serverId !== undefined && (c.pending ?? []).some((p) => p.state === 'running'));
}

function evaluate(session: Session, expression: string, ms: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from the main thread within ${ms} ms`)), ms);
    try {
      session.post('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true, silent: true }, (err, r) => {
        clearTimeout(timer);
        if (err) reject(err);
        else if (r.exceptionDetails) reject(new Error(r.exceptionDetails.exception?.description?.split('\n')[0] ?? r.exceptionDetails.text));
        else resolve(r.result.value);
      });
    } catch (err) {
      clearTimeout(timer);
      reject(err as Error);
    }
  });
}

/**
 * Runs the look-up when the probe shows SQL running; undefined when there is none. Never throws, never
 * passes `deadline` by more than the reply slack: a kill waits for nobody.
 */
export async function requestLockLookup(session: Session, state: Record<string, unknown> | undefined, loopBlocked: boolean, deadline: number): Promise<LockLookup | undefined> {
  if (!hasRunningSql(state)) return undefined;
  if (loopBlocked) return { waits: [], missing: ['the event loop was blocked: the look-up needs it to talk to the database'] };
  const budget = Math.min(LOCK_LOOKUP_MS, deadline - Date.now() - REPLY_SLACK_MS);
  if (budget < MIN_BUDGET_MS) return { waits: [], missing: ['no time left in the capture budget (dump-timeout) for the look-up'] };
  try {
    const v = await evaluate(session, lockLookupExpression(budget), budget + REPLY_SLACK_MS);
    if (typeof v !== 'string') return { waits: [], missing: ['the instrumentation is not installed in this worker (no look-up function)'] };
    return JSON.parse(v) as LockLookup;
  } catch (err) {
    return { waits: [], missing: [`the look-up did not answer: ${(err as Error).message ?? String(err)}`] };
  }
}
