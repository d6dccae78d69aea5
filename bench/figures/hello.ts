// Hello-world throughput and p99, with the three systems up side by side on their own ports and rounds
// rotated (A B C, B C A, …). After each system's round, the RSS of its master and workers, so memory is read
// after warm-up and load, at the same point for everyone.

import { join } from 'node:path';
import { pollUntil200 } from '../lib/http';
import { load } from '../lib/load';
import type { Plan } from '../lib/plan';
import { cpuTicks, freePort, rssKiB, sleep, ticksPerSecond } from '../lib/proc';
import { verdictAtLeast, verdictAtMost, type FigureResult, type Row } from '../lib/report';

/** The master's RSS with the bench's workers, after load. */
const MASTER_RSS_MIB = 48;
import { fixed, median, mib, pairedRatios, rotate } from '../lib/stats';
import { FIXTURES, LABEL, Pm2Home, startCluster, startSuperv, type Running, type SystemName } from '../lib/systems';

interface Samples {
  rps: number[];
  p99: number[];
  masterKiB: number[];
  /** The supervisor's other non-serving processes (superv's port keeper), summed. */
  helperKiB: number[];
  workerKiB: number[];
  /** CPU (utime + stime, all worker processes, watchdog threads included) per 2xx response, µs. */
  workerUs: number[];
  /** The master's (or pm2 daemon's) CPU per 2xx response, µs. */
  masterUs: number[];
}

const empty = (): Samples => ({ rps: [], p99: [], masterKiB: [], helperKiB: [], workerKiB: [], workerUs: [], masterUs: [] });

/** CPU ticks of the master and of each worker, to turn a round into CPU per request (less noisy than req/s). */
function cpuNow(run: Running): { master: number; workers: Map<number, number> } {
  return { master: cpuTicks(run.masterPid), workers: new Map(run.workerPids().map((p) => [p, cpuTicks(p)])) };
}

function usPerRequest(ticks: number, ok: number): number {
  return ok > 0 ? (ticks / ticksPerSecond()) * 1e6 / ok : Number.NaN;
}

export async function helloFigure(plan: Plan): Promise<FigureResult> {
  const pm2 = Pm2Home.available() ? new Pm2Home() : undefined;
  const s: Record<SystemName, Samples> = { superv: empty(), cluster: empty(), pm2: empty() };
  const notes: string[] = [];
  // Fresh processes for each batch of rounds: one process can run a few % faster or slower than its twin for
  // its whole life (code and heap layout), which alternating rounds alone cannot cancel out.
  const perInstance = Math.ceil(plan.helloRounds / plan.helloInstances);
  try {
    for (let i = 0, r = 0; i < plan.helloInstances; i++, r += perInstance) {
      await instance(plan, pm2, `hello-${i}`, r, Math.min(perInstance, plan.helloRounds - r), s, notes);
    }
  } finally {
    await pm2?.kill();
  }
  return { rows: rows(plan, s, pm2 !== undefined), details: details(plan, s), notes };
}

/** Starts the systems side by side, warms them up, runs `rounds` rotated rounds (numbered from `first`), stops them. */
async function instance(plan: Plan, pm2: Pm2Home | undefined, pm2Name: string, first: number, rounds: number,
  s: Record<SystemName, Samples>, notes: string[]): Promise<void> {
  const app = join(FIXTURES, 'hello.js');
  const runs: Partial<Record<SystemName, Running>> = {};
  try {
    runs.superv = startSuperv({ app, workers: plan.workers, port: await freePort() });
    runs.cluster = startCluster({ app, workers: plan.workers, port: await freePort() });
    if (pm2) runs.pm2 = await pm2.start({ app, workers: plan.workers, port: await freePort() }, pm2Name);
    const systems = (Object.keys(runs) as SystemName[]);
    for (const sys of systems) {
      if (await pollUntil200(runs[sys]!.url + '/', Date.now() + 20_000) === undefined) throw new Error(`${sys} did not serve within 20 s`);
    }
    // Wait until every worker listens (the first 200 only proves one does), then warm up the JITs.
    await sleep(1000);
    for (const sys of systems) await load({ url: runs[sys]!.url + '/', connections: plan.connections, durationS: plan.warmupSeconds });
    for (let r = first; r < first + rounds; r++) {
      for (const sys of rotate(systems, r)) {
        const run = runs[sys]!;
        const before = cpuNow(run);
        const res = await load({ url: run.url + '/', connections: plan.connections, durationS: plan.helloSeconds });
        const after = cpuNow(run);
        let workerTicks = 0;
        for (const [pid, t] of before.workers) workerTicks += (after.workers.get(pid) ?? Number.NaN) - t;
        s[sys].workerUs.push(usPerRequest(workerTicks, res.ok));
        s[sys].masterUs.push(usPerRequest(after.master - before.master, res.ok));
        if (res.errors + res.non2xx > 0) notes.push(`hello: ${sys} round ${r + 1}: ${res.errors} errors, ${res.non2xx} non-2xx`);
        s[sys].rps.push(res.reqPerSec);
        s[sys].p99.push(res.p99Ms);
        await sleep(300);
        s[sys].masterKiB.push(rssKiB(run.masterPid));
        s[sys].helperKiB.push(run.helperPids().map(rssKiB).filter(Number.isFinite).reduce((a, b) => a + b, 0));
        const workers = run.workerPids().map(rssKiB).filter(Number.isFinite);
        if (workers.length !== plan.workers) notes.push(`hello: ${sys} had ${workers.length} worker processes, expected ${plan.workers}`);
        s[sys].workerKiB.push(median(workers));
      }
    }
  } finally {
    for (const run of Object.values(runs)) await run?.stop();
  }
}

function rows(plan: Plan, s: Record<SystemName, Samples>, hasPm2: boolean): Row[] {
  const m = (sys: SystemName, k: keyof Samples) => median(s[sys][k]);
  const ratio = median(pairedRatios(s.superv.rps, s.cluster.rps));
  const pm2Ratio = median(pairedRatios(s.pm2.rps, s.cluster.rps));
  // CPU per request from /proc, bare / superv (1 = superv adds nothing): far steadier than req/s here.
  const cpuRatio = median(pairedRatios(s.cluster.workerUs, s.superv.workerUs));
  const extra = m('superv', 'workerKiB') - m('cluster', 'workerKiB');
  const na = 'n/a (pm2 not installed)';
  return [
    {
      figure: `hello world req/s (${plan.workers} workers, ${plan.connections} conns)`,
      superv: fixed(m('superv', 'rps')), bare: fixed(m('cluster', 'rps')),
      pm2: hasPm2 ? `${fixed(m('pm2', 'rps'))} (${fixed(pm2Ratio, 2)}× bare)` : na,
      compare: `${fixed(ratio, 3)}×`, target: '≥ 0.98 × bare', ...verdictAtLeast(ratio, 0.98),
    },
    {
      figure: 'hello world p99 latency',
      superv: `${fixed(m('superv', 'p99'))} ms`, bare: `${fixed(m('cluster', 'p99'))} ms`, pm2: hasPm2 ? `${fixed(m('pm2', 'p99'))} ms` : na,
      compare: `${fixed(median(pairedRatios(s.superv.p99, s.cluster.p99)), 2)}×`, target: '—', result: 'info',
    },
    {
      figure: 'CPU per hello-world request: workers (master), bare cluster / superv',
      superv: `${fixed(m('superv', 'workerUs'), 1)} µs (${fixed(m('superv', 'masterUs'), 2)})`,
      bare: `${fixed(m('cluster', 'workerUs'), 1)} µs (${fixed(m('cluster', 'masterUs'), 2)})`,
      pm2: hasPm2 ? `${fixed(m('pm2', 'workerUs'), 1)} µs (${fixed(m('pm2', 'masterUs'), 2)})` : na,
      compare: `${fixed(cpuRatio, 3)}×`, target: '≥ 0.98', ...verdictAtLeast(cpuRatio, 0.98),
    },
    {
      figure: 'RSS of the master (after load); superv: + its port keeper process',
      superv: `${mib(m('superv', 'masterKiB'))} (+ ${mib(m('superv', 'helperKiB'))})`, bare: mib(m('cluster', 'masterKiB')), pm2: hasPm2 ? `${mib(m('pm2', 'masterKiB'))} (daemon)` : na,
      compare: `+${mib(m('superv', 'masterKiB') - m('cluster', 'masterKiB'))}`, target: `≤ ${MASTER_RSS_MIB} MiB`,
      ...verdictAtMost(m('superv', 'masterKiB') / 1024, MASTER_RSS_MIB, 1, ' MiB'),
    },
    {
      figure: 'RSS per worker (after load)',
      superv: mib(m('superv', 'workerKiB')), bare: mib(m('cluster', 'workerKiB')), pm2: hasPm2 ? mib(m('pm2', 'workerKiB')) : na,
      compare: `+${mib(extra)}`, target: '≤ bare + 10 MiB', ...verdictAtMost(extra / 1024, 10, 1, ' MiB'),
    },
  ];
}

function details(plan: Plan, s: Record<SystemName, Samples>): string[] {
  const line = (sys: SystemName) => `${LABEL[sys]}: req/s ${s[sys].rps.map((x) => fixed(x)).join(', ')}; p99 ms ${s[sys].p99.join(', ')}; ` +
    `worker CPU µs/req ${s[sys].workerUs.map((x) => fixed(x, 1)).join(', ')}; master RSS ${s[sys].masterKiB.map((k) => fixed(k / 1024, 1)).join(', ')} MiB; port keeper RSS ${s[sys].helperKiB.map((k) => fixed(k / 1024, 1)).join(', ')} MiB; worker RSS ${s[sys].workerKiB.map((k) => fixed(k / 1024, 1)).join(', ')} MiB`;
  return [`**Hello world** (per round, rounds rotated, fresh processes every ${Math.ceil(plan.helloRounds / plan.helloInstances)} rounds):\n\n` + (['superv', 'cluster', 'pm2'] as const).filter((x) => s[x].rps.length > 0)
    .map((x) => `- ${line(x)}`).join('\n')];
}
