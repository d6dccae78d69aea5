// Small, pure helpers for turning rounds into the figures we report.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile: with 20 samples, p99 is the largest one. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Round r runs the systems in this order: A B C, then B C A, … so no system always goes first (or right after warm-up). */
export function rotate<T>(xs: readonly T[], r: number): T[] {
  const k = r % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** Paired ratios (round by round), so a noisy minute hurts both sides of a pair alike. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (b[i]! > 0) out.push(a[i]! / b[i]!);
  return out;
}

export function fixed(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '—';
}

export function mib(kib: number): string {
  return Number.isFinite(kib) ? `${(kib / 1024).toFixed(1)} MiB` : '—';
}

export function ms(x: number): string {
  return Number.isFinite(x) ? `${Math.round(x)} ms` : '—';
}

export function seconds(x: number): string {
  return Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : '—';
}
