// Start to first 200: from spawning the supervisor (or running `pm2 start` against an already running
// daemon) to the first 200 on `/`, polled every 10 ms with a new connection each time.

import { join } from 'node:path';
import { pollUntil200 } from '../lib/http';
import type { Plan } from '../lib/plan';
import { freePort } from '../lib/proc';
import { verdictAtMost, type FigureResult } from '../lib/report';
import { fixed, median, rotate } from '../lib/stats';
import { FIXTURES, Pm2Home, startCluster, startSuperv, type Running, type SystemName } from '../lib/systems';

export async function startFigure(plan: Plan): Promise<FigureResult> {
  const app = join(FIXTURES, 'hello.js');
  const pm2 = Pm2Home.available() ? new Pm2Home() : undefined;
  await pm2?.ensureDaemon();
  const systems: SystemName[] = pm2 ? ['superv', 'cluster', 'pm2'] : ['superv', 'cluster'];
  const times: Record<SystemName, number[]> = { superv: [], cluster: [], pm2: [] };
  const notes: string[] = [];
  try {
    for (let r = 0; r < plan.startRounds; r++) {
      for (const sys of rotate(systems, r)) {
        const port = await freePort();
        const o = { app, workers: plan.workers, port };
        const t0 = Date.now();
        let starting: Promise<Running>;
        if (sys === 'superv') starting = Promise.resolve(startSuperv(o));
        else if (sys === 'cluster') starting = Promise.resolve(startCluster(o));
        else starting = pm2!.start(o, `start-${r}`);
        const [ok, run] = await Promise.all([pollUntil200(`http://127.0.0.1:${port}/`, t0 + 20_000, 10), starting]);
        if (ok === undefined) notes.push(`start: ${sys} gave no 200 within 20 s in round ${r + 1}`);
        else times[sys].push(ok - t0);
        await run.stop();
      }
    }
  } finally {
    await pm2?.kill();
  }
  const m = (s: SystemName) => median(times[s]);
  const delta = m('superv') - m('cluster');
  return {
    rows: [{
      figure: `start → first 200 (${plan.workers} workers)`,
      superv: `${fixed(m('superv'))} ms`, bare: `${fixed(m('cluster'))} ms`,
      pm2: pm2 ? `${fixed(m('pm2'))} ms (daemon already up)` : 'n/a (pm2 not installed)',
      compare: `${delta >= 0 ? '+' : ''}${fixed(delta)} ms`, target: '≤ bare + 100 ms',
      ...verdictAtMost(delta, 100, 0, ' ms'),
    }],
    details: [`**Start → first 200** (ms, per round): superv ${times.superv.join(', ')}; bare cluster ${times.cluster.join(', ')}` +
      (pm2 ? `; pm2 ${times.pm2.join(', ')} (\`pm2 start\` against a daemon started before the clock)` : '')],
    notes,
  };
}
