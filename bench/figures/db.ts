// The DB-backed routes (a pg Pool → PostgreSQL on 127.0.0.1:5432, a mysql2 pool → MariaDB on 127.0.0.1:3306):
// worker CPU per request (from /proc) and req/s with superv's DB instrumentation on vs off, same app, same
// superv, rounds alternating. Without an instrumentation switch, the figure compares superv with the bare
// cluster on the same route, and says so.
//
// The switch is found in `superv --help` (a boolean setting whose line mentions "instrument": on = --X,
// off = --no-X), or given explicitly: `npm run bench -- --pg-on "ARGS" --pg-off "ARGS"` (superv arguments,
// e.g. "--env SUPERV_DB_INSTRUMENT=1").

import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fetchOnce, pollUntil200 } from '../lib/http';
import { load } from '../lib/load';
import type { Plan } from '../lib/plan';
import { cpuTicks, freePort, sleep, ticksPerSecond } from '../lib/proc';
import { verdictAtLeast, type FigureResult } from '../lib/report';
import { fixed, median, pairedRatios } from '../lib/stats';
import { FIXTURES, startCluster, startSuperv, SUPERV_CLI, type Running } from '../lib/systems';

const CONNECTIONS = 32;

export interface InstrumentSwitch { on: string[]; off: string[]; source: string }

/** The on/off superv arguments: given on the bench's command line, or a boolean setting found in --help. */
export function findSwitch(on?: string, off?: string): InstrumentSwitch | undefined {
  if (on !== undefined || off !== undefined) {
    return { on: (on ?? '').split(/\s+/).filter(Boolean), off: (off ?? '').split(/\s+/).filter(Boolean), source: 'the bench command line' };
  }
  let help = '';
  try { help = execFileSync(process.execPath, [SUPERV_CLI, '--help'], { encoding: 'utf8', timeout: 10_000 }); } catch { return undefined; }
  for (const line of help.split('\n')) {
    const m = /^\s+(--[a-z0-9-]+)\s.*instrument/i.exec(line);
    if (m && /\[default: (true|false)\]/.test(line)) return { on: [m[1]!], off: [`--no-${m[1]!.slice(2)}`], source: `superv --help (${m[1]})` };
  }
  return undefined;
}

export function reachable(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The DB routes of the figure: the same query shape through each driver superv instruments (db.js, DRIVER=…). */
export type Driver = 'pg' | 'postgres' | 'mysql2' | 'mariadb';
export const DB_DRIVERS: readonly Driver[] = ['pg', 'postgres', 'mysql2', 'mariadb'];
const DRIVERS: Record<Driver, { app: string; host: string; port: number; server: string }> = {
  pg: { app: 'db.js', host: '127.0.0.1', port: 5432, server: 'PostgreSQL' },
  postgres: { app: 'db.js', host: '127.0.0.1', port: 5432, server: 'PostgreSQL' },
  mysql2: { app: 'db.js', host: '127.0.0.1', port: 3306, server: 'MariaDB/MySQL' },
  mariadb: { app: 'db.js', host: '127.0.0.1', port: 3306, server: 'MariaDB/MySQL' },
};
/** The target: instrumentation on keeps this share of the worker CPU per request it takes with it off. */
const TARGET = 0.98;

interface Samples { rps: number[]; workerUs: number[] }

/** Worker CPU (all worker processes, watchdog threads included) in clock ticks. */
function workerTicks(run: Running): Map<number, number> {
  return new Map(run.workerPids().map((p) => [p, cpuTicks(p)]));
}

export async function dbFigure(plan: Plan, sw: InstrumentSwitch | undefined, driver: Driver): Promise<FigureResult> {
  const d = DRIVERS[driver];
  const figure = sw ? `${driver} route, worker CPU per request, instrumentation off / on`
    : `${driver} route, worker CPU per request (no instrumentation switch: bare cluster / superv)`;
  const na = (why: string): FigureResult => ({
    rows: [{ figure, superv: `n/a (${why})`, bare: '—', pm2: '—', compare: 'n/a', target: `≥ ${TARGET}`, result: 'n/a' }], details: [], notes: [`${driver}: ${why}`],
  });
  if (!(await reachable(d.host, d.port, 1000))) return na(`${d.server} not reachable on ${d.host}:${d.port}`);
  const a: Samples = { rps: [], workerUs: [] };
  const b: Samples = { rps: [], workerUs: [] };
  const notes: string[] = [];
  // Fresh processes for each batch of rounds (see hello.ts: a process keeps its own speed for its whole life).
  const perInstance = Math.ceil(plan.pgRounds / plan.pgInstances);
  for (let i = 0, r = 0; i < plan.pgInstances; i++, r += perInstance) {
    const failed = await dbInstance(plan, sw, d.app, driver, r, Math.min(perInstance, plan.pgRounds - r), a, b, notes);
    if (failed !== undefined) return na(failed);
  }
  // CPU per request is the figure (read from /proc: far steadier than req/s here); off / on, so 1 = free.
  const ratio = median(pairedRatios(b.workerUs, a.workerUs));
  const rpsRatio = median(pairedRatios(a.rps, b.rps));
  const [labelA, labelB] = sw ? ['on', 'off'] : ['superv', 'bare cluster'];
  if (!sw) notes.push(`${driver}: no instrumentation switch found (superv --help has no boolean setting about instrumentation, and no --pg-on/--pg-off was given): compared superv with the bare cluster on the same route`);
  return {
    rows: [{
      figure: `${figure} (${plan.workers} workers, ${CONNECTIONS} conns)`,
      superv: `${labelA} ${fixed(median(a.workerUs), 1)} µs / ${labelB} ${fixed(median(b.workerUs), 1)} µs`,
      bare: '—', pm2: '—',
      compare: `${fixed(ratio, 3)}× (req/s ${labelA}/${labelB} ${fixed(rpsRatio, 3)}×: ${fixed(median(a.rps))} / ${fixed(median(b.rps))})`,
      target: `≥ ${TARGET}`, ...verdictAtLeast(ratio, TARGET),
    }],
    details: [`**${driver} route** (per round, ${sw ? `switch from ${sw.source}: on = \`${sw.on.join(' ')}\`, off = \`${sw.off.join(' ')}\`` : 'superv vs bare cluster'}): ` +
      `worker CPU µs/req ${labelA} ${a.workerUs.map((x) => fixed(x, 1)).join(', ')}; ${labelB} ${b.workerUs.map((x) => fixed(x, 1)).join(', ')}; ` +
      `req/s ${labelA} ${a.rps.map((x) => fixed(x)).join(', ')}; ${labelB} ${b.rps.map((x) => fixed(x)).join(', ')}.`],
    notes,
  };
}

/** One pair of fresh systems: A = superv (instrumentation on), B = superv off or the bare cluster. Returns why it failed. */
async function dbInstance(plan: Plan, sw: InstrumentSwitch | undefined, fixture: string, driver: Driver, first: number, rounds: number,
  a: Samples, b: Samples, notes: string[]): Promise<string | undefined> {
  const app = join(FIXTURES, fixture);
  const env = { DRIVER: driver };
  let runA: Running | undefined;
  let runB: Running | undefined;
  try {
    runA = startSuperv({ app, workers: plan.workers, port: await freePort(), env }, sw?.on ?? []);
    runB = sw ? startSuperv({ app, workers: plan.workers, port: await freePort(), env }, sw.off) : startCluster({ app, workers: plan.workers, port: await freePort(), env });
    for (const run of [runA, runB]) {
      if (await pollUntil200(run.url + '/', Date.now() + 20_000) === undefined) throw new Error(`${run.name} did not serve within 20 s`);
      const probe = await fetchOnce(run.url + '/db', 5000);
      if (!('status' in probe) || probe.status !== 200) return `the /db route failed: ${'status' in probe ? `${probe.status} ${probe.body}` : probe.error}`;
    }
    await sleep(1000);
    for (const run of [runA, runB]) await load({ url: run.url + '/db', connections: CONNECTIONS, durationS: plan.warmupSeconds });
    for (let r = first; r < first + rounds; r++) {
      const order = r % 2 === 0 ? [[runA, a], [runB, b]] as const : [[runB, b], [runA, a]] as const;
      for (const [run, out] of order) {
        const before = workerTicks(run);
        const res = await load({ url: run.url + '/db', connections: CONNECTIONS, durationS: plan.pgSeconds });
        const after = workerTicks(run);
        let ticks = 0;
        for (const [pid, t] of before) ticks += (after.get(pid) ?? Number.NaN) - t;
        if (res.errors + res.non2xx > 0) notes.push(`${driver}: round ${r + 1}: ${res.errors} errors, ${res.non2xx} non-2xx`);
        out.rps.push(res.reqPerSec);
        out.workerUs.push(res.ok > 0 ? (ticks / ticksPerSecond()) * 1e6 / res.ok : Number.NaN);
      }
    }
    return undefined;
  } finally {
    await runA?.stop();
    await runB?.stop();
  }
}
