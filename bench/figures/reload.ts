// Requests failed during a rolling reload under load: superv (SIGHUP to the master) against `pm2 reload`.
// autocannon keeps hammering `/` from 1 s before the reload until 1 s after it completed; every socket
// error, timeout and non-2xx counts as failed. Rounds alternate superv, pm2, superv, pm2 …

import { join } from 'node:path';
import { pollUntil200 } from '../lib/http';
import type { LogEvent } from '../lib/log-tail';
import { startLoad, type LoadResult } from '../lib/load';
import type { Plan } from '../lib/plan';
import { freePort, signal, sleep, waitGone } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { fixed, median, rotate } from '../lib/stats';
import { FIXTURES, Pm2Home, startSuperv, type Running, type SupervRunning } from '../lib/systems';

const RELOAD_BOUND_MS = 30_000;
type Outcome = { ok: true; ms: number } | { ok: false; why: string; notImplemented?: boolean };

const END_EVENTS = new Set(['reload-done', 'reload-failed', 'reload-aborted']);

async function supervReload(run: SupervRunning): Promise<Outcome> {
  const from = run.log.length;
  const t0 = Date.now();
  signal(run.masterPid, 'SIGHUP');
  const notImpl = (e: LogEvent) => /not (yet )?implemented/i.test(e.msg ?? '');
  // A master that does not know SIGHUP says nothing at all: no reload-start within 5 s means not implemented.
  const started = await run.log.waitFor((e) => e.event === 'reload-start' || (e.event !== undefined && END_EVENTS.has(e.event)) || notImpl(e), 5_000, from);
  if (!started) return { ok: false, why: 'no reload-start event within 5 s of SIGHUP', notImplemented: true };
  if (notImpl(started)) return { ok: false, why: started.msg ?? 'not implemented', notImplemented: true };
  const end = await run.log.waitFor((e) => (e.event !== undefined && END_EVENTS.has(e.event)) || notImpl(e), RELOAD_BOUND_MS, from);
  if (!end) return { ok: false, why: `no reload-done within ${RELOAD_BOUND_MS / 1000} s` };
  if (end.event !== 'reload-done') return { ok: false, why: `${end.event ?? 'log'}: ${end.msg ?? ''}`, notImplemented: notImpl(end) };
  return { ok: true, ms: end.time - t0 };
}

async function pm2Reload(pm2: Pm2Home, appName: string): Promise<Outcome> {
  const t0 = Date.now();
  const r = await pm2.cmd(['reload', appName], {}, RELOAD_BOUND_MS);
  return r.code === 0 ? { ok: true, ms: Date.now() - t0 } : { ok: false, why: `pm2 reload exited ${r.code}: ${r.stderr.slice(0, 200)}` };
}

interface Round { failed: number; errors: number; timeouts: number; non2xx: number; total: number; reloadMs: number; replaced: boolean }

export async function reloadFigure(plan: Plan): Promise<FigureResult> {
  const app = join(FIXTURES, 'hello.js');
  const pm2 = Pm2Home.available() ? new Pm2Home() : undefined;
  const rounds: { superv: Round[]; pm2: Round[] } = { superv: [], pm2: [] };
  const notes: string[] = [];
  let supervNa: string | undefined;
  let superv: SupervRunning | undefined;
  let pm2Run: Running | undefined;
  try {
    superv = startSuperv({ app, workers: plan.workers, port: await freePort() });
    if (pm2) pm2Run = await pm2.start({ app, workers: plan.workers, port: await freePort() }, 'reload');
    for (const run of [superv, pm2Run]) {
      if (run && await pollUntil200(run.url + '/', Date.now() + 20_000) === undefined) throw new Error(`${run.name} did not serve within 20 s`);
    }
    await sleep(1000);
    const systems: Array<'superv' | 'pm2'> = pm2Run ? ['superv', 'pm2'] : ['superv'];
    for (let r = 0; r < plan.reloadRounds; r++) {
      for (const sys of rotate(systems, r)) {
        if (sys === 'superv' && supervNa) continue;
        const run = sys === 'superv' ? superv : pm2Run!;
        const before = run.workerPids();
        const loadRun = startLoad({ url: run.url + '/', connections: plan.connections, durationS: RELOAD_BOUND_MS / 1000 + 5 });
        await sleep(1000);
        const outcome = sys === 'superv' ? await supervReload(superv) : await pm2Reload(pm2!, 'reload');
        await sleep(1000);
        loadRun.stop();
        const res: LoadResult = await loadRun.done;
        if (!outcome.ok) {
          if (sys === 'superv' && outcome.notImplemented) { supervNa = outcome.why; continue; }
          notes.push(`reload: ${sys} round ${r + 1} failed: ${outcome.why}`);
          continue;
        }
        // The old workers drain and exit: wait for them so the next round starts from a settled system.
        const gone = await waitGone(before, 15_000);
        const after = run.workerPids();
        rounds[sys].push({
          failed: res.errors + res.non2xx, errors: res.errors, timeouts: res.timeouts, non2xx: res.non2xx, total: res.total,
          reloadMs: outcome.ms, replaced: gone && before.every((p) => !after.includes(p)),
        });
        await sleep(500);
      }
    }
  } finally {
    await superv?.stop();
    await pm2Run?.stop();
    await pm2?.kill();
  }
  for (const sys of ['superv', 'pm2'] as const) {
    if (rounds[sys].some((x) => !x.replaced)) notes.push(`reload: some ${sys} rounds did not replace every worker`);
  }
  const med = (sys: 'superv' | 'pm2') => median(rounds[sys].map((x) => x.failed));
  const cellOf = (sys: 'superv' | 'pm2') => rounds[sys].length === 0 ? 'n/a' :
    `${fixed(med(sys))} per reload (${rounds[sys].map((x) => x.failed).join(', ')}), reload ${fixed(median(rounds[sys].map((x) => x.reloadMs)))} ms`;
  const supervCell = supervNa ? 'n/a (not implemented yet)' : cellOf('superv');
  if (supervNa) notes.push(`reload: superv reload not available: ${supervNa}`);
  const line = (sys: 'superv' | 'pm2') => rounds[sys].map((x, i) =>
    `round ${i + 1}: ${x.failed} failed of ${x.total} (${x.errors} errors incl. ${x.timeouts} timeouts, ${x.non2xx} non-2xx), reload ${x.reloadMs} ms`).join('; ');
  return {
    rows: [{
      figure: `failed requests during a rolling reload under load (${plan.workers} workers, ${plan.connections} conns)`,
      superv: supervCell, bare: '— (no reload)', pm2: pm2 ? cellOf('pm2') : 'n/a (pm2 not installed)',
      compare: supervNa ? 'n/a' : `${fixed(med('superv'))} vs ${fixed(med('pm2'))}`, target: '0',
      result: supervNa || rounds.superv.length === 0 ? 'n/a' : rounds.superv.every((x) => x.failed === 0) ? 'pass' : 'MISS',
    }],
    details: [`**Reload under load**: superv (SIGHUP) ${line('superv') || 'n/a'}. pm2 (\`pm2 reload\`) ${line('pm2') || 'n/a'}.`],
    notes,
  };
}
