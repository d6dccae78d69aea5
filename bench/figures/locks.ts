// The lock look-up's cost on DB routes: req/s of the pg route (bench/fixtures/db.js, DRIVER=pg) and of the mysql2
// route (the same fixture, DRIVER=mysql2) under superv with the look-up on (`--lock-lookup`, the default) and off
// (`--no-lock-lookup`), same build, rounds alternating, fresh processes per batch like the pg figure.
// The look-up itself runs only at dump time (none happen here); what is left per request is nothing by
// design, and per heartbeat the scan of busy DB sessions for the master's holder map. Off turns both off,
// so the ratio is the whole feature's steady-state cost.
//
//   npm run bench -- --only locks

import { join } from 'node:path';
import { fetchOnce, pollUntil200 } from '../lib/http';
import { load } from '../lib/load';
import type { Plan } from '../lib/plan';
import { freePort, sleep } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { fixed, median, pairedRatios } from '../lib/stats';
import { FIXTURES, startSuperv, type Running } from '../lib/systems';
import { reachable } from './db';

const CONNECTIONS = 32;
const TARGET = 0.98;

interface Route { name: string; app: string; port: number; what: string; env: Record<string, string> }

const ROUTES: Route[] = [
  { name: 'pg', app: join(FIXTURES, 'db.js'), port: 5432, what: 'PostgreSQL', env: { DRIVER: 'pg' } },
  { name: 'mysql2', app: join(FIXTURES, 'db.js'), port: 3306, what: 'MariaDB/MySQL', env: { DRIVER: 'mysql2' } },
];

async function instance(plan: Plan, route: Route, first: number, rounds: number, on: number[], off: number[], notes: string[]): Promise<string | undefined> {
  let runOn: Running | undefined;
  let runOff: Running | undefined;
  try {
    runOn = startSuperv({ app: route.app, workers: plan.workers, port: await freePort(), env: route.env }, ['--lock-lookup']);
    runOff = startSuperv({ app: route.app, workers: plan.workers, port: await freePort(), env: route.env }, ['--no-lock-lookup']);
    for (const run of [runOn, runOff]) {
      if (await pollUntil200(run.url + '/', Date.now() + 20_000) === undefined) throw new Error(`${run.name} did not serve within 20 s`);
      const probe = await fetchOnce(run.url + '/db', 5000);
      if (!('status' in probe) || probe.status !== 200) return `the /db route failed: ${'status' in probe ? `${probe.status} ${probe.body}` : probe.error}`;
    }
    await sleep(1000);
    for (const run of [runOn, runOff]) await load({ url: run.url + '/db', connections: CONNECTIONS, durationS: plan.warmupSeconds });
    for (let r = first; r < first + rounds; r++) {
      const order = r % 2 === 0 ? [[runOn, on], [runOff, off]] as const : [[runOff, off], [runOn, on]] as const;
      for (const [run, out] of order) {
        const res = await load({ url: run.url + '/db', connections: CONNECTIONS, durationS: plan.pgSeconds });
        if (res.errors + res.non2xx > 0) notes.push(`locks ${route.name}: round ${r + 1}: ${res.errors} errors, ${res.non2xx} non-2xx`);
        out.push(res.reqPerSec);
      }
    }
    return undefined;
  } finally {
    await runOn?.stop();
    await runOff?.stop();
  }
}

export async function locksFigure(plan: Plan): Promise<FigureResult> {
  const out: FigureResult = { rows: [], details: [], notes: [] };
  for (const route of ROUTES) {
    const figure = `${route.name} route req/s, lock look-up on vs off (${plan.workers} workers, ${CONNECTIONS} conns)`;
    const na = (why: string) => {
      out.rows.push({ figure, superv: `n/a (${why})`, bare: '—', pm2: '—', compare: 'n/a', target: `≥ ${TARGET}`, result: 'n/a' });
      out.notes.push(`locks ${route.name}: ${why}`);
    };
    if (!(await reachable('127.0.0.1', route.port, 1000))) { na(`${route.what} not reachable on 127.0.0.1:${route.port}`); continue; }
    const on: number[] = [];
    const off: number[] = [];
    const perInstance = Math.ceil(plan.pgRounds / plan.pgInstances);
    let failed: string | undefined;
    for (let i = 0, r = 0; i < plan.pgInstances && failed === undefined; i++, r += perInstance) {
      failed = await instance(plan, route, r, Math.min(perInstance, plan.pgRounds - r), on, off, out.notes);
    }
    if (failed !== undefined) { na(failed); continue; }
    const ratio = median(pairedRatios(on, off));
    out.rows.push({
      figure, superv: `on ${fixed(median(on))} / off ${fixed(median(off))}`, bare: '—', pm2: '—',
      compare: `${fixed(ratio, 3)}×`, target: `≥ ${TARGET}`, result: Number.isFinite(ratio) ? (ratio >= TARGET ? 'pass' : 'MISS') : 'n/a',
    });
    out.details.push(`**${route.name} route, lock look-up** (req/s per round): on ${on.map((x) => fixed(x)).join(', ')}; off ${off.map((x) => fixed(x)).join(', ')}.`);
  }
  return out;
}
