// Several configurations of superv serving the same app at once, loaded in turn, rounds rotated (A B C, B C A, …):
// the workers' CPU per request (every thread of every worker, /proc/PID/stat) is the figure, steadier than req/s on
// a shared host; req/s and the workers' RSS after the rounds are kept beside it. The cpu and pprof figures
// compare sampling on, off, and done another way with it.

import type { BenchApp } from './apps';
import { pollUntil200 } from './http';
import { load } from './load';
import type { Plan } from './plan';
import { cpuTicks, freePort, rssKiB, sleep, ticksPerSecond } from './proc';
import { median, rotate } from './stats';
import { startSuperv, type SupervRunning } from './systems';

export interface Variant {
  /** superv arguments after `start APP`. */
  args: readonly string[];
  /** Extra environment for superv and its workers. */
  env?: Record<string, string>;
}

export interface VariantResult {
  /** Workers' CPU µs per 2xx response, per round. */
  us: number[];
  rps: number[];
  /** Median RSS of its workers after the rounds, KiB. */
  workerRssKiB: number;
  /** What `verify` found wrong: the variant was not measuring what it claims. */
  problem?: string;
}

function workerTicks(run: SupervRunning): Map<number, number> {
  return new Map(run.workerPids().map((p) => [p, cpuTicks(p)]));
}

/**
 * `verify` runs on each variant after the rounds, before it stops, to check that what was measured was on: it
 * answers what is wrong, or undefined.
 */
export async function sideBySide<K extends string>(plan: Plan, app: BenchApp, variants: Record<K, Variant>, notes: string[],
  tag: string, verify?: (k: K, run: SupervRunning) => Promise<string | undefined>): Promise<Record<K, VariantResult>> {
  const keys = Object.keys(variants) as K[];
  const runs = new Map<K, SupervRunning>();
  const out = {} as Record<K, VariantResult>;
  for (const k of keys) out[k] = { us: [], rps: [], workerRssKiB: Number.NaN };
  const loadOf = (run: SupervRunning, durationS: number) =>
    load({ url: run.url + app.path, connections: plan.connections, durationS, requests: app.requests });
  try {
    for (const k of keys) runs.set(k, startSuperv({ app: app.file, workers: plan.workers, port: await freePort(), env: variants[k].env }, variants[k].args));
    for (const k of keys) {
      if (await pollUntil200(runs.get(k)!.url + app.readyPath, Date.now() + 20_000) === undefined) {
        throw new Error(`superv (${tag} ${k}) did not serve ${app.label} within 20 s: ${runs.get(k)!.stderr().slice(-300)}`);
      }
    }
    await sleep(1000);
    for (const k of keys) await loadOf(runs.get(k)!, plan.warmupSeconds);
    for (let r = 0; r < plan.helloRounds; r++) {
      for (const k of rotate(keys, r)) {
        const run = runs.get(k)!;
        const before = workerTicks(run);
        const res = await loadOf(run, plan.helloSeconds);
        let ticks = 0;
        for (const [pid, t] of before) ticks += cpuTicks(pid) - t;
        out[k].us.push(res.ok > 0 ? (ticks / ticksPerSecond()) * 1e6 / res.ok : Number.NaN);
        out[k].rps.push(res.reqPerSec);
        if (res.errors + res.non2xx > 0) notes.push(`${tag}: ${app.label}, ${k}, round ${r + 1}: ${res.errors} errors, ${res.non2xx} non-2xx`);
        await sleep(300);
      }
    }
    for (const k of keys) out[k].workerRssKiB = median(runs.get(k)!.workerPids().map(rssKiB));
    if (verify) for (const k of keys) out[k].problem = await verify(k, runs.get(k)!);
  } finally {
    for (const run of runs.values()) await run.stop();
  }
  return out;
}
