// A DB-backed route (pg Pool → PostgreSQL on 127.0.0.1:5432): req/s with superv's DB instrumentation on vs
// off, same app, same superv, rounds alternating. Until the instrumentation has a switch, the figure
// compares superv with the bare cluster on the same route, and says so.
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
import { freePort, sleep } from '../lib/proc';
import type { FigureResult } from '../lib/report';
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

export async function pgFigure(plan: Plan, sw: InstrumentSwitch | undefined): Promise<FigureResult> {
  const figure = sw ? 'pg route req/s, instrumentation on vs off' : 'pg route req/s (instrumentation not built yet: superv vs bare cluster)';
  const na = (why: string): FigureResult => ({
    rows: [{ figure, superv: `n/a (${why})`, bare: '—', pm2: '—', compare: 'n/a', target: '≥ 0.98', result: 'n/a' }], details: [], notes: [`pg: ${why}`],
  });
  if (!(await reachable('127.0.0.1', 5432, 1000))) return na('PostgreSQL not reachable on 127.0.0.1:5432');
  const a: number[] = [];
  const b: number[] = [];
  const notes: string[] = [];
  // Fresh processes for each batch of rounds (see hello.ts: a process keeps its own speed for its whole life).
  const perInstance = Math.ceil(plan.pgRounds / plan.pgInstances);
  for (let i = 0, r = 0; i < plan.pgInstances; i++, r += perInstance) {
    const failed = await pgInstance(plan, sw, r, Math.min(perInstance, plan.pgRounds - r), a, b, notes);
    if (failed !== undefined) return na(failed);
  }
  const ratio = median(pairedRatios(a, b));
  const [labelA, labelB] = sw ? ['on', 'off'] : ['superv', 'bare cluster'];
  if (!sw) notes.push('pg: no instrumentation switch found (superv --help has no boolean setting about instrumentation, and no --pg-on/--pg-off was given): compared superv with the bare cluster on the same route');
  return {
    rows: [{
      figure: `${figure} (${plan.workers} workers, ${CONNECTIONS} conns)`,
      superv: sw ? `on ${fixed(median(a))} / off ${fixed(median(b))}` : fixed(median(a)),
      bare: sw ? '—' : fixed(median(b)), pm2: '—',
      compare: `${fixed(ratio, 3)}×`, target: '≥ 0.98', result: Number.isFinite(ratio) ? (ratio >= 0.98 ? 'pass' : 'MISS') : 'n/a',
    }],
    details: [`**pg route** (req/s per round, ${sw ? `switch from ${sw.source}: on = \`${sw.on.join(' ')}\`, off = \`${sw.off.join(' ')}\`` : 'superv vs bare cluster'}): ` +
      `${labelA} ${a.map((x) => fixed(x)).join(', ')}; ${labelB} ${b.map((x) => fixed(x)).join(', ')}.`],
    notes,
  };
}

/** One pair of fresh systems: A = superv (instrumentation on), B = superv off or the bare cluster. Returns why it failed. */
async function pgInstance(plan: Plan, sw: InstrumentSwitch | undefined, first: number, rounds: number,
  a: number[], b: number[], notes: string[]): Promise<string | undefined> {
  const app = join(FIXTURES, 'pg.js');
  let runA: Running | undefined;
  let runB: Running | undefined;
  try {
    runA = startSuperv({ app, workers: plan.workers, port: await freePort() }, sw?.on ?? []);
    runB = sw ? startSuperv({ app, workers: plan.workers, port: await freePort() }, sw.off) : startCluster({ app, workers: plan.workers, port: await freePort() });
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
        const res = await load({ url: run.url + '/db', connections: CONNECTIONS, durationS: plan.pgSeconds });
        if (res.errors + res.non2xx > 0) notes.push(`pg: round ${r + 1}: ${res.errors} errors, ${res.non2xx} non-2xx`);
        out.push(res.reqPerSec);
      }
    }
    return undefined;
  } finally {
    await runA?.stop();
    await runB?.stop();
  }
}
