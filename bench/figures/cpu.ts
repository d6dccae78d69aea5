// The cost of always-on CPU sampling (cpu_sample_interval, default 50 ms): the same superv twice, side by side,
// sampling on and off, rounds rotated, on each app of bench/lib/apps.ts (hello world, Express): one row per app.
// CPU per request (all worker threads, from /proc) is the figure: steadier than req/s on a shared host. The target
// is ≤ 1 % (ratio ≥ 0.99) on both.

import { APPS, type BenchApp } from '../lib/apps';
import type { Plan } from '../lib/plan';
import { failedFigure, verdictAtLeast, type FigureResult } from '../lib/report';
import { sideBySide } from '../lib/side-by-side';
import { fixed, median, pairedRatios } from '../lib/stats';

const VARIANTS = { on: { args: [] }, off: { args: ['--cpu-sample-interval', '0'] } };

async function oneApp(plan: Plan, app: BenchApp): Promise<FigureResult> {
  const notes: string[] = [];
  const r = await sideBySide(plan, app, VARIANTS, notes, 'cpu');
  const cpuRatio = median(pairedRatios(r.off.us, r.on.us));
  const rpsRatio = median(pairedRatios(r.on.rps, r.off.rps));
  return {
    rows: [{
      figure: `CPU sampling (50 ms) on ${app.label}: CPU per request, off / on`,
      superv: `${fixed(median(r.on.us), 1)} µs on`, bare: `${fixed(median(r.off.us), 1)} µs off`, pm2: '—',
      compare: `${fixed(cpuRatio, 3)}× (req/s ${fixed(rpsRatio, 3)}×)`, target: '≥ 0.99 (≤ 1 %)', ...verdictAtLeast(cpuRatio, 0.99),
    }],
    details: [`**CPU sampling, ${app.label}** (per round, rotated): on µs/req ${r.on.us.map((x) => fixed(x, 1)).join(', ')}; ` +
      `off µs/req ${r.off.us.map((x) => fixed(x, 1)).join(', ')}; on req/s ${r.on.rps.map((x) => fixed(x)).join(', ')}; ` +
      `off req/s ${r.off.rps.map((x) => fixed(x)).join(', ')}`],
    notes,
  };
}

export async function cpuFigure(plan: Plan): Promise<FigureResult> {
  const parts: FigureResult[] = [];
  for (const app of [APPS.hello, APPS.express]) {
    // One app's failure leaves the other's row.
    try {
      parts.push(await oneApp(plan, app));
    } catch (err) {
      parts.push(failedFigure(`cpu (${app.label})`, err));
    }
  }
  return { rows: parts.flatMap((p) => p.rows), details: parts.flatMap((p) => p.details), notes: parts.flatMap((p) => p.notes) };
}
