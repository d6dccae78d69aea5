// Dump capture time against the size of what the stuck code holds (`--only capture-size`). One worker of
// test/fixtures/big-locals-app.js builds the data (in chunks, the loop free), then gets stuck in a function
// whose locals hold it; the bench asks for one dump after another through the control socket and reads each
// dump's own capture.elapsedMs. Cases: small locals (the baseline), Arrays of 1 k, 100 k and 10 M elements, a
// 1 M-entry Map and Set, a 100 MB string, a 50 k-property object, all of those at once in each of 50 frames,
// and small locals over a 1.5 GB heap. Target: p99 ≤ 250 ms in every case and within 2× of the baseline's p99.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../../src/control/client';
import { fetchOnce, fireAndForget, pollUntil200 } from '../lib/http';
import type { Plan } from '../lib/plan';
import { freePort, sleep } from '../lib/proc';
import type { FigureResult, Row } from '../lib/report';
import { fixed, median, percentile } from '../lib/stats';
import { REPO, startSuperv } from '../lib/systems';

const APP = join(REPO, 'test', 'fixtures', 'big-locals-app.js');
const TARGET_MS = 250;
const BASELINE_FACTOR = 2;

interface Case {
  name: string;
  /** Query of /build: sizes of the locals and MB of ballast heap. */
  build: Record<string, number>;
  depth: number;
  /** V8's old-space limit for the worker: fits the data with room, and the machine (24 GiB, 2 cores). */
  heapMb: number;
}

const ALL = { array: 10_000_000, map: 1_000_000, set: 1_000_000, string: 100_000_000, props: 50_000 };
const CASES: Case[] = [
  { name: 'small locals', build: {}, depth: 0, heapMb: 512 },
  { name: 'Array, 1 k elements', build: { array: 1_000 }, depth: 0, heapMb: 512 },
  { name: 'Array, 100 k elements', build: { array: 100_000 }, depth: 0, heapMb: 512 },
  { name: 'Array, 10 M elements', build: { array: 10_000_000 }, depth: 0, heapMb: 1024 },
  { name: 'Map, 1 M entries', build: { map: 1_000_000 }, depth: 0, heapMb: 1024 },
  { name: 'Set, 1 M entries', build: { set: 1_000_000 }, depth: 0, heapMb: 1024 },
  { name: 'string, 100 MB', build: { string: 100_000_000 }, depth: 0, heapMb: 1024 },
  { name: 'object, 50 k own properties', build: { props: 50_000 }, depth: 0, heapMb: 512 },
  { name: 'all of the above, in each of 50 frames', build: ALL, depth: 49, heapMb: 2048 },
  { name: 'small locals, 1.5 GB heap', build: { ballastMb: 1536 }, depth: 0, heapMb: 3072 },
];

interface Sample { ms: number; complete: boolean; sizesShown: boolean }

interface DumpShape {
  capture?: { elapsedMs?: number; complete?: boolean; stack?: Array<{ function?: string; locals?: Record<string, { size?: number }> }> };
}

async function measure(c: Case, samples: number, notes: string[]): Promise<Sample[]> {
  const out: Sample[] = [];
  const run = startSuperv({ app: APP, workers: 1, port: await freePort() },
    ['--timeout', '0', '--slow', '0', '--node-args', `--max-old-space-size=${c.heapMb}`]);
  try {
    if (await pollUntil200(run.url + '/', Date.now() + 20_000) === undefined) throw new Error('superv did not serve within 20 s');
    const ready = await run.log.waitFor((e) => e.event === 'worker-ready', 5_000);
    const worker = ready?.worker ?? 1;
    const q = new URLSearchParams(Object.entries(c.build).map(([k, v]): [string, string] => [k, String(v)]));
    const built = await fetchOnce(`${run.url}/build?${q}`, 300_000);
    if (!('body' in built) || built.body !== 'built') throw new Error(`${c.name}: build failed: ${JSON.stringify(built)}`);
    fireAndForget(`${run.url}/stuck?ms=600000&depth=${c.depth}`);
    await sleep(800); // the watchdog calls the loop blocked after 250 ms without a tick
    const wanted = Object.keys(c.build).filter((k) => k !== 'ballastMb').length;
    for (let i = 0; i < samples; i++) {
      const reply = await request(run.runDir, run.supervName, { cmd: 'dump', worker }, 30_000) as { files?: string[] };
      const file = reply.files?.[0];
      if (!file) { notes.push(`capture-size, ${c.name}: sample ${i + 1} wrote no dump`); continue; }
      const cap = (JSON.parse(readFileSync(file, 'utf8')) as DumpShape).capture;
      if (cap?.elapsedMs === undefined) { notes.push(`capture-size, ${c.name}: sample ${i + 1} has no capture`); continue; }
      const top = cap.stack?.find((f) => f.function === 'spinOverBigData');
      const shown = Object.values(top?.locals ?? {}).filter((v) => (v.size ?? 0) >= 1_000).length;
      out.push({ ms: cap.elapsedMs, complete: cap.complete === true, sizesShown: shown >= wanted });
    }
  } finally {
    await run.stop();
  }
  return out;
}

export async function captureSizeFigure(plan: Plan): Promise<FigureResult> {
  const notes: string[] = [];
  const rows: Row[] = [];
  const details: string[] = [];
  let baseline: number | undefined;
  for (const c of CASES) {
    let s: Sample[];
    try {
      s = await measure(c, plan.captureSizeSamples, notes);
    } catch (err) {
      notes.push(`capture-size, ${c.name}: ${err instanceof Error ? err.message : String(err)}`);
      s = [];
    }
    const ms = s.map((x) => x.ms);
    const p99 = percentile(ms, 99);
    baseline ??= p99;
    const bad = s.filter((x) => !x.complete || !x.sizesShown).length;
    if (bad > 0) notes.push(`capture-size, ${c.name}: ${bad} of ${s.length} captures incomplete or without the sizes`);
    const ok = s.length > 0 && p99 <= TARGET_MS && p99 <= BASELINE_FACTOR * baseline && bad === 0;
    rows.push({
      figure: `capture time, stuck frame's locals: ${c.name} (n=${s.length})`,
      superv: s.length ? `p50 ${fixed(median(ms))} ms, p99 ${fixed(p99)} ms` : 'error', bare: '—', pm2: '—',
      compare: s.length ? `${fixed(p99 / baseline, 2)}× small locals` : '—',
      target: `p99 ≤ ${TARGET_MS} ms, ≤ ${BASELINE_FACTOR}× small locals`,
      result: s.length === 0 ? 'n/a' : ok ? 'pass' : 'MISS',
    });
    details.push(`**Capture, ${c.name}** (capture.elapsedMs per dump, ms): ${ms.join(', ')}.`);
  }
  return { rows, details, notes };
}
