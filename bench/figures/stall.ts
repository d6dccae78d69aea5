// Stall → dump written → worker killed → replacement serving, with `--timeout 2s`. A request to /stall
// busy-loops a worker; from the moment it is sent we time the master's `dump-written` and `worker-exited`
// events (the master's own timestamps) and the first 200 from the replacement worker (its pid on /pid).
// The reference is a gunicorn-style timeout: killed at `timeout`, no evidence. Target: timeout + ≤ 1 s.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fireAndForget, pollUntil200 } from '../lib/http';
import type { Plan } from '../lib/plan';
import { freePort, sleep } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { median, seconds } from '../lib/stats';
import { FIXTURES, startSuperv, type SupervRunning } from '../lib/systems';

const TIMEOUT_MS = 2000;
const BOUND_MS = TIMEOUT_MS + 10_000;

interface Round {
  dumpMs: number;
  exitMs: number;
  servingMs: number;
  namesSpin: boolean;
  /** How long the loop had been blocked when captured, as the worker's watchdog measured it (shared-memory tick). */
  blockedMs: number;
}

/** What the dump says: did it name the busy loop (a useful dump, not an empty one), and how long was the loop blocked? */
function readDump(file: unknown): { namesSpin: boolean; blockedMs: number } {
  if (typeof file !== 'string') return { namesSpin: false, blockedMs: Number.NaN };
  try {
    const dump = JSON.parse(readFileSync(file, 'utf8')) as { capture?: { stack?: Array<{ function?: string }>; loop?: { blockedForMs?: number } } };
    return {
      namesSpin: dump.capture?.stack?.some((f) => f.function === 'spin') ?? false,
      blockedMs: dump.capture?.loop?.blockedForMs ?? Number.NaN,
    };
  } catch {
    return { namesSpin: false, blockedMs: Number.NaN };
  }
}

async function oneStall(run: SupervRunning): Promise<Round | string> {
  const from = run.log.length;
  const t0 = Date.now();
  fireAndForget(`${run.url}/stall?ms=60000`);
  const stuck = await run.log.waitFor((e) => e.event === 'worker-stuck', BOUND_MS, from);
  if (!stuck || stuck.pid === undefined) return 'no worker-stuck event';
  const victim = stuck.pid;
  const [dumped, exited, spawned] = await Promise.all([
    run.log.waitFor((e) => e.event === 'dump-written' && e.pid === victim, BOUND_MS, from),
    run.log.waitFor((e) => e.event === 'worker-exited' && e.pid === victim, BOUND_MS, from),
    run.log.waitFor((e) => e.event === 'worker-spawned' && e.pid !== victim, BOUND_MS, from),
  ]);
  if (!dumped || !exited || !spawned || spawned.pid === undefined) return 'missing dump-written, worker-exited or worker-spawned';
  const fresh = String(spawned.pid);
  const served = await pollUntil200(`${run.url}/pid`, t0 + BOUND_MS, 5, (body) => body === fresh);
  if (served === undefined) return 'the replacement never answered';
  return { dumpMs: dumped.time - t0, exitMs: exited.time - t0, servingMs: served - t0, ...readDump(dumped.fields.file) };
}

export async function stallFigure(plan: Plan): Promise<FigureResult> {
  const rounds: Round[] = [];
  const notes: string[] = [];
  const run = startSuperv({ app: join(FIXTURES, 'hello.js'), workers: plan.workers, port: await freePort() },
    ['--timeout', `${TIMEOUT_MS}ms`, '--slow', '0']);
  try {
    if (await pollUntil200(run.url + '/', Date.now() + 20_000) === undefined) throw new Error('superv did not serve within 20 s');
    for (let r = 0; r < plan.stallRounds; r++) {
      await run.log.waitFor(() => false, 1200); // let every worker send a heartbeat first
      const res = await oneStall(run);
      if (typeof res === 'string') notes.push(`stall round ${r + 1}: ${res}`);
      else rounds.push(res);
      await sleep(300);
    }
  } finally {
    await run.stop();
  }
  const m = (k: 'dumpMs' | 'exitMs' | 'servingMs') => median(rounds.map((x) => x[k]));
  const worst = Math.max(...rounds.map((x) => Math.max(x.dumpMs, x.exitMs, x.servingMs)));
  const bound = TIMEOUT_MS + 1000;
  if (rounds.some((x) => !x.namesSpin)) notes.push('stall: a dump did not name the busy function `spin`');
  const early = rounds.filter((x) => x.blockedMs < TIMEOUT_MS);
  if (early.length > 0) {
    notes.push(`stall: ${early.length} of ${rounds.length} workers were killed before their loop had been blocked for --timeout ` +
      `(${TIMEOUT_MS} ms): blocked ${early.map((x) => x.blockedMs).join(', ')} ms by the watchdog's own clock`);
  }
  return {
    rows: [{
      figure: `stall → dump written / worker exited / replacement serving (--timeout ${TIMEOUT_MS / 1000}s)`,
      superv: `${seconds(m('dumpMs'))} / ${seconds(m('exitMs'))} / ${seconds(m('servingMs'))} (worst ${seconds(worst)})`,
      bare: '— (never detected)', pm2: '— (never detected)',
      compare: `loop blocked at capture: median ${seconds(median(rounds.map((x) => x.blockedMs)))} (gunicorn-style: killed at ${TIMEOUT_MS / 1000} s, no dump)`,
      target: `each ≤ ${seconds(bound)}`, result: rounds.length === 0 ? 'n/a' : Math.max(m('dumpMs'), m('exitMs'), m('servingMs')) <= bound ? 'pass' : 'MISS',
    }],
    details: [`**Stall** (ms from the request's start: dump-written / worker-exited / first 200 from the replacement): ` +
      rounds.map((x) => `${x.dumpMs} / ${x.exitMs} / ${x.servingMs} (loop blocked ${x.blockedMs} ms at capture)`).join('; ') +
      `. Every dump names \`spin\`: ${rounds.every((x) => x.namesSpin) ? 'yes' : 'no'}. The master measures silence from the last ` +
      `heartbeat (sent every 1 s), which can precede the stall by up to one interval: a worker is killed after its loop has been ` +
      `blocked between timeout − 1 s and timeout.`],
    notes,
  };
}
