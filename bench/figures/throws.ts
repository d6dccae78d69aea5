// The cost of crash_locals on a route that throws and catches errors as normal flow (200 bad inputs rejected by
// JSON.parse per request): superv with crash_locals on (the watchdog keeps the inspector's Debugger on and
// pauses on uncaught exceptions) against superv with it off (the default: only uncaughtExceptionMonitor and the
// process.exit/abort wrappers, which cost nothing per throw). The budget was 1 %: over it, the setting stays off.

import { join } from 'node:path';
import { fetchOnce, pollUntil200 } from '../lib/http';
import { load } from '../lib/load';
import type { Plan } from '../lib/plan';
import { freePort, sleep } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { fixed, median, pairedRatios } from '../lib/stats';
import { FIXTURES, startSuperv, type Running } from '../lib/systems';

const CONNECTIONS = 20;
const ROUTE = '/throws?n=200';

export async function throwsFigure(plan: Plan): Promise<FigureResult> {
  const app = join(FIXTURES, 'hello.js');
  const on: number[] = [];
  const off: number[] = [];
  let runOn: Running | undefined;
  let runOff: Running | undefined;
  try {
    runOn = startSuperv({ app, workers: plan.workers, port: await freePort() }, ['--crash-locals']);
    runOff = startSuperv({ app, workers: plan.workers, port: await freePort() }, ['--no-crash-locals']);
    for (const run of [runOn, runOff]) {
      if (await pollUntil200(run.url + '/', Date.now() + 20_000) === undefined) throw new Error(`${run.name} did not serve within 20 s`);
      const probe = await fetchOnce(run.url + ROUTE, 5000);
      if (!('status' in probe) || probe.status !== 200) throw new Error(`the ${ROUTE} route failed`);
    }
    // Pause-on-uncaught is turned on by the watchdog after the worker listens.
    await sleep(2000);
    for (const run of [runOn, runOff]) await load({ url: run.url + ROUTE, connections: CONNECTIONS, durationS: plan.warmupSeconds });
    for (let r = 0; r < plan.pgRounds; r++) {
      const order = r % 2 === 0 ? [[runOn, on], [runOff, off]] as const : [[runOff, off], [runOn, on]] as const;
      for (const [run, out] of order) out.push((await load({ url: run.url + ROUTE, connections: CONNECTIONS, durationS: plan.pgSeconds })).reqPerSec);
    }
  } finally {
    await runOn?.stop();
    await runOff?.stop();
  }
  const ratio = median(pairedRatios(on, off));
  return {
    rows: [{
      figure: `throw-heavy route, crash_locals on vs off (${plan.workers} workers, ${CONNECTIONS} conns)`,
      superv: `on ${fixed(median(on))} / off ${fixed(median(off))} req/s`, bare: '—', pm2: '—',
      compare: `${fixed(ratio, 3)}×`, target: '≥ 0.99 to be on by default',
      // Either way the default is right: on only if it costs ≤ 1 %, which it does not.
      result: Number.isFinite(ratio) ? (ratio >= 0.99 ? 'pass' : 'info') : 'n/a',
    }],
    details: [`**throws** (req/s per round on \`${ROUTE}\`): crash_locals on ${on.map((x) => fixed(x)).join(', ')}; off ${off.map((x) => fixed(x)).join(', ')}.`],
    notes: ratio < 0.99 ? [`throws: crash_locals costs ${fixed((1 - ratio) * 100, 1)} % on a throw-heavy route: it stays off by default`] : [],
  };
}
