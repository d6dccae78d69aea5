// superv's CPU sampling (through the watchdog's inspector session) against @datadog/pprof's wall profiler with a
// per-request label (issue 26: "compare it side by side … and choose with the numbers"). The same app under superv
// in each configuration, side by side, rounds rotated:
//   off       superv, sampling off (--cpu-sample-interval 0): the baseline
//   superv    superv's sampling at its default, 50 ms
//   pprof50   sampling off, and @datadog/pprof in every worker (bench/fixtures/pprof-preload.js, by --node-args
//             "--require …"), wall profiler with CPU time and a route label, every 50 ms: the same rate as superv
//   pprof10   the same every 10 ms: dd-trace's default (99 Hz), what endpoint profiling runs in production
// Two halves:
// - cost, on the Express app: workers' CPU per request against "off" (all threads: superv's watchdog, pprof's
//   profiler thread), and the workers' RSS after the load;
// - attribution error, on test/fixtures/cpu-routes.js: each profiler's CPU ms per request per route against what
//   the route burns (bench/lib/attribution.ts).

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { APPS } from '../lib/apps';
import { ATTRIB_APP, BURN_TOLERANCE, driveInterleaved, IO_LIMIT_MS, KNOWN_ROUTES, pprofRouteCpu, routeError, supervRouteCpu, withinBounds,
  type PprofTotals } from '../lib/attribution';
import { pollUntil200 } from '../lib/http';
import type { Plan } from '../lib/plan';
import { cpuTicks, freePort, rssKiB, sleep, ticksPerSecond } from '../lib/proc';
import { verdictAtLeast, type FigureResult, type Row } from '../lib/report';
import { sideBySide, type Variant } from '../lib/side-by-side';
import { fixed, median, mib, pairedRatios, rotate } from '../lib/stats';
import { FIXTURES, SCRATCH, startSuperv, type SupervRunning } from '../lib/systems';

type Profiler = 'superv' | 'pprof50' | 'pprof10';
type Mode = 'off' | Profiler;
const PROFILERS: readonly Profiler[] = ['superv', 'pprof50', 'pprof10'];
const PRELOAD = join(FIXTURES, 'pprof-preload.js');
const OFF = ['--cpu-sample-interval', '0'];

const LABEL: Record<Mode, string> = {
  off: 'sampling off',
  superv: 'superv inspector sampling, 50 ms',
  pprof50: '@datadog/pprof wall+CPU with route labels, 50 ms',
  pprof10: '@datadog/pprof wall+CPU with route labels, 10 ms (dd-trace default)',
};

/** Each call gives the pprof variants fresh directories for their totals. */
function variants(): Record<Mode, Variant> {
  const pprof = (ms: number): Variant => ({
    args: [...OFF, '--node-args', `--require ${PRELOAD}`],
    env: { PPROF_INTERVAL_MS: String(ms), PPROF_DIR: mkdtempSync(join(SCRATCH, `pprof${ms}-`)) },
  });
  return { off: { args: OFF }, superv: { args: [] }, pprof50: pprof(50), pprof10: pprof(10) };
}

/**
 * A pprof variant must have profiled the load (a preload that failed to start would look free): its labelled
 * samples, and the CPU its profile holds against what the workers used (/proc).
 */
async function profiled(v: Variant, run: SupervRunning): Promise<string | undefined> {
  const t = await pprofRouteCpu(v.env!.PPROF_DIR!, run.workerPids(), 1);
  const labelled = [...t.routes].filter(([route]) => route.startsWith('/')).reduce((a, [, x]) => a + x.samples, 0);
  const profiledMs = [...t.routes.values()].reduce((a, x) => a + x.cpuNs, 0) / 1e6;
  const workerMs = run.workerPids().reduce((a, w) => a + cpuTicks(w), 0) / ticksPerSecond() * 1000;
  if (labelled > 0) return undefined;
  return `@datadog/pprof's profile holds no labelled sample and ${fixed(profiledMs)} ms of CPU of the workers' ${fixed(workerMs)} ms ` +
    `(${t.stuck} profiles V8 reported stuck; all: ${JSON.stringify([...t.routes])})`;
}

async function costRows(plan: Plan, notes: string[]): Promise<{ rows: Row[]; details: string[] }> {
  const v = variants();
  const r = await sideBySide(plan, APPS.express, v, notes, 'pprof',
    (k, run) => (k === 'pprof50' || k === 'pprof10' ? profiled(v[k], run) : Promise.resolve(undefined)));
  for (const p of PROFILERS) if (r[p].problem) notes.push(`pprof: ${LABEL[p]}, cost on Express: ${r[p].problem}`);
  const rows = PROFILERS.map((p): Row => {
    const ratio = median(pairedRatios(r.off.us, r[p].us));
    // A profiler that did not profile is not measured: its cost would be that of an idle one.
    const verdict = r[p].problem ? { result: 'n/a' as const } : verdictAtLeast(ratio, 0.99);
    return {
      figure: `CPU per request on Express vs sampling off: ${LABEL[p]}`,
      superv: `${fixed(median(r[p].us), 1)} µs; worker RSS ${mib(r[p].workerRssKiB)}`,
      bare: `off ${fixed(median(r.off.us), 1)} µs; RSS ${mib(r.off.workerRssKiB)}`, pm2: '—',
      compare: `${fixed(ratio, 3)}× (req/s ${fixed(median(pairedRatios(r[p].rps, r.off.rps)), 3)}×; RSS ${fixed((r[p].workerRssKiB - r.off.workerRssKiB) / 1024, 1)} MiB)`,
      target: '≥ 0.99 (≤ 1 %)', ...verdict,
    };
  });
  const per = (m: Mode) => `${m} µs/req ${r[m].us.map((x) => fixed(x, 1)).join(', ')}; req/s ${r[m].rps.map((x) => fixed(x)).join(', ')}`;
  return { rows, details: [`**superv sampling vs @datadog/pprof, cost on Express** (per round, rotated): ${(['off', ...PROFILERS] as Mode[]).map(per).join('; ')}`] };
}

interface Attribution {
  /** CPU ms per request by route, per profiler. */
  cpu: Record<Profiler, Map<string, number>>;
  /** @datadog/pprof's wall time per request by route (what its profile holds without CPU time). */
  wall: Partial<Record<Profiler, Map<string, number>>>;
  pprof: Partial<Record<Profiler, PprofTotals>>;
  workerRssKiB: Record<Profiler, number>;
  /** The CPU a pprof profile holds over what its workers used since they started (/proc): below 1, samples were lost. */
  coverage: Partial<Record<Profiler, number>>;
  requestsPerRoute: number;
}

async function attribution(plan: Plan): Promise<Attribution> {
  const v = variants();
  const runs = new Map<Profiler, SupervRunning>();
  const perRoute = plan.attribRounds * plan.attribPerRoute;
  try {
    for (const p of PROFILERS) runs.set(p, startSuperv({ app: ATTRIB_APP, workers: plan.workers, port: await freePort(), env: v[p].env }, v[p].args));
    for (const p of PROFILERS) {
      if (await pollUntil200(runs.get(p)!.url + '/', Date.now() + 20_000) === undefined) throw new Error(`superv (${p}) did not serve cpu-routes.js within 20 s`);
    }
    await sleep(1000);
    for (let r = 0; r < plan.attribRounds; r++) {
      for (const p of rotate(PROFILERS, r)) await driveInterleaved(runs.get(p)!.port, KNOWN_ROUTES.map((k) => k.path), plan.attribPerRoute, 4);
    }
    // superv's samples reach its master once a second.
    await sleep(1500);
    const out: Attribution = { cpu: {} as Attribution['cpu'], wall: {}, pprof: {}, workerRssKiB: {} as Attribution['workerRssKiB'], coverage: {},
      requestsPerRoute: perRoute };
    for (const p of PROFILERS) {
      const run = runs.get(p)!;
      out.workerRssKiB[p] = median(run.workerPids().map(rssKiB));
      if (p === 'superv') {
        const ms = await supervRouteCpu(run.runDir, run.supervName);
        out.cpu[p] = new Map([...ms].map(([route, cpuMs]) => [route, cpuMs / perRoute]));
      } else {
        const t = await pprofRouteCpu(v[p].env!.PPROF_DIR!, run.workerPids(), 1);
        out.pprof[p] = t;
        const workerMs = run.workerPids().reduce((n, w) => n + cpuTicks(w), 0) / ticksPerSecond() * 1000;
        out.coverage[p] = [...t.routes.values()].reduce((n, x) => n + x.cpuNs, 0) / 1e6 / workerMs;
        out.cpu[p] = new Map([...t.routes].map(([route, x]) => [route, x.cpuNs / 1e6 / perRoute]));
        out.wall[p] = new Map([...t.routes].map(([route, x]) => [route, x.wallNs / 1e6 / perRoute]));
      }
    }
    return out;
  } finally {
    for (const run of runs.values()) await run.stop();
  }
}

function routeCells(m: ReadonlyMap<string, number>): string {
  return KNOWN_ROUTES.map((k) => {
    const x = m.get(k.route) ?? 0;
    const err = routeError(k, x);
    return k.ms > 0 ? `${k.route} ${fixed(x, 2)} ms (${err >= 0 ? '+' : ''}${fixed(err * 100)} %)` : `${k.route} ${fixed(x, 2)} ms`;
  }).join(', ');
}

function attributionRows(a: Attribution): { rows: Row[]; details: string[]; notes: string[] } {
  const notes: string[] = [];
  const truth = KNOWN_ROUTES.map((k) => `${k.route} ${k.ms}`).join(', ') + ' ms';
  const rows = PROFILERS.map((p): Row => {
    const worst = Math.max(...KNOWN_ROUTES.filter((k) => k.checked && k.ms > 0).map((k) => Math.abs(routeError(k, a.cpu[p].get(k.route) ?? 0))));
    const ok = withinBounds(a.cpu[p]);
    return {
      figure: `attribution, CPU ms per request per route (cpu-routes.js, ${a.requestsPerRoute} requests each): ${LABEL[p]}`,
      superv: routeCells(a.cpu[p]), bare: `truth ${truth}`, pm2: '—',
      compare: `worst burn route ${fixed(worst * 100)} %; worker RSS ${mib(a.workerRssKiB[p])}`,
      target: `burn routes ±${BURN_TOLERANCE * 100} %, /io < ${IO_LIMIT_MS} ms`, result: ok ? 'pass' : 'MISS',
    };
  });
  const details = PROFILERS.filter((p) => a.pprof[p]).map((p) => {
    const t = a.pprof[p]!;
    const all = [...t.routes.entries()].map(([route, x]) => `${route}: ${x.samples} samples, CPU ${fixed(x.cpuNs / 1e6)} ms, wall ${fixed(x.wallNs / 1e6)} ms`).join('; ');
    return `**Attribution, ${LABEL[p]}** (${t.useCPED ? 'label carried by AsyncContextFrame' : 'label set by an async hook at every callback'}): ` +
      `wall ms per request ${routeCells(a.wall[p]!)}; the profile holds ${fixed((a.coverage[p] ?? Number.NaN) * 100)} % of the workers' CPU; totals ${all}`;
  });
  for (const p of PROFILERS) {
    const t = a.pprof[p];
    if (!t) continue;
    const labelled = [...t.routes].filter(([route]) => route.startsWith('/')).reduce((n, [, x]) => n + x.samples, 0);
    if (labelled === 0 || t.stuck > 0) {
      notes.push(`pprof: ${LABEL[p]}: ${labelled} labelled samples; V8's profiler returned ${t.stuck} empty profile(s) (event processor stuck, restarted by @datadog/pprof)`);
    }
  }
  const supervAll = [...a.cpu.superv.entries()].map(([route, x]) => `${route} ${fixed(x * a.requestsPerRoute)} ms`).join(', ');
  details.push(`**Attribution, ${LABEL.superv}**: CPU by route ${supervAll}`);
  notes.unshift('pprof: inside superv\'s workers @datadog/pprof loses busy samples, sometimes all of them: the watchdog\'s inspector session ' +
    'interferes with its profiler (reproduced without superv, docs/benchmarks.md). Its rows here are not its accuracy alone; the rounds ' +
    'give how much of the workers\' CPU each profile holds.');
  notes.unshift('pprof: /after (5 ms after an await) is shown but not checked: on Node 20 superv credits an await\'s continuation to ' +
    '"(no request)" unless a database driver turned the request context on (docs/cpu.md); @datadog/pprof there pays an async hook for it.');
  return { rows, details, notes };
}

export async function pprofFigure(plan: Plan): Promise<FigureResult> {
  const notes: string[] = [];
  const cost = await costRows(plan, notes);
  const attr = attributionRows(await attribution(plan));
  return { rows: [...cost.rows, ...attr.rows], details: [...cost.details, ...attr.details], notes: [...notes, ...attr.notes] };
}
