// Instructions per request, counted by valgrind's callgrind, for the per-request costs whose throughput
// ratios this shared 2-core machine blurs: req/s and CPU time move by ±5 % between identical runs here, a
// callgrind count of a warmed-up server by under 1 %. The server (bench/fixtures/instr-server.js) runs one
// route in one process with only superv's per-request pieces added, so the difference between variants is
// what those pieces cost, attributed:
//   hello route: bare → + superv's request tracker (the two http diagnostics-channel subscribers)
//                      → + the AsyncLocalStorage request context entered for every request (context.ts
//                        keeps it from a worker's start where that is free: on AsyncContextFrame)
//   pg route:    tracker → + DB instrumentation (driver wrappers and the AsyncLocalStorage request context)
// Each run serves `instrWarm` requests with counting off (callgrind --instr-atstart=no), so start-up,
// JIT tier-up and the first GCs are not counted, turns counting on (callgrind_control -i on), then serves
// `instrFew` requests, or in a second fresh process `instrMany`; the difference of the two totals divided
// by the difference of the counts cancels the exit. Counting from the first request instead left warm-up
// in the difference: repeat counts then spread by 5 % and an empty subscriber looked like +6 %.
// The counts are for attribution between variants, not a figure to compare with other machines or Node
// versions.

import { spawn, spawnSync } from 'node:child_process';
import { Agent, get } from 'node:http';
import { join } from 'node:path';
import { fireAndForget, pollUntil200 } from '../lib/http';
import type { Plan } from '../lib/plan';
import { disown, freePort, own } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { fixed, median } from '../lib/stats';
import { FIXTURES, REPO } from '../lib/systems';
import { reachable } from './db';
import { contextFromStart } from '../../src/worker/context';

/** What this Node version does with the request context (src/worker/context.ts decides). */
function contextMode(): string {
  return contextFromStart() ? `Node ${process.versions.node}: AsyncContextFrame, so superv keeps it from a worker's start`
    : `Node ${process.versions.node}: promise hooks, so superv turns it on only when a DB driver loads`;
}

const FIXTURE = join(FIXTURES, 'instr-server.js');
const DIST = join(REPO, 'dist');
/**
 * One request at a time: the server then handles each request on its own wake-up. With more in flight,
 * how many requests one socket read carries depends on the speed ratio of client and server, which
 * valgrind distorts and a busy machine varies: concurrent runs here gave counts 2× apart.
 */
const CONCURRENCY = 1;
/** Valgrind starts node in ~10 s on a quiet host; on one shared with other test runs (load 20 on 2 cores) a run took over 4 minutes. */
const RUN_TIMEOUT_MS = 480_000;

type Variant = 'bare' | 'tracked' | 'tracked-context' | 'pg-tracked' | 'pg-instrumented';

/** The hello-route target: the request tracker must cost no measurable share of a request (repeats spread ~1 %). */
const HELLO_TARGET_PCT = 1;

function valgrindVersion(): string | undefined {
  const r = spawnSync('valgrind', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return undefined;
  // callgrind_control (which turns counting on after the warm-up) ships with valgrind, but check.
  return spawnSync('callgrind_control', ['--version'], { timeout: 10_000 }).status === 0 ? r.stdout.trim() : undefined;
}

/** `requests` GETs of `path` through `agent`; throws on any non-200. */
async function drive(agent: Agent, port: number, path: string, requests: number): Promise<void> {
  let left = requests;
  const one = (): Promise<number> => new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (left-- > 0) {
      const status = await one();
      if (status !== 200) throw new Error(`GET ${path} answered ${status}`);
    }
  }));
}

/** Total instructions of one server process that served `warm` requests uncounted, then `requests` counted, then exited. */
async function countRun(variant: Variant, warm: number, requests: number): Promise<number> {
  const port = await freePort();
  const path = variant.startsWith('pg-') ? '/db' : '/';
  // --single-threaded: V8 compiles and collects on the main thread, at points set by the code instead of by
  // when a background thread gets valgrind's one CPU. Without it repeat counts varied by 20 %.
  const child = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--callgrind-out-file=/dev/null',
    process.execPath, '--single-threaded', FIXTURE, variant, DIST], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  own(child.pid);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => { stderr = (stderr + c).slice(-16_384); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // The same keep-alive connection(s) for the warm-up and the counted requests: a new connection after the
  // warm-up made the server re-optimise during the count (88k instructions per hello request instead of 50k).
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    if (await pollUntil200(`http://127.0.0.1:${port}/`, deadline, 200) === undefined) {
      throw new Error(`${variant}: no answer under valgrind within ${RUN_TIMEOUT_MS / 1000} s: ${stderr.slice(-400)}`);
    }
    await drive(agent, port, path, warm);
    const on = spawnSync('callgrind_control', ['-i', 'on', String(child.pid)], { encoding: 'utf8', timeout: 30_000 });
    if (on.status !== 0) throw new Error(`${variant}: callgrind_control -i on failed: ${(on.stderr || on.stdout || String(on.error)).slice(-400)}`);
    await drive(agent, port, path, requests);
    fireAndForget(`http://127.0.0.1:${port}/exit`);
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([exited.then(() => true),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(false), Math.max(1000, deadline - Date.now())); })]);
    clearTimeout(timer);
    if (!ended) throw new Error(`${variant}: did not exit after GET /exit`);
  } finally {
    agent.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    disown(child.pid);
  }
  const m = /Collected : (\d+)/.exec(stderr);
  if (!m) throw new Error(`${variant}: callgrind printed no total: ${stderr.slice(-400)}`);
  return Number(m[1]);
}

async function perRequest(plan: Plan, variant: Variant): Promise<number> {
  const few = await countRun(variant, plan.instrWarm, plan.instrFew);
  const many = await countRun(variant, plan.instrWarm, plan.instrMany);
  return (many - few) / (plan.instrMany - plan.instrFew);
}

const pct = (x: number, base: number): string => `${x >= base ? '+' : ''}${fixed((100 * (x - base)) / base, 1)} %`;
/** Max − min of repeats, as % of their median: how far apart identical measurements land. */
const spreadPct = (xs: readonly number[]): number => (100 * (Math.max(...xs) - Math.min(...xs))) / median(xs);
const listed = (xs: readonly number[]): string => xs.map((x) => fixed(x)).join(', ');

export async function instructionsFigure(plan: Plan): Promise<FigureResult> {
  const helloFigure = 'instructions per hello-world request, in-process (callgrind): superv\'s request tracking vs none';
  const pgFigure = 'instructions per pg-route request, in-process (callgrind): DB instrumentation on vs off';
  const helloTarget = `≤ +${HELLO_TARGET_PCT} %`;
  const version = valgrindVersion();
  if (version === undefined) {
    const row = (figure: string, target: string) => ({ figure, superv: 'n/a (valgrind not installed)', bare: '—', pm2: '—', compare: 'n/a', target, result: 'n/a' as const });
    return { rows: [row(helloFigure, helloTarget), row(pgFigure, '—')], details: [], notes: ['instructions: valgrind (with callgrind_control) is not installed; this figure needs it'] };
  }
  const withPg = await reachable('127.0.0.1', 5432, 1000);
  const variants: Variant[] = ['bare', 'tracked', 'tracked-context', ...(withPg ? ['pg-tracked', 'pg-instrumented'] as const : [])];
  const count: Record<Variant, number[]> = { bare: [], tracked: [], 'tracked-context': [], 'pg-tracked': [], 'pg-instrumented': [] };
  // Two at a time on this 2-core machine (the variants of one pair side by side, repeats rotated): with one
  // request at a time and a single-threaded V8, a count barely depends on the clock, and this halves the wait.
  for (let i = 0; i < variants.length; i += 2) {
    const pair = variants.slice(i, i + 2);
    for (let r = 0; r < plan.instrRepeats; r++) {
      const got = await Promise.all(pair.map((v) => perRequest(plan, v)));
      pair.forEach((v, j) => count[v].push(got[j]!));
    }
  }
  const bare = median(count.bare);
  const tracked = median(count.tracked);
  const delta = (100 * (tracked - bare)) / bare;
  const noise = Math.max(spreadPct(count.bare), spreadPct(count.tracked));
  const rows: FigureResult['rows'] = [{
    figure: helloFigure,
    superv: fixed(tracked), bare: fixed(bare), pm2: '—',
    compare: `${fixed(tracked / bare, 3)}× (${pct(tracked, bare)}` +
      (plan.instrRepeats > 1 ? `; repeats spread ${fixed(noise, 1)} %)` : ')'),
    target: helloTarget, result: delta <= HELLO_TARGET_PCT ? 'pass' : 'MISS',
  }];
  const withContext = median(count['tracked-context']);
  rows.push({
    figure: `instructions per hello-world request, in-process (callgrind): request context entered for every request vs not ` +
      `(${contextMode()})`,
    superv: fixed(withContext), bare: fixed(tracked), pm2: '—',
    compare: `${fixed(withContext / tracked, 3)}× (${pct(withContext, tracked)})`, target: '—', result: 'info',
  });
  const details = [`**Instructions per request** (${version}; per measurement, ${plan.instrWarm} requests uncounted, then ` +
    `${plan.instrFew} and ${plan.instrMany} counted, one at a time over a keep-alive connection; ${plan.instrRepeats} ` +
    `measurement(s) per variant, the median shown): hello bare ${fixed(bare)} (${listed(count.bare)}), + superv's tracker ` +
    `${fixed(tracked)} (${listed(count.tracked)}), ${pct(tracked, bare)}, + the request context for every request ` +
    `${fixed(withContext)} (${listed(count['tracked-context'])}), ${pct(withContext, tracked)}` +
    (withPg ? `; pg route with the tracker ${fixed(median(count['pg-tracked']))} (${listed(count['pg-tracked'])}), + DB ` +
      `instrumentation ${fixed(median(count['pg-instrumented']))} (${listed(count['pg-instrumented'])}), ` +
      `${pct(median(count['pg-instrumented']), median(count['pg-tracked']))}.` : '; pg route: PostgreSQL not reachable on 127.0.0.1:5432.')];
  if (withPg) {
    const off = median(count['pg-tracked']);
    const on = median(count['pg-instrumented']);
    rows.push({ figure: pgFigure, superv: `on ${fixed(on)} / off ${fixed(off)}`, bare: '—', pm2: '—',
      compare: `${fixed(on / off, 3)}× (${pct(on, off)})`, target: '—', result: 'info' });
  } else {
    rows.push({ figure: pgFigure, superv: 'n/a (PostgreSQL not reachable on 127.0.0.1:5432)', bare: '—', pm2: '—', compare: 'n/a', target: '—', result: 'n/a' });
  }
  return { rows, details, notes: [] };
}
