// Dump capture time on a blocked loop with a 50-frame stack and locals. One worker recurses 50 frames deep
// (locals in every frame) and busy-loops; the bench then asks for one dump after another through the
// control socket (`superv dump NAME WORKER`, which goes to the worker's watchdog thread over its private
// pipe: SIGUSR2 would need a free loop). Each dump's own `capture.elapsedMs` is a sample: the watchdog's
// time from the request to a finished capture (probe, Debugger.enable, pause, 50 frames, locals of the top
// frames, resume). The control round trip (plus the master's /proc view and the write) is reported too.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../../src/control/client';
import { fireAndForget, pollUntil200 } from '../lib/http';
import type { Plan } from '../lib/plan';
import { freePort, sleep } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { fixed, median, percentile } from '../lib/stats';
import { FIXTURES, startSuperv } from '../lib/systems';

const DEPTH = 50;

interface Sample { captureMs: number; roundTripMs: number; frames: number; framesWithLocals: number; complete: boolean; blocked: boolean }

interface DumpShape {
  capture?: { elapsedMs?: number; complete?: boolean; loop?: { blocked?: boolean }; stack?: Array<{ locals?: Record<string, unknown> }> };
}

export async function captureFigure(plan: Plan): Promise<FigureResult> {
  const samples: Sample[] = [];
  const notes: string[] = [];
  // One worker, so the blocked one is the one we dump; no timeout and no slow dumps to interfere.
  const run = startSuperv({ app: join(FIXTURES, 'hello.js'), workers: 1, port: await freePort() }, ['--timeout', '0', '--slow', '0']);
  try {
    if (await pollUntil200(run.url + '/', Date.now() + 20_000) === undefined) throw new Error('superv did not serve within 20 s');
    const ready = await run.log.waitFor((e) => e.event === 'worker-ready', 5_000);
    const worker = ready?.worker ?? 1;
    fireAndForget(`${run.url}/deep?depth=${DEPTH}&ms=120000`);
    await sleep(800); // the watchdog calls the loop blocked after 250 ms without a tick
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < plan.captureSamples && Date.now() < deadline; i++) {
      const t0 = Date.now();
      const reply = await request(run.runDir, run.supervName, { cmd: 'dump', worker }, 15_000) as { files?: string[] };
      const roundTripMs = Date.now() - t0;
      const file = reply.files?.[0];
      if (!file) { notes.push(`capture: sample ${i + 1} wrote no dump`); continue; }
      const dump = JSON.parse(readFileSync(file, 'utf8')) as DumpShape;
      const c = dump.capture;
      if (c?.elapsedMs === undefined) { notes.push(`capture: sample ${i + 1} has no capture`); continue; }
      samples.push({
        captureMs: c.elapsedMs, roundTripMs, frames: c.stack?.length ?? 0,
        framesWithLocals: c.stack?.filter((f) => f.locals && Object.keys(f.locals).length > 0).length ?? 0,
        complete: c.complete === true, blocked: c.loop?.blocked === true,
      });
    }
  } finally {
    await run.stop();
  }
  const cap = samples.map((s) => s.captureMs);
  const rtt = samples.map((s) => s.roundTripMs);
  const p99 = percentile(cap, 99);
  const incomplete = samples.filter((s) => !s.complete || !s.blocked).length;
  if (incomplete > 0) notes.push(`capture: ${incomplete} of ${samples.length} captures were incomplete or saw a free loop`);
  const frames = median(samples.map((s) => s.frames));
  const withLocals = median(samples.map((s) => s.framesWithLocals));
  return {
    rows: [{
      figure: `dump capture time, blocked loop, ${DEPTH}-frame stack with locals (n=${samples.length})`,
      superv: `p50 ${fixed(median(cap))} ms, p99 ${fixed(p99)} ms`, bare: '—', pm2: '—',
      compare: `dump round trip p50 ${fixed(median(rtt))} ms, p99 ${fixed(percentile(rtt, 99))} ms`,
      target: 'p99 ≤ 250 ms', result: samples.length < 20 ? 'n/a' : p99 <= 250 ? 'pass' : 'MISS',
    }],
    details: [`**Capture** (capture.elapsedMs per dump, ms): ${cap.join(', ')}. Control round trips (ms): ${rtt.join(', ')}. ` +
      `Frames per dump: median ${fixed(frames)}, with locals: median ${fixed(withLocals)}; complete and blocked: ` +
      `${samples.length - incomplete} of ${samples.length}.`],
    notes,
  };
}
