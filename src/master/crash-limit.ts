// Crash loops stay bounded on disk: identical crashes (one signature, see src/dump/crash.ts) are all counted,
// but only the first PER_WINDOW of each window are written in full, and after those the 10th, 100th, 1000th…
// so a loop that runs all night still leaves its count on disk. Every written dump carries how many identical
// crashes were skipped since the previous one (`suppressed`) and the running total (`occurrences`), so
// `superv dumps`/`report` count every death, not every file. Pure bookkeeping, like CrashBackoff.

export const PER_WINDOW = 3;
export const WINDOW_MS = 10 * 60 * 1000;
/** Signatures remembered; past it the least recently seen is forgotten (a new burst of it writes again). */
const MAX_SIGNATURES = 1000;

interface Seen { windowStart: number; written: number; suppressed: number; total: number }

export interface CrashDecision {
  write: boolean;
  /** Skipped since the last written dump of this signature (carried by this one when it is written). */
  suppressed: number;
  /** This signature's deaths so far, this one included. */
  occurrences: number;
}

export class CrashLimiter {
  private readonly seen = new Map<string, Seen>();
  constructor(private readonly perWindow = PER_WINDOW, private readonly windowMs = WINDOW_MS) {}

  decide(signature: string, now = Date.now()): CrashDecision {
    let s = this.seen.get(signature);
    if (s) this.seen.delete(signature);
    else s = { windowStart: now, written: 0, suppressed: 0, total: 0 };
    this.seen.set(signature, s); // most recently seen last
    if (this.seen.size > MAX_SIGNATURES) this.seen.delete(this.seen.keys().next().value as string);
    if (now - s.windowStart >= this.windowMs) {
      s.windowStart = now;
      s.written = 0;
    }
    s.total++;
    const write = s.written < this.perWindow || isPowerOf10(s.total);
    if (!write) {
      s.suppressed++;
      return { write, suppressed: s.suppressed, occurrences: s.total };
    }
    const suppressed = s.suppressed;
    s.suppressed = 0;
    s.written++;
    return { write, suppressed, occurrences: s.total };
  }
}

function isPowerOf10(n: number): boolean {
  for (let p = 10; p <= n; p *= 10) if (p === n) return true;
  return false;
}
