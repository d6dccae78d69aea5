// How long and how often each figure runs. Full: ~11 minutes on 2 cores, 5 of them the instructions
// figure (valgrind). Quick (`-- --quick`): a ~3-minute smoke run that proves every figure still works;
// its numbers are too short-lived to publish.

export interface Plan {
  mode: 'full' | 'quick';
  workers: number;
  /** autocannon connections for throughput figures. */
  connections: number;
  startRounds: number;
  helloRounds: number;
  /** Fresh sets of processes the hello rounds are spread over. */
  helloInstances: number;
  helloSeconds: number;
  warmupSeconds: number;
  reloadRounds: number;
  stallRounds: number;
  captureSamples: number;
  /** Workers of the idle figure (all three systems), and the larger superv fleet that shows it scales linearly (0 = skip). */
  /** Dumps per case in the capture-size figure (ten cases, each with its own worker and data). */
  captureSizeSamples: number;
  idleWorkers: number;
  idleScaleWorkers: number;
  idleSeconds: number;
  pgRounds: number;
  pgInstances: number;
  pgSeconds: number;
  /** The in-flight figure's CPU window per held count (10 … 10,000 requests). */
  inflightSeconds: number;
  /** Requests the instructions figure serves uncounted before it counts (JIT and GC warm-up). */
  instrWarm: number;
  /** Counted requests in the instructions figure's two runs per measurement (the totals are differenced). */
  instrFew: number;
  instrMany: number;
  /** Measurements per variant in the instructions figure: the spread of repeats is the noise band. */
  instrRepeats: number;
  /** pprof figure, attribution half: rounds (profilers rotated), and requests per route per round. */
  attribRounds: number;
  attribPerRoute: number;
}

export const FULL: Plan = {
  mode: 'full', workers: 2, connections: 50,
  startRounds: 7, helloRounds: 12, helloInstances: 3, helloSeconds: 3, warmupSeconds: 2,
  reloadRounds: 3, stallRounds: 5, captureSamples: 30, captureSizeSamples: 15,
  idleWorkers: 8, idleScaleWorkers: 32, idleSeconds: 20, inflightSeconds: 10,
  pgRounds: 8, pgInstances: 2, pgSeconds: 4,
  instrWarm: 10000, instrFew: 2000, instrMany: 6000, instrRepeats: 3,
  attribRounds: 6, attribPerRoute: 200,
};

export const QUICK: Plan = {
  mode: 'quick', workers: 2, connections: 50,
  startRounds: 2, helloRounds: 2, helloInstances: 1, helloSeconds: 2, warmupSeconds: 1,
  reloadRounds: 1, stallRounds: 1, captureSamples: 20, captureSizeSamples: 5,
  idleWorkers: 8, idleScaleWorkers: 0, idleSeconds: 5, inflightSeconds: 4,
  pgRounds: 2, pgInstances: 1, pgSeconds: 2,
  instrWarm: 5000, instrFew: 1000, instrMany: 3000, instrRepeats: 1,
  attribRounds: 2, attribPerRoute: 100,
};
