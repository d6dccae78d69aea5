// Stable instance indexes, as pm2's NODE_APP_INSTANCE: N workers hold 0..N-1, a replacement (crash, stall,
// reload, recycling) takes its predecessor's, and a scale-down ends the highest, so an app can run its cron
// on instance 0 only or listen on BASE_PORT + index and find the same numbers after any restart.

/** The lowest index not in `held`. */
export function freeIndex(held: readonly number[]): number {
  const taken = new Set(held);
  let i = 0;
  while (taken.has(i)) i++;
  return i;
}
