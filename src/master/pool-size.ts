// Whether the pool fits the container's memory: N workers at the RSS the running ones measure, plus the
// master, against the cgroup limit. A pool that does not fit gets OOM-killed under load, one worker at a
// time, which looks like random crashes; one warning at start says why beforehand.

export interface PoolMemory {
  /** Bytes the pool would take: the largest worker's RSS × the wanted count, plus the master's. */
  needBytes: number;
  limitBytes: number;
  perWorkerBytes: number;
}

/** The shortfall, when `wanted` workers at the measured RSS would not fit under `limit`; else undefined. */
export function poolOverMemory(limit: number | undefined, wanted: number, workerRss: readonly number[], masterRss: number): PoolMemory | undefined {
  if (limit === undefined || workerRss.length === 0) return undefined;
  const perWorker = Math.max(...workerRss);
  const need = perWorker * wanted + masterRss;
  return need > limit ? { needBytes: need, limitBytes: limit, perWorkerBytes: perWorker } : undefined;
}
