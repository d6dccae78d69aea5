// How long and how often each figure runs. Full: ~6–8 minutes on 2 cores. Quick (`-- --quick`): a ~1-minute
// smoke run that proves every figure still works; its numbers are too short-lived to publish.

export interface Plan {
  mode: 'full' | 'quick';
  workers: number;
  /** autocannon connections for throughput figures. */
  connections: number;
  startRounds: number;
  helloRounds: number;
  helloSeconds: number;
  warmupSeconds: number;
  reloadRounds: number;
  stallRounds: number;
  captureSamples: number;
  idleWorkers: number;
  idleSeconds: number;
  pgRounds: number;
  pgSeconds: number;
}

export const FULL: Plan = {
  mode: 'full', workers: 2, connections: 50,
  startRounds: 5, helloRounds: 10, helloSeconds: 3, warmupSeconds: 3,
  reloadRounds: 3, stallRounds: 5, captureSamples: 30,
  idleWorkers: 32, idleSeconds: 20,
  pgRounds: 6, pgSeconds: 5,
};

export const QUICK: Plan = {
  mode: 'quick', workers: 2, connections: 50,
  startRounds: 2, helloRounds: 2, helloSeconds: 2, warmupSeconds: 1,
  reloadRounds: 1, stallRounds: 1, captureSamples: 20,
  idleWorkers: 8, idleSeconds: 5,
  pgRounds: 2, pgSeconds: 2,
};
