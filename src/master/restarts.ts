// Crash backoff: pure bookkeeping, like an OTP supervisor's restart intensity, so it is unit-tested alone.
// A worker that exits before `minUptime` extends the crash streak; each replacement waits
// BASE × 2^(streak-1), capped at `maxMs`. One that lived `minUptime` or longer resets the streak.

export const BACKOFF_BASE_MS = 100;

export class CrashBackoff {
  private streak = 0;
  constructor(private readonly minUptimeMs: number, private readonly maxMs: number) {}

  /** Records an unexpected exit; returns how long to wait before the replacement. */
  recordExit(uptimeMs: number): number {
    if (uptimeMs >= this.minUptimeMs) {
      this.streak = 0;
      return 0;
    }
    this.streak++;
    return this.delay();
  }

  /** A worker proved stable: forgive earlier crashes. */
  recordStable(): void {
    this.streak = 0;
  }

  delay(): number {
    if (this.streak === 0) return 0;
    return Math.min(this.maxMs, BACKOFF_BASE_MS * 2 ** Math.min(this.streak - 1, 30));
  }

  get crashStreak(): number {
    return this.streak;
  }
}
