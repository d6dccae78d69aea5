// What the AsyncLocalStorage request context costs a request on this Node version, measured without valgrind
// (whose runs took over 10 minutes each on the host shared at load 40): the hello route of
// bench/fixtures/instr-server.js with superv's tracker, as `tracked` and as `tracked-context` (the context
// entered for every request, as a worker does from its start where src/worker/context.ts keeps it so), two
// processes side by side, one request at a time over a keep-alive connection, rounds alternating; the figure
// is the servers' CPU per request (every thread, /proc/PID/task/*/schedstat), off / on, so 1 = free.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { contextFromStart } from '../../src/worker/context';
import { pollUntil200 } from '../lib/http';
import { load } from '../lib/load';
import type { Plan } from '../lib/plan';
import { cpuNs, freePort, own, sleep } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { fixed, median, pairedRatios } from '../lib/stats';
import { FIXTURES, REPO } from '../lib/systems';

const VARIANTS = ['tracked', 'tracked-context'] as const;

async function server(variant: (typeof VARIANTS)[number]): Promise<{ pid: number; url: string; stop(): void }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(FIXTURES, 'instr-server.js'), variant, join(REPO, 'dist')],
    { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
  own(child.pid);
  const url = `http://127.0.0.1:${port}/`;
  if (await pollUntil200(url, Date.now() + 20_000) === undefined) throw new Error(`${variant} did not serve within 20 s`);
  return { pid: child.pid!, url, stop: () => child.kill('SIGKILL') };
}

export async function contextFigure(plan: Plan): Promise<FigureResult> {
  const us: Record<(typeof VARIANTS)[number], number[]> = { tracked: [], 'tracked-context': [] };
  const servers = await Promise.all(VARIANTS.map(server));
  try {
    for (const s of servers) await load({ url: s.url, connections: 1, durationS: plan.warmupSeconds * 2 });
    for (let r = 0; r < plan.helloRounds; r++) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const s = servers[i]!;
        const before = cpuNs(s.pid);
        const res = await load({ url: s.url, connections: 1, durationS: plan.helloSeconds });
        us[VARIANTS[i]!].push((cpuNs(s.pid) - before) / 1000 / res.ok);
        await sleep(100);
      }
    }
  } finally {
    for (const s of servers) s.stop();
  }
  const ratio = median(pairedRatios(us.tracked, us['tracked-context']));
  const mode = contextFromStart() ? 'AsyncContextFrame: superv keeps it from the worker\'s start' : 'promise hooks: superv turns it on only when a DB driver loads';
  return {
    rows: [{
      figure: `request context entered for every request, hello route, server CPU per request without / with (Node ${process.versions.node}: ${mode})`,
      superv: `with ${fixed(median(us['tracked-context']), 1)} µs / without ${fixed(median(us.tracked), 1)} µs`, bare: '—', pm2: '—',
      compare: `${fixed(ratio, 3)}×`, target: '—', result: 'info',
    }],
    details: [`**Request context** (server CPU µs per request, one at a time, ${plan.helloRounds} alternating rounds of ${plan.helloSeconds} s): ` +
      `without ${us.tracked.map((x) => fixed(x, 1)).join(', ')}; with ${us['tracked-context'].map((x) => fixed(x, 1)).join(', ')}.`],
    notes: [],
  };
}
