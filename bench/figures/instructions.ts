// Instructions per request, counted by valgrind's callgrind, for the two per-request costs whose
// throughput ratios this shared 2-core machine blurs: req/s and CPU time move by ±5 % between identical
// runs here, a callgrind count by 1–2 %. The server (bench/fixtures/instr-server.js) runs one route
// in one process with only superv's per-request pieces added, so the difference between variants is what
// those pieces cost, attributed:
//   hello route: bare → + no-op subscribers on the two http diagnostics channels → + superv's tracker
//   pg route:    tracker → + DB instrumentation (driver wrappers and the AsyncLocalStorage request context)
// Each variant serves `instrFew` and then, in a fresh process, `instrMany` requests; the difference of the
// two totals divided by the difference of the counts cancels start-up and JIT warm-up.
// The counts are for attribution between variants (repeat runs agree within 1–2 %), not a figure to
// compare with other machines or Node versions.

import { spawn, spawnSync } from 'node:child_process';
import { Agent, get } from 'node:http';
import { join } from 'node:path';
import { fireAndForget, pollUntil200 } from '../lib/http';
import type { Plan } from '../lib/plan';
import { disown, freePort, own } from '../lib/proc';
import type { FigureResult } from '../lib/report';
import { fixed } from '../lib/stats';
import { FIXTURES, REPO } from '../lib/systems';
import { reachable } from './pg';

const FIXTURE = join(FIXTURES, 'instr-server.js');
const DIST = join(REPO, 'dist');
/**
 * One request at a time: the server then handles each request on its own wake-up. With more in flight,
 * how many requests one socket read carries depends on the speed ratio of client and server, which
 * valgrind distorts and a busy machine varies: concurrent runs here gave counts 2× apart.
 */
const CONCURRENCY = 1;
/** Valgrind starts node in ~10 s here; a run that takes minutes is broken, not slow. */
const RUN_TIMEOUT_MS = 240_000;

type Variant = 'bare' | 'dc' | 'tracked' | 'pg-tracked' | 'pg-instrumented';

function valgrindVersion(): string | undefined {
  const r = spawnSync('valgrind', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** `requests` GETs of `path` over CONCURRENCY keep-alive connections; throws on any non-200. */
async function drive(port: number, path: string, requests: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let left = requests;
  const one = (): Promise<number> => new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) {
        const status = await one();
        if (status !== 200) throw new Error(`GET ${path} answered ${status}`);
      }
    }));
  } finally {
    agent.destroy();
  }
}

/** Total instructions of one server process that served `requests` requests, then exited. */
async function countRun(variant: Variant, requests: number): Promise<number> {
  const port = await freePort();
  // --single-threaded: V8 compiles and collects on the main thread, at points set by the code instead of by
  // when a background thread gets valgrind's one CPU. Without it repeat counts varied by 20 %; with it, 1–2 %.
  const child = spawn('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, '--single-threaded',
    FIXTURE, variant, DIST], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  own(child.pid);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => { stderr = (stderr + c).slice(-16_384); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    if (await pollUntil200(`http://127.0.0.1:${port}/`, deadline, 200) === undefined) {
      throw new Error(`${variant}: no answer under valgrind within ${RUN_TIMEOUT_MS / 1000} s: ${stderr.slice(-400)}`);
    }
    await drive(port, variant.startsWith('pg-') ? '/db' : '/', requests);
    fireAndForget(`http://127.0.0.1:${port}/exit`);
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([exited.then(() => true),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(false), Math.max(1000, deadline - Date.now())); })]);
    clearTimeout(timer);
    if (!ended) throw new Error(`${variant}: did not exit after GET /exit`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    disown(child.pid);
  }
  const m = /Collected : (\d+)/.exec(stderr);
  if (!m) throw new Error(`${variant}: callgrind printed no total: ${stderr.slice(-400)}`);
  return Number(m[1]);
}

async function perRequest(plan: Plan, variant: Variant): Promise<number> {
  const few = await countRun(variant, plan.instrFew);
  const many = await countRun(variant, plan.instrMany);
  return (many - few) / (plan.instrMany - plan.instrFew);
}

const pct = (x: number, base: number): string => `${x >= base ? '+' : ''}${fixed((100 * (x - base)) / base, 1)} %`;

export async function instructionsFigure(plan: Plan): Promise<FigureResult> {
  const helloFigure = 'instructions per hello-world request, in-process (callgrind): superv\'s request tracking vs none';
  const pgFigure = 'instructions per pg-route request, in-process (callgrind): DB instrumentation on vs off';
  const version = valgrindVersion();
  if (version === undefined) {
    const row = (figure: string) => ({ figure, superv: 'n/a (valgrind not installed)', bare: '—', pm2: '—', compare: 'n/a', target: '—', result: 'n/a' as const });
    return { rows: [row(helloFigure), row(pgFigure)], details: [], notes: ['instructions: valgrind is not installed; this figure needs it'] };
  }
  const withPg = await reachable('127.0.0.1', 5432, 1000);
  const variants: Variant[] = ['bare', 'dc', 'tracked', ...(withPg ? ['pg-tracked', 'pg-instrumented'] as const : [])];
  const count: Partial<Record<Variant, number>> = {};
  // Two at a time on this 2-core machine: with one request at a time and a single-threaded V8, a count
  // barely depends on the clock, and this halves the wait.
  for (let i = 0; i < variants.length; i += 2) {
    const batch = variants.slice(i, i + 2);
    const got = await Promise.all(batch.map((v) => perRequest(plan, v)));
    batch.forEach((v, j) => { count[v] = got[j]; });
  }
  const bare = count.bare!;
  const dc = count.dc!;
  const tracked = count.tracked!;
  const rows: FigureResult['rows'] = [{
    figure: helloFigure,
    superv: `${fixed(tracked)} (of which diagnostics channels ${pct(dc, bare)})`,
    bare: fixed(bare), pm2: '—',
    compare: `${fixed(tracked / bare, 3)}× (${pct(tracked, bare)})`, target: '—', result: 'info',
  }];
  const details = [`**Instructions per request** (${version}; ${plan.instrFew} and ${plan.instrMany} requests per variant, ` +
    `one at a time over a keep-alive connection): hello bare ${fixed(bare)}, + diagnostics-channel subscribers ${fixed(dc)} ` +
    `(${pct(dc, bare)}), + superv's tracker ${fixed(tracked)} (${pct(tracked, bare)})` +
    (withPg ? `; pg route with the tracker ${fixed(count['pg-tracked']!)}, + DB instrumentation ${fixed(count['pg-instrumented']!)} ` +
      `(${pct(count['pg-instrumented']!, count['pg-tracked']!)}).` : '; pg route: PostgreSQL not reachable on 127.0.0.1:5432.')];
  if (withPg) {
    const off = count['pg-tracked']!;
    const on = count['pg-instrumented']!;
    rows.push({ figure: pgFigure, superv: `on ${fixed(on)} / off ${fixed(off)}`, bare: '—', pm2: '—',
      compare: `${fixed(on / off, 3)}× (${pct(on, off)})`, target: '—', result: 'info' });
  } else {
    rows.push({ figure: pgFigure, superv: 'n/a (PostgreSQL not reachable on 127.0.0.1:5432)', bare: '—', pm2: '—', compare: 'n/a', target: '—', result: 'n/a' });
  }
  return { rows, details, notes: [] };
}
