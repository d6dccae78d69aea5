// Master CPU with many idle workers and heartbeats on (every 1 s, the default): utime + stime of the master
// from /proc/PID/stat over a window, as a percentage of one core. The workers' own total is reported too.

import { join } from 'node:path';
import type { Plan } from '../lib/plan';
import { cpuTicks, freePort, sleep, ticksPerSecond } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { fixed } from '../lib/stats';
import { FIXTURES, startSuperv } from '../lib/systems';

export async function idleFigure(plan: Plan): Promise<FigureResult> {
  const notes: string[] = [];
  const n = plan.idleWorkers;
  const run = startSuperv({ app: join(FIXTURES, 'hello.js'), workers: n, port: await freePort() }, ['--listen-timeout', '120s']);
  let masterPct = Number.NaN;
  let workersPct = Number.NaN;
  let bootMs = Number.NaN;
  let heartbeatsOk = false;
  try {
    const t0 = Date.now();
    const ready = await run.log.waitFor((e) => e.event === 'master-ready', 120_000);
    if (!ready) throw new Error(`superv did not get ${n} workers ready within 120 s`);
    bootMs = ready.time - t0;
    await sleep(3000); // let the boot's GC and JIT work settle
    const workers = run.workerPids();
    if (workers.length !== n) notes.push(`idle: ${workers.length} worker processes, expected ${n}`);
    const hz = ticksPerSecond();
    const m0 = cpuTicks(run.masterPid);
    const w0 = workers.map(cpuTicks);
    const t1 = Date.now();
    await sleep(plan.idleSeconds * 1000);
    const wall = (Date.now() - t1) / 1000;
    masterPct = ((cpuTicks(run.masterPid) - m0) / hz / wall) * 100;
    workersPct = (workers.reduce((sum, p, i) => sum + (cpuTicks(p) - w0[i]!), 0) / hz / wall) * 100;
    // The figure is only meaningful if the master kept all workers (no timeouts, no restarts) during the window.
    heartbeatsOk = run.log.find((e) => e.event === 'worker-stuck' || e.event === 'worker-exited') === undefined;
    if (!heartbeatsOk) notes.push('idle: a worker was declared stuck or exited during the window');
  } finally {
    await run.stop();
  }
  return {
    rows: [{
      figure: `master CPU, ${n} idle workers, heartbeats every 1 s (${plan.idleSeconds} s window)`,
      superv: `${fixed(masterPct, 2)} % of a core`, bare: '—', pm2: '—',
      compare: `all ${n} workers: ${fixed(workersPct, 1)} % of a core`,
      target: '< 2 %', result: Number.isFinite(masterPct) ? (masterPct < 2 ? 'pass' : 'MISS') : 'n/a',
    }],
    details: [`**Idle master**: ${n} workers ready ${fixed(bootMs)} ms after spawn; master ${fixed(masterPct, 3)} % and workers ` +
      `${fixed(workersPct, 2)} % of one core over ${plan.idleSeconds} s (/proc/PID/stat utime+stime, ${ticksPerSecond()} ticks/s).`],
    notes,
  };
}
