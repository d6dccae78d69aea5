// One way to write an age or a duration for people: dump sentences, `superv dumps`/`report`, `superv status`.
// `compact` drops the space ("1.2s") for table columns that must stay narrow.

export function humanDuration(ms: number | undefined, compact = false): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  const sp = compact ? '' : ' ';
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(ms)}${sp}ms`;
  if (a < 60_000) return `${(ms / 1000).toFixed(a < 10_000 ? 2 : 1)}${sp}s`;
  if (a < 3_600_000) return `${(ms / 60_000).toFixed(1)}${sp}min`;
  return `${(ms / 3_600_000).toFixed(1)}${sp}h`;
}
