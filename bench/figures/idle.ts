// The cost of an idle fleet: 8 workers serving nothing for `idleSeconds`, under superv, a bare node:cluster
// primary and pm2, one after the other; then (full runs) superv with 32, to show the cost grows linearly.
// CPU is every thread of the master (pm2: its daemon) and of every worker, from /proc/PID/task/*/schedstat
// (ns), as a percentage of one core. superv's heartbeats stay on (every 1 s, the default), and the master's
// RSS with its 8 workers is read at the end of the window.

import { join } from 'node:path';
import type { Plan } from '../lib/plan';
import { cpuNs, freePort, privateKiB, rssKiB, sleep } from '../lib/proc';
import { verdictAtMost, type FigureResult, type Row } from '../lib/report';
import { fixed } from '../lib/stats';
import { FIXTURES, Pm2Home, startCluster, startSuperv, type Running } from '../lib/systems';

/** Targets on the whole fleet (master and workers, % of one core) and per worker. */
const TOTAL_PCT = 1.6;
const PER_WORKER_PCT = 0.2;
const MASTER_RSS_MIB = 48;

interface Idle { totalPct: number; masterPct: number; workersPct: number; masterMiB: number; masterPrivateMiB: number; workers: number }

/** Waits for `n` workers to serve, lets boot-time GC and JIT settle, then measures a window. */
async function measure(run: Running, n: number, plan: Plan, notes: string[]): Promise<Idle> {
  const deadline = Date.now() + 120_000;
  while (run.workerPids().length < n && Date.now() < deadline) await sleep(200);
  await sleep(3000);
  const workers = run.workerPids();
  if (workers.length !== n) notes.push(`idle: ${run.name} had ${workers.length} worker processes, expected ${n}`);
  const m0 = cpuNs(run.masterPid);
  const w0 = workers.map(cpuNs);
  const t0 = process.hrtime.bigint();
  await sleep(plan.idleSeconds * 1000);
  const wallNs = Number(process.hrtime.bigint() - t0);
  const masterPct = ((cpuNs(run.masterPid) - m0) / wallNs) * 100;
  const workersPct = (workers.reduce((sum, p, i) => sum + (cpuNs(p) - w0[i]!), 0) / wallNs) * 100;
  return { totalPct: masterPct + workersPct, masterPct, workersPct, masterMiB: rssKiB(run.masterPid) / 1024,
    masterPrivateMiB: privateKiB(run.masterPid) / 1024, workers: workers.length };
}

async function supervIdle(n: number, plan: Plan, notes: string[]): Promise<Idle> {
  const run = startSuperv({ app: join(FIXTURES, 'hello.js'), workers: n, port: await freePort() }, ['--listen-timeout', '120s']);
  try {
    const ready = await run.log.waitFor((e) => e.event === 'master-ready', 120_000);
    if (!ready) throw new Error(`superv did not get ${n} workers ready within 120 s`);
    const idle = await measure(run, n, plan, notes);
    // Only meaningful if the master kept every worker (no timeouts, no restarts) through the window.
    if (run.log.find((e) => e.event === 'worker-stuck' || e.event === 'worker-exited') !== undefined) {
      notes.push(`idle: superv (${n} workers) declared a worker stuck or lost one during the window`);
    }
    return idle;
  } finally {
    await run.stop();
  }
}

const pctOf = (x: Idle | undefined): string => (x ? `${fixed(x.totalPct, 2)} %` : 'n/a');

export async function idleFigure(plan: Plan): Promise<FigureResult> {
  const notes: string[] = [];
  const n = plan.idleWorkers;
  const superv = await supervIdle(n, plan, notes);
  let bare: Idle | undefined;
  const cluster = startCluster({ app: join(FIXTURES, 'hello.js'), workers: n, port: await freePort() });
  try { bare = await measure(cluster, n, plan, notes); } finally { await cluster.stop(); }
  let pm2: Idle | undefined;
  if (Pm2Home.available()) {
    const home = new Pm2Home();
    try {
      const run = await home.start({ app: join(FIXTURES, 'hello.js'), workers: n, port: await freePort() }, 'idle');
      pm2 = await measure(run, n, plan, notes);
    } finally {
      await home.kill();
    }
  }
  const scaled = plan.idleScaleWorkers > 0 ? await supervIdle(plan.idleScaleWorkers, plan, notes) : undefined;
  const perWorker = superv.workersPct / n;
  const rows: Row[] = [{
    figure: `idle fleet CPU, ${n} workers, ${plan.idleSeconds} s (master + workers, all threads; superv heartbeats every 1 s)`,
    superv: `${pctOf(superv)} of a core (master ${fixed(superv.masterPct, 2)} %, per worker ${fixed(perWorker, 3)} %)`,
    bare: `${pctOf(bare)}`, pm2: pm2 ? `${pctOf(pm2)} (daemon ${fixed(pm2.masterPct, 2)} %)` : 'n/a (pm2 not installed)',
    compare: scaled ? `${plan.idleScaleWorkers} workers: ${pctOf(scaled)} (${fixed(scaled.totalPct / superv.totalPct, 2)}× for ${plan.idleScaleWorkers / n}× the workers)` : '—',
    target: `≤ ${TOTAL_PCT} % (≤ ${PER_WORKER_PCT} % per worker)`,
    ...(perWorker > PER_WORKER_PCT ? verdictAtMost(perWorker, PER_WORKER_PCT, 3, ' % per worker') : verdictAtMost(superv.totalPct, TOTAL_PCT, 2, ' %')),
  }, {
    figure: `RSS of the master with ${n} idle workers`,
    superv: `${fixed(superv.masterMiB, 1)} MiB`, bare: bare ? `${fixed(bare.masterMiB, 1)} MiB` : 'n/a',
    pm2: pm2 ? `${fixed(pm2.masterMiB, 1)} MiB (daemon)` : 'n/a (pm2 not installed)',
    compare: bare ? `+${fixed(superv.masterMiB - bare.masterMiB, 1)} MiB` : '—',
    target: `≤ ${MASTER_RSS_MIB} MiB`, ...verdictAtMost(superv.masterMiB, MASTER_RSS_MIB, 1, ' MiB'),
  }, {
    // RSS counts the node binary's pages too (shared, and varying with the page cache): what the master
    // itself costs the host is its private memory.
    figure: `private memory of the master with ${n} idle workers (smaps_rollup Private_*: RSS without the shared node binary)`,
    superv: `${fixed(superv.masterPrivateMiB, 1)} MiB`, bare: bare ? `${fixed(bare.masterPrivateMiB, 1)} MiB` : 'n/a',
    pm2: pm2 ? `${fixed(pm2.masterPrivateMiB, 1)} MiB (daemon)` : 'n/a (pm2 not installed)',
    compare: bare ? `+${fixed(superv.masterPrivateMiB - bare.masterPrivateMiB, 1)} MiB` : '—',
    target: '—', result: 'info',
  }];
  const line = (name: string, x: Idle | undefined) => (x ? `${name} ${fixed(x.totalPct, 3)} % (master ${fixed(x.masterPct, 3)} %, ` +
    `${x.workers} workers ${fixed(x.workersPct, 3)} %; master RSS ${fixed(x.masterMiB, 1)} MiB)` : `${name} n/a`);
  return {
    rows,
    details: [`**Idle fleet** (% of one core over ${plan.idleSeconds} s, /proc/PID/task/*/schedstat): ` +
      [line(`superv, ${n} workers:`, superv), line('bare cluster:', bare), line('pm2:', pm2),
        ...(scaled ? [line(`superv, ${plan.idleScaleWorkers} workers:`, scaled)] : [])].join('; ') + '.'],
    notes,
  };
}
